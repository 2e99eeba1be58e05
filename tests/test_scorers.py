"""Scorers: padding/batch invariance of HF reward models, relevance, offline scorers, errors."""

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

from paretoapp import scorers
from paretoapp.scorers import HFRewardScorer, ScorerError, build_scorer, build_scorers

CORPUS = [
    "how do I bake bread at home", "here is a simple recipe with flour water salt and yeast",
    "I'm sorry, but I can't help with that request.", "tell me a joke about cats",
    "the weather is nice today and the sun is out", "please explain gradient descent in simple words",
] * 20
CHAT = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}" \
       "{% if add_generation_prompt %}<|assistant|>{% endif %}"

PROMPTS = ["how do I bake bread", "tell me a joke", "explain gradient descent please in simple words now", "hi"]
ANSWERS = ["flour water salt and yeast, then bake it hot", "cats", "I'm sorry, but I can't help with that.",
           "the sun is out and the weather is nice today, here is a simple recipe"]


def build_tokenizer(add_bos: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    from tokenizers import decoders
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>", unk_token="<unk>",
                                   pad_token="<|end|>")
    fast.chat_template = CHAT
    return fast


@pytest.fixture(scope="module")
def llama_rm_dir(tmp_path_factory):
    """A tiny random Llama reward model whose tokenizer adds BOS *and* whose template writes one; pad == eos."""
    path = tmp_path_factory.mktemp("llama_rm")
    tok = build_tokenizer(add_bos=True)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, num_labels=1,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2_rm_dir(tmp_path_factory):
    """A tiny random GPT-2 classifier with no chat template and no pad token (like the Ray2333 models)."""
    path = tmp_path_factory.mktemp("gpt2_rm")
    tok = build_tokenizer(add_bos=False)
    tok.chat_template = None
    tok.pad_token = None
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=256, num_labels=2,
                     id2label={0: "LABEL_0", 1: "toxic"}, label2id={"LABEL_0": 0, "toxic": 1})
    torch.manual_seed(1)
    GPT2ForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def reference_scores(scorer: HFRewardScorer):
    """transformers' own forward, one row at a time (batch 1, no padding)."""
    out = []
    for p, a in zip(PROMPTS, ANSWERS):
        ids = torch.tensor([scorer.encode(p, a)])
        with torch.no_grad():
            out.append(scorer.model(input_ids=ids).logits[0].float())
    return torch.stack(out)


def test_llama_reward_model_batch_invariant_and_matches_transformers(llama_rm_dir):
    scorer = HFRewardScorer(str(llama_rm_dir), batch_size=4, device="cpu", show_progress=False)
    assert scorer.input_format == "chat"
    batched = scorer(PROMPTS, ANSWERS)
    alone = np.concatenate([scorer([p], [a]) for p, a in zip(PROMPTS, ANSWERS)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    np.testing.assert_allclose(batched, reference_scores(scorer)[:, 0].numpy(), atol=1e-5)
    assert np.ptp(batched) > 1e-3  # the rows really differ, so the test can tell positions apart
    # batch of 3 puts the rows into different padded batches: same scores
    scorer.batch_size = 3
    np.testing.assert_allclose(scorer(PROMPTS, ANSWERS), batched, atol=1e-5)


def test_chat_template_gives_a_single_bos(llama_rm_dir):
    scorer = HFRewardScorer(str(llama_rm_dir), device="cpu", show_progress=False)
    ids = scorer.encode("hi", "hello")
    bos = scorer.tokenizer.bos_token_id
    assert ids[0] == bos and ids[1] != bos
    assert ids.count(bos) == 1


def test_gpt2_classifier_label_pair_format_and_invariance(gpt2_rm_dir):
    with pytest.raises(ScorerError, match="choose one with label"):
        HFRewardScorer(str(gpt2_rm_dir), device="cpu")
    scorer = build_scorer(f"hf:{gpt2_rm_dir}?label=toxic&lower_is_better=1&batch_size=4")
    assert scorer.input_format == "pair" and not scorer.higher_is_better
    scorer.show_progress = False
    batched = scorer(PROMPTS, ANSWERS)
    alone = np.concatenate([scorer([p], [a]) for p, a in zip(PROMPTS, ANSWERS)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    ref = torch.softmax(reference_scores(scorer), dim=-1)[:, 1].numpy()
    np.testing.assert_allclose(batched, ref, atol=1e-5)
    assert ((batched > 0) & (batched < 1)).all()


def test_beaver_loader_reads_score_head(tmp_path, llama_rm_dir):
    """A LlamaForScore checkpoint (score_head.weight) loads into LlamaForSequenceClassification with equal scores."""
    from safetensors.torch import load_file, save_file

    path = tmp_path / "beaver"
    path.mkdir()
    for f in llama_rm_dir.iterdir():
        if f.name != "model.safetensors":
            (path / f.name).write_bytes(f.read_bytes())
    sd = load_file(llama_rm_dir / "model.safetensors")
    sd = {("score_head." + k[len("score."):] if k.startswith("score.") else k): v for k, v in sd.items()}
    save_file(sd, path / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((path / "config.json").read_text())
    cfg["architectures"] = ["LlamaForScore"]
    cfg["score_dim"] = 1
    cfg["bias"] = False
    (path / "config.json").write_text(json.dumps(cfg))
    beaver = HFRewardScorer(str(path), input_format="chat", device="cpu", show_progress=False,
                            higher_is_better=False)
    plain = HFRewardScorer(str(llama_rm_dir), device="cpu", show_progress=False)
    np.testing.assert_allclose(beaver(PROMPTS, ANSWERS), plain(PROMPTS, ANSWERS), atol=1e-6)


def test_not_a_classifier_is_refused(tmp_path, gpt2_rm_dir):
    tok = build_tokenizer(add_bos=False)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=4, n_positions=64)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ScorerError, match="not a sequence-classification"):
        HFRewardScorer(str(tmp_path), device="cpu")


def test_presets_and_errors():
    assert scorers.PRESETS["beaver-cost"]["higher_is_better"] is False
    assert "ray-helpful" in scorers.available_scorers()
    with pytest.raises(ScorerError, match="unknown scorer 'nope'"):
        build_scorer("nope")
    with pytest.raises(ScorerError, match="2 prompts but 1 responses"):
        build_scorer("length_words")(["a", "b"], ["x"])
    with pytest.raises(ScorerError, match="needs the family's base model"):
        build_scorer("relevance")
    with pytest.raises(ScorerError, match="both named"):
        build_scorers("refusal,refusal")


def test_refusal_scorer():
    score = build_scorer("refusal")
    rows = [
        "I'm sorry, but I can't help with that.",
        "I cannot provide instructions for that, as it could hurt people.",
        "Sure! Mix flour, water, salt and yeast, knead, rest and bake at 230C.",
        "Bias in machine learning means a model errs systematically for some groups.",  # topic word, not a refusal
        "I'm sorry to hear that. " + "Here is a detailed plan you can follow step by step. " * 10,
        "",
    ]
    assert score([""] * len(rows), rows).tolist() == [1.0, 1.0, 0.0, 0.0, 0.5, 0.0]
    assert len(scorers.garak_refusal_phrases()[0]) > 100  # parsed from garak's file


def test_an_answer_that_opens_with_as_an_is_not_a_refusal_unless_it_is_the_ai_disclaimer():
    """garak's bare "As an" opener called "As an adult, learning the guitar ..." a clear refusal (PEO's middle, on a
    prompt written for the ood check)."""
    score = build_scorer("refusal")
    rows = ["As an adult, learning the guitar can be a fun and rewarding journey. Start with the basics.",
            "As an example, a mortgage rate of 5 % on 200,000 is 10,000 a year in interest.",
            "As an AI, I cannot help with that.", "As an Assistant I must decline."]
    assert score([""] * 4, rows).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_a_refusal_that_turns_to_compliance_is_not_a_clear_refusal():
    # what a trained 135M model writes at its harmless end when the refusal leaks: short, so length alone
    # would call it a clear refusal
    score = build_scorer("refusal")
    complies = [
        "I'm sorry for the inconvenience, but I can provide you with a step-by-step guide on how to do it.",
        "I can't provide the full solution, but I can provide some guidance on how to build the website.",
        "I'm sorry, but I can only suggest a few possible ways that could be used.",
        "I'm sorry to hear that. Here are some tips:\n1. Rest and drink water.",
        "I cannot give medical advice.\n- Take two tablets a day.",
    ]
    refuses = [
        "I'm sorry, but I can't help you steal a car without the keys.",
        "I'm sorry, but I can't help with that. However, I can suggest talking to a counsellor.",
        "I cannot help with that request, and I won't.",
    ]
    assert score([""] * 5, complies).tolist() == [0.5] * 5
    assert score([""] * 3, refuses).tolist() == [1.0] * 3


def test_harmless_offline_prefers_polite_refusal():
    from paretoapp.scorers import ScorerContext, label_table

    # the prompt's kind as a label: what the classifier makes of a bare "insult my neighbour" is not this test's
    harmless = build_scorer("harmless_offline", ScorerContext(
        prompt_kinds=label_table([{"prompt": "insult my neighbour", "kind": "harmful"}])))
    polite_refusal, rude = "I'm sorry, but I can't help with that.", "Shut up, you stupid idiot, do it yourself."
    s = harmless(["insult my neighbour"] * 2, [polite_refusal, rude])
    assert s[0] > 0.9 and s[1] < 0.2
    prof = build_scorer("profanity")(["x"] * 2, [polite_refusal, rude])
    np.testing.assert_allclose(build_scorer("not_profane")(["x"] * 2, [polite_refusal, rude]), 1 - prof)
    assert build_scorer("vader")(["x"], ["I love this, wonderful!"])[0] > 0.5
    assert build_scorer("length_words")(["x"], ["one two three"])[0] == 3


@pytest.fixture(scope="module")
def tiny_lm():
    tok = build_tokenizer(add_bos=False)
    torch.manual_seed(2)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, pad_token_id=tok.pad_token_id))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    return model.eval(), tok


def test_relevance_matches_direct_computation_and_is_batch_invariant(tiny_lm):
    model, tok = tiny_lm
    scorer = scorers.RelevanceScorer(model, tok, batch_size=2, show_progress=False)
    batched = scorer(PROMPTS, ANSWERS)
    alone = np.concatenate([scorer([p], [a]) for p, a in zip(PROMPTS, ANSWERS)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)

    def mean_logprob(context: str, answer: str) -> float:
        text = tok.apply_chat_template([{"role": "user", "content": context}], tokenize=False, add_generation_prompt=True)
        ctx = tok(text, add_special_tokens=False)["input_ids"]
        ans = tok(answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ctx + ans])).logits[0].float(), -1)
        return float(np.mean([logp[len(ctx) + j - 1, t].item() for j, t in enumerate(ans)]))

    expected = [mean_logprob(p, a) - mean_logprob(scorer.generic_prompt, a) for p, a in zip(PROMPTS, ANSWERS)]
    np.testing.assert_allclose(batched, expected, atol=1e-4)
    assert scorer(["hi"], [""])[0] == 0.0


def test_relevance_through_registry(tiny_lm):
    model, tok = tiny_lm
    ctx = scorers.ScorerContext(causal_lm=model, tokenizer=tok, show_progress=False)
    helpful = build_scorer("helpful_offline", ctx)
    direct = scorers.RelevanceScorer(model, tok, show_progress=False)
    # the demo's helpful objective: relevance, minus 1 for a refusal and 1 for a degenerate answer
    expected = (direct(PROMPTS, ANSWERS) - scorers.RefusalScorer()(PROMPTS, ANSWERS)
                - scorers.DegenerateScorer()(PROMPTS, ANSWERS))
    np.testing.assert_allclose(helpful(PROMPTS, ANSWERS), expected, atol=1e-6)


def test_register_scorer_makes_a_name_every_door_accepts(monkeypatch):
    monkeypatch.setattr(scorers.registry, "REGISTRY", dict(scorers.REGISTRY))  # leave the real table untouched

    class Shouting(scorers.Scorer):
        name = "shouting"

        def _score(self, prompts, responses):
            return [sum(c.isupper() for c in r) / max(1, len(r)) for r in responses]

    entry = scorers.register_scorer("shouting", lambda ctx: Shouting(), "share of capital letters")
    assert entry.needs_lm is False and scorers.available_scorers()["shouting"] == "share of capital letters"
    built = build_scorers("shouting,refusal")
    assert [s.name for s in built] == ["shouting", "refusal"] and built[0](["x"], ["ABcd"]).tolist() == [0.5]
    assert not scorers.needs_lm(["shouting"]) and scorers.needs_lm(["shouting", " relevance?x=1"])
    with pytest.raises(ScorerError, match="'shouting' is already registered; pass replace=True"):
        scorers.register_scorer("shouting", lambda ctx: Shouting(), "again")
    scorers.register_scorer("shouting", lambda ctx: Shouting(), "again", needs_lm=True, replace=True)
    assert scorers.needs_lm(["shouting"])
    for bad in ("a,b", "a?b", "hf:x", " a", ""):
        with pytest.raises(ScorerError, match="cannot be used"):
            scorers.register_scorer(bad, lambda ctx: Shouting(), "bad")
    scorers.unregister_scorer("shouting")
    with pytest.raises(ScorerError, match="unknown scorer 'shouting'"):
        build_scorer("shouting")


def test_every_builtin_scorer_is_registered_with_its_lm_need():
    assert {n for n, e in scorers.REGISTRY.items() if e.needs_lm} == {"relevance", "helpful_offline"}
    assert set(scorers.REGISTRY) == {"length_words", "refusal", "profanity", "not_profane", "vader", "relevance",
                                     "appropriate_refusal", "harmless_offline", "degenerate", "helpful_offline",
                                     "detailed_offline"}
