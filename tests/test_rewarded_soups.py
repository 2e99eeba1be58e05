"""Rewarded Soups end to end on a tiny model: one command -> a family whose vertices are the adapters."""

from __future__ import annotations

import pytest
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.family import Family
from paretoapp.trainers import rewarded_soups


@pytest.fixture(scope="module")
def rs_run(tmp_path_factory, tiny_base, pref_jsonl):
    out = tmp_path_factory.mktemp("rs")
    cfg = write_config(out / "rs.yaml", tiny_base, pref_jsonl, out / "run")
    family_dir = rewarded_soups.main(["--config", str(cfg)])
    return out / "run", family_dir


def test_family_loads_with_identity_gate(rs_run):
    _, family_dir = rs_run
    family = Family.load(family_dir)
    m = family.manifest
    assert m.method == "rewarded_soups" and [o.name for o in m.objectives] == ["helpful", "harmless"]
    assert [b.name for b in m.blocks] == ["helpful", "harmless"]
    assert m.gate.kind == "affine" and m.gate.matrix == [[1.0, 0.0], [0.0, 1.0]]
    assert m.on_simplex and m.is_in_sample([0.3, 0.7])
    assert (m.w_low, m.w_high, m.in_sample_low, m.in_sample_high) == ([0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    assert m.training["loss"] == "dpo"
    assert m.description == "Rewarded Soups: theta_0 + sum_i w_i delta_i, one DPO LoRA adapter per objective"


def test_vertex_equals_that_objectives_adapter(rs_run, tiny_base):
    run, family_dir = rs_run
    for w, objective in (([1.0, 0.0], "helpful"), ([0.0, 1.0], "harmless")):
        want = adapter_delta(tiny_base, run / "adapters" / f"{objective}-dpo" / "adapter")
        assert_deltas_close(family_delta(tiny_base, family_dir, w), want)
    # and an interior point is the weighted sum of the two
    h = adapter_delta(tiny_base, run / "adapters" / "helpful-dpo" / "adapter")
    s = adapter_delta(tiny_base, run / "adapters" / "harmless-dpo" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.3, 0.7]), {k: 0.3 * h[k] + 0.7 * s[k] for k in h})


def test_family_generates_per_row_preferences(rs_run):
    from paretoapp.generate import GenerationSettings, load_policy
    _, family_dir = rs_run
    policy = load_policy(family_dir)
    out = policy.generate(["Name a colour.", "Name a colour."], [[1.0, 0.0], [0.0, 1.0]],
                          GenerationSettings(max_new_tokens=4))
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_sft_variant_and_reused_adapters(tmp_path, tiny_base, pref_jsonl, rs_run):
    """loss=sft trains SFT adapters; a given adapter folder is used as is (no retraining)."""
    run, _ = rs_run
    given = run / "adapters" / "helpful-dpo" / "adapter"
    cfg = write_config(tmp_path / "rs.yaml", tiny_base, pref_jsonl, tmp_path / "run", loss="sft",
                       objectives=[{"name": "helpful", "adapter": str(given)},
                                   {"name": "harmless", "data": {"source": str(pref_jsonl)}}])
    family_dir = rewarded_soups.main(["--config", str(cfg)])
    assert not (tmp_path / "run" / "adapters" / "helpful-sft").exists()
    assert (tmp_path / "run" / "adapters" / "harmless-sft" / "done.json").is_file()
    assert_deltas_close(family_delta(tiny_base, family_dir, [1.0, 0.0]), adapter_delta(tiny_base, given))


@pytest.mark.parametrize("loss", ["dpo", "sft"])
def test_the_trainer_trains_one_adapter_per_objective_on_its_own_data_from_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                                   monkeypatch, loss):
    """The trainer itself: one run per objective from the same theta_0, each on its own objective's pairs,
    DPO at train.beta against theta_0, or SFT on the chosen answers with the loss on the response only."""
    import torch
    from trainer_fixtures import PAIRS
    from trainer_spies import (
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

    from paretoapp.trainers.config import load_config
    from paretoapp.trainers.lora import load_base

    def oracle(run, model, batch, metrics):
        if loss == "sft":
            return {"loss": sft_nll(model, batch), "other": sft_nll(model, batch, "attention_mask")}
        return {"loss": float(dpo_losses(model, batch, 0.3).mean()),
                "other": float(dpo_losses(model, batch, 0.1).mean())}

    path = write_config(tmp_path / "rs.yaml", tiny_base, pref_jsonl, tmp_path / "run", loss=loss,
                        train={"max_steps": 3, "batch_size": 3, "learning_rate": 5e-2, "beta": 0.3})
    rec = record_runs(monkeypatch, oracle)
    rewarded_soups.train(load_config(rewarded_soups.RewardedSoupsConfig, str(path)))
    assert rec.names() == [f"helpful-{loss}", f"harmless-{loss}"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base, _ = load_base(str(tiny_base))
    for objective in ("helpful", "harmless"):
        run = rec[f"{objective}-{loss}"]
        assert sorted((r["prompt"], r["chosen"].strip(), r["rejected"].strip()) for r in run.rows) == \
            sorted(PAIRS[objective])
        for step in run.steps:
            if loss == "dpo":
                assert set(pair_texts(tok, step.batch)) <= set(PAIRS[objective])
            else:
                assert set(zip(prompt_texts(tok, step.batch), response_texts(tok, step.batch))) <= \
                    {(p, c) for p, c, _ in PAIRS[objective]}
            assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
        assert max(abs(s.expected["loss"] - s.expected["other"]) for s in run.steps) > 1e-3
        torch.testing.assert_close(run.start_logits, probe_logits(base))


def test_an_unknown_loss_is_one_line(tmp_path, tiny_base, pref_jsonl):
    from paretoapp.trainers.config import ConfigError, load_config

    path = write_config(tmp_path / "rs.yaml", tiny_base, pref_jsonl, tmp_path / "run", loss="ppo")
    with pytest.raises(ConfigError, match=r"loss must be one of \('dpo', 'sft'\), got 'ppo'"):
        load_config(rewarded_soups.RewardedSoupsConfig, str(path))
