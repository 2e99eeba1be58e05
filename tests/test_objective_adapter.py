"""One objective's adapter, as the trainer trains it: its pairs, from theta_0, against theta_0, with the config's beta.

Rewarded Soups' per-objective models, Preference Vector's +/- runs and PEO's phase 1 are all this run, so
these tests run ``train_objective_adapter`` itself and check what the loop was given and what the loss computed
(``trainer_spies``), not the config it was called with.
"""

from __future__ import annotations

import pytest
import torch
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config
from trainer_spies import (
    chosen_nll_per_token,
    dpo_losses,
    nearly,
    pair_texts,
    probe_logits,
    prompt_texts,
    record_runs,
    response_texts,
    sft_nll,
)
from transformers import AutoTokenizer

from paretoapp.trainers import objective_adapter
from paretoapp.trainers.config import load_config
from paretoapp.trainers.lora import load_base

FAST = {"learning_rate": 5e-2, "max_steps": 3, "batch_size": 3}


def _cfg(tmp_path, tiny_base, pref_jsonl, **train):
    path = write_config(tmp_path / "cfg.yaml", tiny_base, pref_jsonl, tmp_path / "run", train={**FAST, **train})
    return load_config(objective_adapter.AdaptersConfig, str(path))


def base_logits(tiny_base):
    model, _ = load_base(str(tiny_base))
    return probe_logits(model)


def dpo_oracle(beta, label_smoothing=0.0, sft_weight=0.0):
    """The loss a DPO run must compute: DPO at ``beta`` against theta_0 (+ RPO's NLL), and two it must not."""
    def oracle(run, model, batch, metrics):
        dpo = float(dpo_losses(model, batch, beta, label_smoothing=label_smoothing).mean())
        nll = chosen_nll_per_token(model, batch)
        return {"loss": dpo + sft_weight * nll, "dpo": dpo,
                "other_beta": float(dpo_losses(model, batch, 0.1, label_smoothing=label_smoothing).mean())
                + sft_weight * nll}
    return oracle


def assert_steps_match(run, n_steps=3, other="other_beta"):
    """Every step's loss is the oracle's, and the oracle tells ``other`` apart (the test can bite)."""
    assert len(run.steps) == n_steps
    for step in run.steps:
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    assert max(abs(s.expected["loss"] - s.expected[other]) for s in run.steps) > 1e-3


def seen_pairs(tokenizer, run) -> list[tuple[str, str, str]]:
    return [t for step in run.steps for t in pair_texts(tokenizer, step.batch)]


@pytest.mark.parametrize("objective", ["helpful", "harmless"])
def test_a_dpo_run_trains_its_objectives_pairs_from_the_base_against_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                             monkeypatch, objective):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, beta=0.3, label_smoothing=0.1)
    rec = record_runs(monkeypatch, dpo_oracle(0.3, label_smoothing=0.1))
    objective_adapter.train_objective_adapter(cfg, next(o for o in cfg.objectives if o.name == objective), "dpo")
    assert rec.names() == [f"{objective}-dpo"]
    run = rec[f"{objective}-dpo"]
    assert sorted((r["prompt"], r["chosen"], r["rejected"]) for r in run.rows) == \
        sorted((p, " " + c, " " + r) for p, c, r in PAIRS[objective])
    # three steps of three pairs over six pairs: every pair once per epoch, chosen rows first, each with its prompt
    tok = AutoTokenizer.from_pretrained(tiny_base)
    seen = seen_pairs(tok, run)
    assert len(seen) == 9 and set(seen) == set(PAIRS[objective])
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))  # a fresh adapter: theta_0
    assert run.trainable and all("lora_" in n and ".default." in n for n in run.trainable)
    assert {(c.kwargs.get("beta"), c.kwargs.get("label_smoothing")) for c in rec.calls_of("dpo_loss", run.name)} \
        == {(0.3, 0.1)}
    assert_steps_match(run)


def test_the_negative_run_trains_the_swapped_pairs(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    rec = record_runs(monkeypatch, dpo_oracle(0.1))
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo", negative=True)
    run = rec["helpful-dpo-neg"]
    seen = seen_pairs(AutoTokenizer.from_pretrained(tiny_base), run)
    assert set(seen) == {(p, r, c) for p, c, r in PAIRS["helpful"]}
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))
    for step in run.steps:
        assert nearly(step.loss, step.expected["loss"])


def test_rpo_adds_the_nll_of_the_chosen_answers(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """train.sft_weight = lambda: each step's loss is DPO + lambda * the chosen answers' NLL per token."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, sft_weight=0.5, beta=0.2)
    rec = record_runs(monkeypatch, dpo_oracle(0.2, sft_weight=0.5))
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo")
    run = rec["helpful-dpo"]
    assert_steps_match(run)
    for step in run.steps:
        assert nearly(step.metrics["dpo_loss"], step.expected["dpo"]) and step.loss - step.expected["dpo"] > 0.1


def test_an_sft_run_trains_on_the_chosen_responses_only(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """SFT on objective i: the chosen answers, the loss on the response tokens only (the prompt is context)."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)

    def oracle(run, model, batch, metrics):
        return {"loss": sft_nll(model, batch), "with_prompt": sft_nll(model, batch, "attention_mask")}

    rec = record_runs(monkeypatch, oracle)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "sft")
    run = rec["harmless-sft"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    pairs = {(p, c) for p, c, _ in PAIRS["harmless"]}
    for step in run.steps:
        rows = set(zip(prompt_texts(tok, step.batch), response_texts(tok, step.batch)))
        assert rows <= pairs and len(rows) == 3
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))
    assert_steps_match(run, other="with_prompt")
    assert len(rec.calls_of("sft_loss", run.name)) == 3 and not rec.calls_of("dpo_loss")


def test_an_sft_run_truncates_as_configured(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """train.max_prompt_length keeps the prompt's last tokens and train.max_length cuts the response: every SFT
    row is at most max_length real tokens, its prompt at most max_prompt_length, the loss on what is left of the
    chosen answer (its start)."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, max_length=9, max_prompt_length=4)
    rec = record_runs(monkeypatch)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "sft")
    run = rec["harmless-sft"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    chosen = [c for _, c, _ in PAIRS["harmless"]]
    for step in run.steps:
        real = step.batch["attention_mask"].sum(-1)
        prompt = real - step.batch["completion_mask"].sum(-1)
        assert real.max() == 9 and prompt.max() == 4 and prompt.min() >= 1
        for response in response_texts(tok, step.batch):
            assert response and any(c.startswith(response) and c != response for c in chosen), response
