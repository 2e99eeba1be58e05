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
    assert m.on_simplex is False and m.is_in_sample([-1.0, 1.0]) and not m.is_in_sample([1.5, 0.0])
    m.check_w([-2.0, 2.0])  # any sign within the offered range
    assert m.training["vector"] == "theta_i+ - theta_i-"
    assert m.description == "Preference Vector: theta_0 + sum_i eta_i phi_i, phi_i = theta_i+ - theta_i-"


def test_eta_ranges_accept_equal_edges_and_refuse_crossed_ones(tmp_path, tiny_base, pref_jsonl):
    from paretoapp.trainers.config import ConfigError, load_config

    def config(**ranges):
        path = write_config(tmp_path / "pv.yaml", tiny_base, pref_jsonl, tmp_path / "run", **ranges)
        return load_config(preference_vector.PreferenceVectorConfig, str(path))

    for edge in (dict(eta_low=-1.0, in_sample_low=-1.0, in_sample_high=1.0, eta_high=1.0),
                 dict(eta_low=-2.0, in_sample_low=0.0, in_sample_high=0.0, eta_high=2.0)):
        cfg = config(**edge)
        assert all(getattr(cfg, k) == v for k, v in edge.items())
    for crossed in (dict(in_sample_low=1.5), dict(in_sample_low=-3.0), dict(in_sample_high=3.0)):
        with pytest.raises(ConfigError) as e:
            config(**crossed)
        assert str(e.value) == "need eta_low <= in_sample_low <= in_sample_high <= eta_high"
    assert preference_vector.vector_gate(2).matrix == [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]


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


@pytest.mark.parametrize("positive_only, negative_sft_weight", [(False, 0.2), (False, None), (True, None)])
def test_the_trainer_trains_each_objective_and_its_opposite_from_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                         monkeypatch, positive_only,
                                                                         negative_sft_weight):
    """The trainer itself: per objective a DPO run on its pairs and one on the same pairs swapped, both from
    theta_0 and against theta_0 at train.beta; the opposite run's NLL weight is ``negative_sft_weight``
    (unset: train.sft_weight's, as the positive run's); the ablation trains no opposite run and records
    theta_i+ - theta_0."""
    import torch
    from trainer_fixtures import PAIRS
    from trainer_spies import chosen_nll_per_token, dpo_losses, nearly, pair_texts, probe_logits, record_runs
    from transformers import AutoTokenizer

    from paretoapp.trainers.config import load_config
    from paretoapp.trainers.lora import load_base

    nll_weight = {"pos": 0.5, "neg": 0.5 if negative_sft_weight is None else negative_sft_weight}

    def oracle(run, model, batch, metrics):
        dpo = float(dpo_losses(model, batch, 0.3).mean())
        weight = nll_weight["neg" if run.name.endswith("-neg") else "pos"]
        return {"loss": dpo + weight * chosen_nll_per_token(model, batch), "dpo": dpo}

    path = write_config(tmp_path / "pv.yaml", tiny_base, pref_jsonl, tmp_path / "run", positive_only=positive_only,
                        negative_sft_weight=negative_sft_weight,
                        train={"max_steps": 3, "batch_size": 3, "learning_rate": 5e-2, "beta": 0.3, "sft_weight": 0.5})
    rec = record_runs(monkeypatch, oracle)
    family_dir = preference_vector.train(load_config(preference_vector.PreferenceVectorConfig, str(path)))
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
        assert all(v > 0.02 for v in nll)  # every run here carries an NLL term, so the weight is seen
    m = Family.load(family_dir).manifest
    kind = "theta_i+ - theta_0 (positive-only ablation)" if positive_only else "theta_i+ - theta_i-"
    assert m.training["vector"] == kind
    assert m.description == f"Preference Vector: theta_0 + sum_i eta_i phi_i, phi_i = {kind}"
    assert m.gate.matrix == ([[1.0, 0.0], [0.0, 1.0]] if positive_only else
                             [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
