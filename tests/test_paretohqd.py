"""ParetoHqD: Pareto layers and ray selection on a hand-made table; two-stage run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.family import Family
from paretoapp.trainers import paretohqd as hqd
from paretoapp.trainers.config import load_config

# normalised already: every column spans exactly [0, 1]
TABLE = np.array([
    [1.0, 0.0],   # 0  front
    [0.0, 1.0],   # 1  front
    [0.7, 0.7],   # 2  front
    [0.9, 0.4],   # 3  front
    [0.3, 0.9],   # 4  front
    [0.5, 0.5],   # 5  layer 2 (dominated by 2)
    [0.2, 0.2],   # 6  layer 3
    [0.8, 0.1],   # 7  layer 2 (dominated by 3)
])
PREFS = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]


def test_pareto_layers_by_hand():
    layers = hqd.pareto_layers(TABLE)
    assert [sorted(x.tolist()) for x in layers] == [[0, 1, 2, 3, 4], [5, 7], [6]]
    assert len(hqd.pareto_layers(TABLE, 1)) == 1


def test_selection_is_the_nondominated_points_nearest_each_direction():
    # w = (1, 0): the ray x = 1 -> distances 1 - x: 0 (0.0), 3 (0.1), 2 (0.3)
    # w = (.5, .5): the diagonal -> |x - y| / sqrt 2: 2 (0), 3 (0.35), 4 (0.42)
    # w = (0, 1): the ray y = 1 -> 1 (0.0), 4 (0.1), 2 (0.3)
    assert hqd.select_for_directions(TABLE, PREFS, n=2, n_layers=1) == [[0, 3], [2, 3], [1, 4]]
    assert hqd.select_for_directions(TABLE, PREFS, n=3, n_layers=1) == [[0, 3, 2], [2, 3, 4], [1, 4, 2]]
    # two layers: (0.5, 0.5) lies on the diagonal too and joins the balanced selection
    assert hqd.select_for_directions(TABLE, PREFS, n=2, n_layers=2)[1] == [2, 5]
    # raw scores in other units select the same points (min-max normalisation first)
    raw = TABLE * np.array([10.0, 2.0]) + np.array([3.0, -1.0])
    assert hqd.select_for_directions(raw, PREFS, n=2, n_layers=1) == [[0, 3], [2, 3], [1, 4]]
    np.testing.assert_allclose(hqd.ray_distance(TABLE[[2, 3]], [0.5, 0.5]), [0.0, 0.5 / np.sqrt(2)], atol=1e-12)


def length_scorer(prompts, responses):
    return [float(len(r)) for r in responses]


def vowel_scorer(prompts, responses):
    return [float(sum(ch in "aeiou" for ch in r)) - 0.5 * len(r) for r in responses]


@pytest.fixture(scope="module")
def hqd_run(tmp_path_factory, tiny_base, pref_jsonl):
    tmp = tmp_path_factory.mktemp("hqd")
    path = write_config(tmp / "hqd.yaml", tiny_base, pref_jsonl, tmp / "run", preferences=PREFS,
                        n_per_preference=3, n_layers=2, n_stage2_prompts=2, max_new_tokens=6,
                        stage2_per_preference=2, train={"max_steps": 2, "batch_size": 3})
    cfg = load_config(hqd.ParetoHqDConfig, str(path))
    return cfg, hqd.train(cfg, scorers=[length_scorer, vowel_scorer])


def test_two_stage_family(hqd_run, tiny_base):
    cfg, family_dir = hqd_run
    m = Family.load(family_dir).manifest
    assert m.method == "paretohqd" and m.gate.kind == "anchors" and m.gate.points == PREFS
    t = m.training
    assert set(t["stage1_selected"]) == {"w100-0", "w50-50", "w0-100"}
    assert all(len(v) == 3 for v in t["stage1_selected"].values())
    s2 = t["stage2"]
    assert s2["n_samples"] == 2 * 3 and 0.0 <= s2["collapse_rate"] <= 1.0 and set(s2["per_preference"])
    samples = (Path(cfg.output_dir) / "stage2_samples.jsonl").read_text().splitlines()
    assert len(samples) == 6
    # stage 2 continued from stage 1: the family's vertex is the stage-2 adapter
    stage2 = cfg.adapters_path / "hqd-stage2-w100-0" / "adapter"
    run = json.loads((cfg.adapters_path / "hqd-stage2-w100-0" / "run.json").read_text())
    assert run["init"].endswith("hqd-stage1-w100-0/adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [1.0, 0.0]), adapter_delta(tiny_base, stage2))
    # interpolation between the two nearest trained directions
    a = adapter_delta(tiny_base, stage2)
    b = adapter_delta(tiny_base, cfg.adapters_path / "hqd-stage2-w50-50" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.75, 0.25]), {k: 0.5 * a[k] + 0.5 * b[k] for k in a})


def test_stage1_selection_matches_the_scores(hqd_run):
    cfg, family_dir = hqd_run
    rows, _ = hqd.response_pool(cfg)
    scores = np.array([[length_scorer([], [r["response"]])[0], vowel_scorer([], [r["response"]])[0]] for r in rows])
    want = hqd.select_for_directions(scores, PREFS, 3, 2)
    got = Family.load(family_dir).manifest.training["stage1_selected"]
    assert [got["w100-0"], got["w50-50"], got["w0-100"]] == want


def test_family_generates_per_row(hqd_run):
    from paretoapp.generate import GenerationSettings, load_policy
    out = load_policy(hqd_run[1]).generate(["Hi.", "Hi."], [[1.0, 0.0], [0.2, 0.8]], GenerationSettings(max_new_tokens=3))
    assert len(out) == 2
