"""Batched per-row generation, streaming, prompt formats and over-long prompts."""

import contextvars
import threading

import pytest
import torch
from helpers import make_tiny_family

from paretoapp.generate import GenerationSettings, PromptTooLongError, load_policy

PROMPTS = ["Tell me about cats.", "How do I bake bread?", "Write a poem about the sea, please.", "Hi"]
WS = [(1.0, 0.0), (0.0, 1.0), (-0.5, 1.5), (0.5, 0.5)]
GREEDY = GenerationSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def policy(tmp_path_factory, tokenizer_dir):
    return load_policy(make_tiny_family(tmp_path_factory.mktemp("gen"), tokenizer_dir))


def test_batch_rows_equal_each_row_alone(policy):
    batched = policy.generate(PROMPTS, WS, GREEDY)
    alone = [policy.generate([p], [w], GREEDY)[0] for p, w in zip(PROMPTS, WS)]
    assert batched == alone
    # and the preference matters: the same prompt at two w gives two answers
    a, b = policy.generate([PROMPTS[0]] * 2, [WS[0], WS[2]], GREEDY)
    assert a != b


def test_batched_logits_match_single_rows(policy):
    logits, mask = policy.logits(PROMPTS, WS)
    for i, (p, w) in enumerate(zip(PROMPTS, WS)):
        one, _ = policy.logits([p], [w])
        torch.testing.assert_close(logits[i, -1], one[0, -1], atol=1e-4, rtol=1e-4)


def test_one_preference_serves_all_rows(policy):
    assert policy.generate(PROMPTS[:2], [WS[1]], GREEDY) == policy.generate(PROMPTS[:2], [WS[1]] * 2, GREEDY)


def test_sampling_is_reproducible_with_a_seed(policy):
    s = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.0, seed=7)
    assert policy.generate(PROMPTS[:2], WS[:2], s) == policy.generate(PROMPTS[:2], WS[:2], s)


def test_chat_template_is_used_without_double_bos(policy):
    text = policy.render("Hello", [0.5, 0.5], system_prompt="Be brief.")
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert text.rstrip().endswith("<|im_start|>assistant")
    enc = policy.encode(["Hello"], torch.tensor([[0.5, 0.5]]), GREEDY)
    ids = enc["input_ids"][0].tolist()
    assert ids.count(policy.tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # system, user, assistant


def test_plain_prompt_format_without_chat_template(policy, monkeypatch):
    monkeypatch.setattr(policy.tokenizer, "chat_template", None)
    text = policy.render([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                          {"role": "user", "content": "Bye"}], [0.5, 0.5])
    assert text == "Human: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:"
    # a system prompt opens the conversation, not the last turn (it did: "...Hello!\n\nBe brief.\n\nHuman: Bye")
    text = policy.render([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                          {"role": "user", "content": "Bye"}], [0.5, 0.5], system_prompt="Be brief.")
    assert text == "Be brief.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:"
    assert policy.render("Bye", [0.5, 0.5], system_prompt="Be brief.") == "Be brief.\n\nHuman: Bye\n\nAssistant:"


def test_streaming_yields_growing_text_and_matches_generate(policy):
    steps = list(policy.stream(PROMPTS[:2], WS[:2], GREEDY))
    assert len(steps) > 1
    assert all(len(a[0]) <= len(b[0]) + 1 for a, b in zip(steps, steps[1:]))
    assert steps[-1] == policy.generate(PROMPTS[:2], WS[:2], GREEDY)


def test_two_streaming_threads_keep_their_own_preference(policy):
    expected = {w: policy.generate([PROMPTS[0]], [w], GREEDY)[0] for w in (WS[0], WS[2])}
    assert len(set(expected.values())) == 2
    got, errors = {}, []

    def chat(w):
        try:
            for _ in range(2):
                got[w] = list(policy.stream([PROMPTS[0]], [w], GREEDY))[-1][0]
                assert got[w] == expected[w]
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(chat, w)) for w in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == expected


def test_stop_event_ends_stream_early(policy):
    cancel = threading.Event()
    cancel.set()
    steps = list(policy.stream([PROMPTS[0]], [WS[0]], GenerationSettings(max_new_tokens=50), cancel=cancel))
    assert len(steps) <= 2


def test_over_long_prompt_is_rejected_or_truncated(policy, caplog):
    long = "word " * 400
    with pytest.raises(PromptTooLongError, match="shorten it"):
        policy.generate([long], [WS[0]], GREEDY)
    settings = GenerationSettings(max_new_tokens=4, overflow="truncate_left", max_prompt_tokens=32)
    with caplog.at_level("WARNING"):
        out = policy.generate([long], [WS[0]], settings)
    assert len(out) == 1 and "keeping the last 32" in caplog.text


def test_mismatched_rows_and_bad_settings(policy):
    with pytest.raises(ValueError, match="one per prompt"):
        policy.generate(PROMPTS[:3], WS[:2], GREEDY)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        GenerationSettings(do_sample=True, temperature=0)


def test_raw_prompt_format_is_verbatim(policy, monkeypatch):
    """A family trained on raw text (e.g. HH-RLHF transcripts) is prompted exactly as in training."""
    monkeypatch.setattr(policy.manifest, "prompt_format", "raw")
    hh = "\n\nHuman: Hi there\n\nAssistant:"
    assert policy.render(hh, [0.5, 0.5]) == hh
    enc = policy.encode([hh], torch.tensor([[0.5, 0.5]]), GREEDY)
    assert enc["input_ids"][0].tolist() == policy.tokenizer(hh)["input_ids"]


def test_merged_model_generates_what_the_bank_generates(policy):
    w = WS[2]
    merged = policy.bank.merged_model(w)
    assert policy.generate(PROMPTS, [w], GREEDY, model=merged) == policy.generate(PROMPTS, [w], GREEDY)
