"""Preference Vector end to end: the vector is theta_+ - theta_- and eta scales it, any sign."""

from __future__ import annotations

import json

import pytest
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.family import Family
from paretoapp.trainers import preference_vector


@pytest.fixture(scope="module")
def pv_run(tmp_path_factory, tiny_base, pref_jsonl):
    out = tmp_path_factory.mktemp("pv")
    cfg = write_config(out / "pv.yaml", tiny_base, pref_jsonl, out / "run")
    return out / "run", preference_vector.main(["--config", str(cfg)])


def test_manifest_blocks_gate_and_ranges(pv_run):
    _, family_dir = pv_run
    m = Family.load(family_dir).manifest
    assert [b.name for b in m.blocks] == ["helpful_pos", "helpful_neg", "harmless_pos", "harmless_neg"]
    assert m.gate.matrix == [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]
    assert not m.on_simplex and m.is_in_sample([-1.0, 1.0]) and not m.is_in_sample([1.5, 0.0])
    m.check_w([-2.0, 2.0])  # any sign within the offered range


def test_negative_run_trained_on_swapped_pairs(pv_run):
    run, _ = pv_run
    pos = json.loads((run / "adapters" / "helpful-dpo" / "run.json").read_text())
    neg = json.loads((run / "adapters" / "helpful-dpo-neg" / "run.json").read_text())
    assert pos["data"]["swap"] is False and neg["data"]["swap"] is True


def test_vector_is_theta_pos_minus_theta_neg(pv_run, tiny_base):
    run, family_dir = pv_run
    d = {name: adapter_delta(tiny_base, run / "adapters" / name / "adapter")
         for name in ("helpful-dpo", "helpful-dpo-neg", "harmless-dpo", "harmless-dpo-neg")}
    phi_help = {k: d["helpful-dpo"][k] - d["helpful-dpo-neg"][k] for k in d["helpful-dpo"]}
    phi_harm = {k: d["harmless-dpo"][k] - d["harmless-dpo-neg"][k] for k in d["harmless-dpo"]}
    assert_deltas_close(family_delta(tiny_base, family_dir, [1.0, 0.0]), phi_help)
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.0, 1.0]), phi_harm)
    eta = [-0.5, 1.5]
    assert_deltas_close(family_delta(tiny_base, family_dir, eta),
                        {k: eta[0] * phi_help[k] + eta[1] * phi_harm[k] for k in phi_help})


@pytest.mark.parametrize("positive_only", [False, True])
def test_the_trainer_trains_each_objective_and_its_opposite_from_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                         monkeypatch, positive_only):
    """The trainer itself: per objective a DPO run on its pairs and one on the same pairs swapped, both from
    theta_0 and against theta_0 at train.beta; the opposite run with ``negative_sft_weight`` (plain DPO here)
    while the positive one keeps train.sft_weight's NLL; the ablation trains no opposite run."""
    import torch
    from trainer_fixtures import PAIRS
    from trainer_spies import chosen_nll_per_token, dpo_losses, nearly, pair_texts, probe_logits, record_runs
    from transformers import AutoTokenizer

    from paretoapp.trainers.config import load_config
    from paretoapp.trainers.lora import load_base

    def oracle(run, model, batch, metrics):
        dpo = float(dpo_losses(model, batch, 0.3).mean())
        return {"loss": dpo + (0.0 if run.name.endswith("-neg") else 0.5 * chosen_nll_per_token(model, batch)),
                "dpo": dpo}

    path = write_config(tmp_path / "pv.yaml", tiny_base, pref_jsonl, tmp_path / "run", positive_only=positive_only,
                        negative_sft_weight=0.0,
                        train={"max_steps": 3, "batch_size": 3, "learning_rate": 5e-2, "beta": 0.3, "sft_weight": 0.5})
    rec = record_runs(monkeypatch, oracle)
    preference_vector.train(load_config(preference_vector.PreferenceVectorConfig, str(path)))
    want = {f"{o}-dpo": PAIRS[o] for o in ("helpful", "harmless")}
    if not positive_only:
        want.update({f"{o}-dpo-neg": [(p, r, c) for p, c, r in PAIRS[o]] for o in ("helpful", "harmless")})
    assert sorted(rec.names()) == sorted(want)
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base, _ = load_base(str(tiny_base))
    for name, pairs in want.items():
        run = rec[name]
        seen = [t for s in run.steps for t in pair_texts(tok, s.batch)]
        assert set(seen) <= set(pairs) and len(set(seen)) == 6
        for step in run.steps:
            assert nearly(step.loss, step.expected["loss"]), (name, step.loss, step.expected)
        torch.testing.assert_close(run.start_logits, probe_logits(base))
        nll = [s.loss - s.expected["dpo"] for s in run.steps]
        assert all(v > 0.1 for v in nll) if not name.endswith("-neg") else all(abs(v) < 1e-5 for v in nll)
