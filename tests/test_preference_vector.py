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
