"""PEO's phase 3 alone (``search_and_save``), on three untrained random adapters: what the search generates,
scores, offers to the anchors and writes, recomputed from its parts. Seconds per test, so a mutation run of the
search (``scripts/mutation.sh paretoapp/trainers/peo.py tests/test_peo_search.py ...``) takes minutes, where the
trained fixture of ``test_peo.py`` takes half a minute per mutant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.family import Family
from paretoapp.trainers import peo
from paretoapp.trainers.config import load_config


def length_scorer(prompts, responses):
    return [float(len(r)) for r in responses]


def vowels_per_char(prompts, responses):  # lower is better: a cost
    return [sum(ch in "aeiou" for ch in r) / max(len(r), 1) for r in responses]


vowels_per_char.higher_is_better = False
length_scorer.name = "length"  # the record names a scorer by its name, else by its repr


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_base):
    """Three random LoRA adapters (B non-zero) on the tiny base, saved as phase 1 and 2 would save them."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("peo-search")
    out = {}
    for i, name in enumerate(("helpful", "harmless", peo.BLOCK_GENERALIST)):
        torch.manual_seed(i)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base),
                               LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                          init_lora_weights=False))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.mul_(30.0)
        model.save_pretrained(root / name)
        out[name] = root / name
    return out


def _config(tmp, tiny_base, pref_jsonl, **extra):
    settings = {"alpha": 0.3, "coef_generalist": [0.0, 1.0, 2.0], "coef_objective": [0.0, 1.0], "n_eval_prompts": 3,
                "max_new_tokens": 4, "anchor_step": 0.25, "extrapolate": 0.5, "generation_batch_size": 5, **extra}
    return load_config(peo.PEOConfig, str(write_config(tmp / "peo.yaml", tiny_base, pref_jsonl, tmp / "run",
                                                       **settings)))


def _search_again(cfg, adapters, scorers):
    """The search's steps, called one by one: what ``search_and_save`` must have done."""
    peft_model, tokenizer, tensors, blocks = peo.load_stacked(cfg, adapters)
    model = peft_model.unload().eval()
    candidates = peo.candidate_gains(cfg.alpha, cfg.coef_generalist, cfg.coef_objective)
    prompts = peo.eval_prompts(cfg)
    answers = peo.generate_candidates(model, tokenizer, peo.candidate_family(model, tensors, blocks, cfg.prompt_format),
                                      candidates, prompts, cfg.max_new_tokens, 64)
    return candidates, prompts, answers, peo.score_answers(answers, prompts, scorers)


@pytest.mark.parametrize("rule, max_degenerate", [("linear", None), ("tchebycheff", 0.5), ("linear", 0.0)])
def test_the_search_scores_each_candidate_on_its_answers_and_the_anchors_take_the_rules_choice(
        tmp_path, tiny_base, pref_jsonl, adapters, rule, max_degenerate):
    cfg = _config(tmp_path, tiny_base, pref_jsonl, anchor_rule=rule, max_degenerate_rate=max_degenerate)
    scorers = [length_scorer, vowels_per_char]
    path = peo.search_and_save(cfg, adapters, scorers)
    assert path == cfg.family_path
    family = Family.load(path)
    m, search = family.manifest, family.manifest.training["search"]

    candidates, prompts, answers, per_prompt = _search_again(cfg, adapters, scorers)
    assert len({tuple(a) for a in answers}) > 1, "the candidates must answer differently for this test to bite"
    assert search["candidates"] == candidates and len(candidates) == 3 * 4
    assert search["n_prompts"] == len(prompts) == 3 and search["prompts"] == [peo.last_user_text(p) for p in prompts]
    np.testing.assert_allclose(search["per_prompt_scores"], per_prompt)  # the cost enters negated
    np.testing.assert_allclose(search["scores"], per_prompt.mean(axis=1))
    assert search["scorers"] == ["length", repr(vowels_per_char)]
    rates = peo.degenerate_rates(answers)
    assert search["degenerate_rate"] == rates.round(4).tolist()
    eligible = None if max_degenerate is None else rates <= max_degenerate
    points, gains, record = peo.choose_anchors(per_prompt.mean(axis=1), candidates, 0.25, 0.5, rule, eligible)
    assert {k: search[k] for k in record} == record and search["anchor_rule"] == rule
    assert ("excluded" in search) == (max_degenerate is not None)
    # the gate serves exactly the chosen anchors, in sample and extrapolated
    assert m.gate.kind == "anchors" and m.gate.mode == "interpolate"
    for w, g in zip(points, gains):
        got = m.gate.block_gains(torch.tensor([w], dtype=torch.float64))[0].tolist()
        assert got == pytest.approx(g)
    assert [p[0] for p in points] == [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    # the record of the run and the family's ranges
    assert m.method == "peo" and m.objectives[0].name == "helpful" and m.on_simplex
    assert (m.w_low, m.w_high, m.in_sample_low, m.in_sample_high) == ([-0.5, -0.5], [1.5, 1.5], [0, 0], [1, 1])
    assert m.training["alpha"] == 0.3
    assert m.training["adapters"] == {k: str(v.resolve()) for k, v in adapters.items()}
    assert [b.name for b in m.blocks] == ["helpful", "harmless", peo.BLOCK_GENERALIST]
    assert m.description == (
        "PEO: experts + interpolated generalist; a grid search over their coefficients, scored on 3 prompts, picks "
        f"the candidate for each anchor w (step 0.25, {rule} rule), w between anchors interpolated; w_1 outside "
        "[0, 1] extrapolates the preference (this project's extension; the paper extrapolates in weight space)")


def test_the_search_answers_with_the_configured_length_and_batches(tmp_path, tiny_base, pref_jsonl, adapters,
                                                                   monkeypatch):
    """The candidates answer ``max_new_tokens`` greedily in batches of ``generation_batch_size`` rows."""
    from paretoapp import generate

    seen = []
    real = generate.Policy.generate

    def spy(self, prompts, ws, settings, *a, **k):
        seen.append((len(prompts), settings.max_new_tokens, settings.do_sample))
        return real(self, prompts, ws, settings, *a, **k)

    monkeypatch.setattr(generate.Policy, "generate", spy)
    cfg = _config(tmp_path, tiny_base, pref_jsonl, max_new_tokens=2, generation_batch_size=5)
    peo.search_and_save(cfg, adapters, [length_scorer, vowels_per_char])
    assert [n for n, _, _ in seen] == [5] * 7 + [1]  # 12 candidates x 3 prompts = 36 rows
    assert {(t, s) for _, t, s in seen} == {(2, False)}


def test_without_scorers_the_search_builds_the_configured_ones(tmp_path, tiny_base, pref_jsonl, adapters,
                                                                monkeypatch):
    built = []

    def build(cfg, model, tokenizer):
        built.append((cfg.scorers, model.training, type(model).__name__, hasattr(tokenizer, "apply_chat_template")))
        return [length_scorer, vowels_per_char]

    monkeypatch.setattr(peo, "build_scorers", build)
    cfg = _config(tmp_path, tiny_base, pref_jsonl, scorers=["helpful_offline", "harmless_offline"])
    peo.search_and_save(cfg, adapters, None)
    # the plain base (the bank carries the adapters), in eval mode
    assert built == [(["helpful_offline", "harmless_offline"], False, "LlamaForCausalLM", True)]  # and the run's tokenizer


@pytest.mark.parametrize("prompt_format", ["chat", "raw"])
def test_the_candidates_family_takes_gains_not_preferences(tmp_path, tiny_base, pref_jsonl, adapters, monkeypatch,
                                                           prompt_format):
    """The search's throw-away family: one block per adapter, an identity gate (its "w" is the block gains
    themselves, any real numbers, not a point of the simplex) and the run's prompt format."""
    seen = []
    real = peo.generate_candidates
    monkeypatch.setattr(peo, "generate_candidates", lambda model, tok, family, *a: seen.append(family) or
                        real(model, tok, family, *a))
    cfg = _config(tmp_path, tiny_base, pref_jsonl)
    for o in cfg.objectives:  # data without the chat template: the family answers raw prompts
        o.data.chat = prompt_format == "chat"
    assert cfg.prompt_format == prompt_format
    peo.search_and_save(cfg, adapters, [length_scorer, vowels_per_char])
    (family,) = seen
    m = family.manifest
    assert m.prompt_format == prompt_format and m.on_simplex is False
    gains = torch.tensor([[0.3, -2.0, 5.0]], dtype=torch.float64)
    assert m.gate.block_gains(gains).tolist() == gains.tolist()
    assert [o.name for o in m.objectives] == [b.name for b in m.blocks] == ["helpful", "harmless",
                                                                              peo.BLOCK_GENERALIST]
