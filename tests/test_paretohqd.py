"""ParetoHqD: Pareto layers and ray selection on a hand-made table; two-stage run end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config

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
SAMPLE_PREFS = [[1.0, 0.0], [0.7, 0.3], [0.2, 0.8]]  # 0.7 is nearest 0.5, 0.2 nearest 0: off the trained points


def test_pareto_layers_by_hand():
    layers = hqd.pareto_layers(TABLE)
    assert [sorted(x.tolist()) for x in layers] == [[0, 1, 2, 3, 4], [5, 7], [6]]
    assert len(hqd.pareto_layers(TABLE, 1)) == 1


def test_duplicates_share_a_layer():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.0], [0.2, 0.0]])
    assert [x.tolist() for x in hqd.pareto_layers(points)] == [[0, 1, 2], [3, 4]]


def test_selection_on_a_given_range_and_ties_in_data_order():
    """Stage 2 selects on stage 1's range (lo, hi), not the new data's own; equal distances keep the data order."""
    scores = np.array([[0.9, 0.3], [0.2, 0.7], [0.6, 0.5], [0.7, 0.4]])
    # on [0, 2] x [0, 1]: (.45, .3), (.1, .7), (.3, .5), (.35, .4): point 3 is nearest the diagonal;
    # on the data's own range point 2 would be (4/7, 1/2)
    assert hqd.select_for_directions(scores, PREFS, n=1, n_layers=1, lo=[0, 0], hi=[2, 1]) == [[0], [3], [1]]
    assert hqd.select_for_directions(scores, PREFS, n=1, n_layers=1) == [[0], [2], [1]]
    # 40 points in two groups of exact ties (more than numpy's insertion-sort cutoff): data order within a group
    tied = np.array([[1.0, 0.0], [0.0, 1.0]] * 20)
    assert hqd.select_for_directions(tied, [[1.0, 0.0]], n=6, n_layers=1) == [[0, 2, 4, 6, 8, 10]]


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


def test_minmax_and_default_sampling_preferences():
    norm, lo, hi = hqd.minmax_normalise(np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    assert norm.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]] and lo.tolist() == [1.0, 5.0]
    assert hi.tolist() == [3.0, 5.0]
    norm, _, _ = hqd.minmax_normalise(np.array([[1.0, 5.0]]), lo=[0, 0], hi=[2, 10])
    assert norm.tolist() == [[0.5, 0.5]]
    assert hqd.minmax_normalise(np.array([[1.0, 0.0], [1.5, 0.0]]))[0].tolist() == [[0.0, 0.0], [1.0, 0.0]]  # range < 1
    assert hqd.default_sample_preferences(3) == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0],
                                                 [1 / 3, 1 / 3, 1 / 3]]


def test_direction_is_the_ray_from_the_ideal_point():
    """Off the diagonal the ray from r_max = (1, 1) along w - 1 and the line through 0 along w disagree.

    w = (0.8, 0.2): the ray leaves (1, 1) along (-0.2, -0.8), i.e. x = 1 - 0.25 (1 - y).
    Front points, by distance to the ray: 3 (0.049), 2 (0.218), 0 (0.243); to the line
    through the origin along w the order would be 3 (0.170), 0 (0.243), 2 (0.509).
    """
    d = np.array([-0.2, -0.8]) / np.hypot(0.2, 0.8)
    rel = TABLE - 1.0
    want = np.linalg.norm(rel - np.outer(rel @ d, d), axis=1)
    np.testing.assert_allclose(hqd.ray_distance(TABLE, [0.8, 0.2]), want, atol=1e-12)
    assert hqd.select_for_directions(TABLE, [[0.8, 0.2]], n=3, n_layers=1) == [[3, 2, 0]]
    assert hqd.select_for_directions(TABLE, [[0.8, 0.2]], n=3, n_layers=2) == [[7, 3, 2]]
    # the ray passes through the compromise point W(w) = r_min + w (r_max - r_min) = w
    assert hqd.ray_distance(np.array([[0.8, 0.2], [0.9, 0.6]]), [0.8, 0.2]) == pytest.approx([0.0, 0.0], abs=1e-12)


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
    # each stage-2 run's recipe names its stage, start, rows and settings, so a finished run is reused only
    # for the same selection (a run on another selection is trained again)
    from paretoapp.trainers.multi_objective import recipe_hash
    from paretoapp.trainers.objective_adapter import train_recipe
    rows = [json.loads(line) for line in samples]
    for label, idx in s2["selected"].items():
        run = json.loads((cfg.adapters_path / f"hqd-stage2-{label}" / "run.json").read_text())
        chosen = [{"prompt": rows[i]["prompt"], "response": rows[i]["response"]} for i in idx]
        assert run == {"stage": 2, "init": str((cfg.adapters_path / f"hqd-stage1-{label}" / "adapter").resolve()),
                       "rows": recipe_hash(chosen), "train": train_recipe(cfg.train)}
    assert m.description.startswith("ParetoHqD: one two-stage SFT adapter per preference direction (3)")
    assert_deltas_close(family_delta(tiny_base, family_dir, [1.0, 0.0]), adapter_delta(tiny_base, stage2))
    # interpolation between the two nearest trained directions
    a = adapter_delta(tiny_base, stage2)
    b = adapter_delta(tiny_base, cfg.adapters_path / "hqd-stage2-w50-50" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.75, 0.25]), {k: 0.5 * a[k] + 0.5 * b[k] for k in a})


def test_stage2_starts_from_the_stage1_weights(hqd_run, tiny_base, tmp_path):
    """Stage 2 at learning rate 0 must leave each preference's stage-1 adapter exactly as it was."""
    cfg, _ = hqd_run
    out = tmp_path / "run"
    shutil.copytree(cfg.output_dir, out)  # stage-1 adapters and the stage-2 samples are reused
    shutil.rmtree(out / "family")
    for d in (out / "adapters").glob("hqd-stage2-*"):
        shutil.rmtree(d)
    frozen = dataclasses.replace(cfg, output_dir=str(out),
                                 stage2_train=dataclasses.replace(cfg.train, learning_rate=0.0))
    family_dir = hqd.train(frozen, scorers=[length_scorer, vowel_scorer])
    for w in PREFS:
        stage1 = out / "adapters" / f"hqd-stage1-{hqd.point_label(w)}" / "adapter"
        assert_deltas_close(family_delta(tiny_base, family_dir, w), adapter_delta(tiny_base, stage1))


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


def test_the_trainer_trains_each_direction_on_its_own_selection_from_the_right_weights(tmp_path, tiny_base,
                                                                                     pref_jsonl, monkeypatch):
    """The trainer itself. Stage 1: each direction's SFT (loss on the response only) from theta_0 on the data
    points selected for it. Stage 2: every sampling preference answers with the stage-1 model of its nearest
    direction (sampled at the configured temperature and seed, in chunks of ``generation_batch_size``, all
    kept); each direction continues its own stage-1 adapter on its own selection of those answers."""
    import torch
    from trainer_checks import base_state
    from trainer_spies import probe_logits, prompt_texts, record_runs, response_texts, sft_nll
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paretoapp.bank import PreferenceBank
    from paretoapp.generate import Policy

    def oracle(run, model, batch, metrics):
        return {"loss": sft_nll(model, batch), "with_prompt": sft_nll(model, batch, "attention_mask")}

    generated = []
    generate = Policy.generate

    settings_used = []

    def recording_generate(self, prompts, ws, settings=None, *args, **kwargs):
        out = generate(self, prompts, ws, settings, *args, **kwargs)
        generated.append((self.family, list(prompts), [[float(v) for v in w] for w in ws], list(out)))
        settings_used.append(settings)
        return out

    monkeypatch.setattr(Policy, "generate", recording_generate)
    path = write_config(tmp_path / "hqd.yaml", tiny_base, pref_jsonl, tmp_path / "run", preferences=PREFS,
                        n_per_preference=3, n_layers=2, n_stage2_prompts=2, max_new_tokens=6,
                        stage2_per_preference=2, train={"max_steps": 2, "batch_size": 3, "learning_rate": 5e-2},
                        stage2_sample_preferences=SAMPLE_PREFS, temperature=0.9, generation_batch_size=4)
    cfg = load_config(hqd.ParetoHqDConfig, str(path))
    rec = record_runs(monkeypatch, oracle)
    hqd.train(cfg, scorers=[length_scorer, vowel_scorer])
    labels = [hqd.point_label(w) for w in PREFS]
    assert rec.names() == [f"hqd-stage1-{x}" for x in labels] + [f"hqd-stage2-{x}" for x in labels]

    # the data pool: every distinct (prompt, response) of both objectives' pairs, scored by the test
    pool = []
    for objective in ("helpful", "harmless"):
        for p, c, r in PAIRS[objective]:
            pool += [row for row in ({"prompt": p, "response": " " + c}, {"prompt": p, "response": " " + r})
                     if row not in pool]

    def scores(rows):
        return np.array([[length_scorer([], [r["response"]])[0], vowel_scorer([], [r["response"]])[0]] for r in rows])

    s1 = scores(pool)
    lo, hi = s1.min(axis=0), s1.max(axis=0)
    normalisation = Family.load(cfg.family_path).manifest.training["normalisation"]
    assert normalisation == {"lo": pytest.approx(lo.tolist()), "hi": pytest.approx(hi.tolist())}
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base = AutoModelForCausalLM.from_pretrained(tiny_base)

    def check_sft_run(run, rows):
        assert [(r["prompt"], r["response"]) for r in run.rows] == [(r["prompt"], r["response"]) for r in rows]
        want = {(r["prompt"].strip(), r["response"].strip()) for r in rows}
        for step in run.steps:
            assert set(zip(prompt_texts(tok, step.batch), response_texts(tok, step.batch))) <= want
            assert abs(step.loss - step.expected["loss"]) < 1e-4 * max(1.0, step.expected["loss"])
        assert max(abs(s.expected["loss"] - s.expected["with_prompt"]) for s in run.steps) > 1e-3
        assert run.trainable and all(".default." in n for n in run.trainable)

    selected = hqd.select_for_directions(s1, PREFS, 3, 2)
    assert len({tuple(idx) for idx in selected}) == 3  # the directions' selections differ: a swap would show
    for label, idx in zip(labels, selected):
        run = rec[f"hqd-stage1-{label}"]
        check_sft_run(run, [pool[i] for i in idx])
        torch.testing.assert_close(run.start_logits, probe_logits(base))

    # stage 2's answers: each sampling preference (two of them between trained directions) from the stage-1
    # model of its nearest direction, sampled as configured, 3 x 2 answers in chunks of 4, every chunk kept
    stage1 = {label: adapter_delta(tiny_base, cfg.adapters_path / f"hqd-stage1-{label}" / "adapter") for label in labels}
    rows = [(p, w, t) for family, prompts, ws, out in generated for p, w, t in zip(prompts, ws, out)]
    assert sorted({tuple(w) for _, w, _ in rows}) == sorted(tuple(w) for w in SAMPLE_PREFS)
    assert [len(prompts) for _, prompts, _, _ in generated] == [4, 2]
    assert all((s.do_sample, s.temperature, s.seed, s.max_new_tokens, s.overflow) == (True, 0.9, 0, 6, "truncate_left")
               for s in settings_used)
    theta0 = base_state(tiny_base)
    for family, _, ws, _ in generated:
        for w in {tuple(w) for w in ws}:
            nearest = labels[int(np.argmin([np.linalg.norm(np.subtract(w, p)) for p in PREFS]))]
            merged = PreferenceBank(AutoModelForCausalLM.from_pretrained(tiny_base), family).merged_state_dict(list(w))
            assert_deltas_close({k: merged[k] - theta0[k] for k in theta0}, stage1[nearest])
    samples = [json.loads(line) for line in (Path(cfg.output_dir) / "stage2_samples.jsonl").read_text().splitlines()]
    assert [(s["prompt"], s["sampled_at"], s["response"]) for s in samples] == rows

    selected = hqd.select_for_directions(scores(samples), PREFS, 2, 2, lo, hi)
    assert len({tuple(idx) for idx in selected}) > 1
    for label, idx in zip(labels, selected):
        run = rec[f"hqd-stage2-{label}"]
        check_sft_run(run, [samples[i] for i in idx])
        start = AutoModelForCausalLM.from_pretrained(tiny_base)
        start.load_state_dict({k: theta0[k] + stage1[label][k] for k in theta0})
        torch.testing.assert_close(run.start_logits, probe_logits(start), atol=1e-4, rtol=1e-4)


def _hqd_config(tmp_path, tiny_base, pref_jsonl, **extra):
    settings = {"preferences": PREFS, "n_per_preference": 3, "n_layers": 2, "n_stage2_prompts": 2,
                "max_new_tokens": 4, "stage2_per_preference": 2, "train": {"max_steps": 1, "batch_size": 3}, **extra}
    return load_config(hqd.ParetoHqDConfig, str(write_config(tmp_path / "hqd.yaml", tiny_base, pref_jsonl,
                                                             tmp_path / "run", **settings)))


def test_bad_settings_are_named_and_the_edges_accepted(tmp_path, tiny_base, pref_jsonl):
    from paretoapp.trainers.config import ConfigError

    for bad, message in ((dict(n_layers=0), "need n_layers >= 1 and n_per_preference >= 1"),
                         (dict(n_per_preference=0), "need n_layers >= 1 and n_per_preference >= 1"),
                         (dict(gate_mode="both"), "gate_mode must be 'nearest' or 'interpolate', got 'both'"),
                         (dict(preferences=[[0.5, 0.6]]), "preference points must lie on the simplex"),
                         (dict(stage2_sample_preferences=[[1.0]]), "every preference point needs 2 values"),
                         (dict(preferences=None, grid_resolution=0), "grid_resolution must be at least 1, got 0")):
        with pytest.raises(ConfigError) as e:
            _hqd_config(tmp_path, tiny_base, pref_jsonl, **bad)
        assert str(e.value).startswith(message)
    cfg = _hqd_config(tmp_path, tiny_base, pref_jsonl, n_layers=1, n_per_preference=1, gate_mode="nearest",
                      preferences=None, grid_resolution=2)
    assert (cfg.n_layers, cfg.n_per_preference, cfg.gate_mode) == (1, 1, "nearest")


def test_one_stage_a_prompt_file_samples_per_prompt_and_reuse(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    import json

    import torch
    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError

    rec = record_runs(monkeypatch)
    built = []

    def build_scorers(specs, cfg, k, what):  # the config's scorer names, built as any method builds them
        built.append((specs, cfg, k, what))
        return [length_scorer, vowel_scorer]

    monkeypatch.setattr(hqd, "build_objective_scorers", build_scorers)
    truncated = {"max_steps": 1, "batch_size": 3, "max_length": 9, "max_prompt_length": 4}
    one = _hqd_config(tmp_path, tiny_base, pref_jsonl, stage2=False, gate_mode="nearest", train=truncated,
                      preferences=None, grid_resolution=2, scorers=["length_words", "refusal"], n_per_preference=4)
    m = Family.load(hqd.train(one)).manifest
    assert built == [(["length_words", "refusal"], one, 2, "ParetoHqD")]
    assert rec.names() == [f"hqd-stage1-{hqd.point_label(w)}" for w in PREFS]  # the grid of step 1/2
    batches = [s.batch for r in rec.runs for s in r.steps]  # the configured truncation reaches the SFT runs
    real = torch.cat([b["attention_mask"].sum(-1) for b in batches])
    prompt = real - torch.cat([b["completion_mask"].sum(-1) for b in batches])
    assert real.max() == 9 and prompt.max() == 4
    assert "stage2" not in m.training and m.gate.mode == "nearest"
    assert m.description == "ParetoHqD: one one-stage SFT adapter per preference direction (3), gate: nearest"
    assert m.training["n_layers"] == 2 and m.training["n_responses"] == 24
    assert m.training["scorers"] == ["length_words", "refusal"]
    recipe = json.loads((one.adapters_path / "hqd-stage1-w100-0" / "run.json").read_text())
    assert {k: recipe[k] for k in ("stage", "base_model", "revision", "w", "scorers")} == \
        {"stage": 1, "base_model": str(tiny_base), "revision": None, "w": [1.0, 0.0], "scorers": ["length_words", "refusal"]}
    assert recipe["lora"]["r"] == 2 and recipe["train"]["max_length"] == 9
    assert recipe["rows"] == hqd.recipe_hash(rec.runs[0].rows)

    prompts = tmp_path / "fresh.txt"
    prompts.write_text("Fresh one?\n\nFresh two?\nFresh three?\n")
    two = _hqd_config(tmp_path, tiny_base, pref_jsonl, stage2_prompts=str(prompts), samples_per_prompt=2,
                      stage2_sample_preferences=[[0.8, 0.2]], overwrite=True, train=truncated,
                      scorers=["length_words", "refusal"], stage2_per_preference=None, n_per_preference=4,
                      stage2_train={"max_steps": 2, "batch_size": 1, "progress": False})
    n = len(rec.runs)
    with monkeypatch.context() as other_process:  # as a process other than the main one: the samples from the cache
        other_process.setattr(hqd, "on_main_process", lambda fn: (fn(), None)[1])
        hqd.train(two)
    m = Family.load(two.family_path).manifest
    assert rec.names()[n:] == [f"hqd-stage2-{hqd.point_label(w)}" for w in PREFS]  # stage 1 reused
    assert all(r.cfg.max_steps == 2 and r.cfg.batch_size == 1 for r in rec.runs[n:])  # stage2_train
    samples = [json.loads(line) for line in (tmp_path / "run" / "stage2_samples.jsonl").read_text().splitlines()]
    assert [(s["prompt"], s["sampled_at"]) for s in samples] == [(p, [0.8, 0.2]) for p in ("Fresh one?", "Fresh two?")
                                                                 for _ in range(2)]
    s2 = m.training["stage2"]
    assert (s2["n_prompts"], s2["n_samples"], s2["sample_preferences"]) == (2, 4, [[0.8, 0.2]])
    assert all(len(v) == 2 for v in s2["selected"].values())  # stage2_per_preference unset: n_per_preference // 2
    n = len(rec.runs)
    hqd.train(two)
    assert len(rec.runs) == n  # everything reused, the samples from their cache
    with pytest.raises(ConfigError, match="different settings"):
        hqd.train(dataclasses.replace(two, n_per_preference=2))


def test_stage2_answers_the_held_out_prompts_and_stage1_scores_the_training_pairs(tmp_path, tiny_base, pref_jsonl,
                                                                                 monkeypatch):
    from trainer_fixtures import OBJECTIVES

    from paretoapp.trainers.data import DataSpec, train_eval_pairs

    held_out = {"source": str(pref_jsonl), "eval_fraction": 0.34}
    cfg = _hqd_config(tmp_path, tiny_base, pref_jsonl, objectives=[{"name": o, "data": held_out} for o in OBJECTIVES],
                      n_stage2_prompts=16, max_new_tokens=2)
    asked = []
    sample = hqd.sample_stage1

    def recording_sample(cfg, adapters, points, prompts, sample_prefs):
        asked.extend(prompts)
        return sample(cfg, adapters, points, prompts, sample_prefs)

    monkeypatch.setattr(hqd, "sample_stage1", recording_sample)
    m = Family.load(hqd.train(cfg, scorers=[length_scorer, vowel_scorer])).manifest
    split = [train_eval_pairs(DataSpec(source=str(pref_jsonl), eval_fraction=0.34, objective=o), 0) for o in OBJECTIVES]
    assert asked == list(dict.fromkeys(p["prompt"] for _, held in split for p in held))  # held out, unique
    responses = {(p["prompt"], p[key]) for train, _ in split for p in train for key in ("chosen", "rejected")}
    assert m.training["n_responses"] == len(responses)


def test_the_response_pool_is_every_objectives_training_answers_once(tmp_path, tiny_base, pref_jsonl):
    """Stage 1 scores each (prompt, answer) of every objective's training pairs once, chosen and rejected alike;
    an objective without data (first or not) adds nothing, and no data at all is one line."""
    from paretoapp.errors import ConfigError
    from paretoapp.trainers.data import train_eval_pairs

    cfg = _hqd_config(tmp_path, tiny_base, pref_jsonl)
    rows, held = hqd.response_pool(cfg)
    want, held_want = [], []
    for o in cfg.objectives:
        train, ev = train_eval_pairs(o.data, cfg.train.seed)
        held_want += [p["prompt"] for p in ev]
        want += [{"prompt": p["prompt"], "response": p[k]} for p in train for k in ("chosen", "rejected")]
    assert rows == want and held == held_want
    first = rows[: len(rows) // 2]
    cfg.objectives[1].data = dataclasses.replace(cfg.objectives[0].data)   # both objectives read the same pairs
    assert hqd.response_pool(cfg)[0] == first                              # each answer once
    cfg.objectives[0].data = None                                          # the first objective has no data
    assert hqd.response_pool(cfg)[0] == first
    cfg.objectives[1].data = None
    with pytest.raises(ConfigError, match="^ParetoHqD found no responses to score: give the objectives data$"):
        hqd.response_pool(cfg)


def test_fresh_prompts_and_the_collapse_report(tmp_path, tiny_base, pref_jsonl):
    cfg = _hqd_config(tmp_path, tiny_base, pref_jsonl, n_stage2_prompts=3)
    rows = [{"prompt": p} for p in ("a", "b", "a", "c", "d")]
    assert hqd.fresh_prompts(cfg, [], rows) == ["a", "b", "c"]          # the data's prompts, unique, cut
    assert hqd.fresh_prompts(cfg, ["h1", "h1", "h2"], rows) == ["h1", "h2"]  # held-out prompts first
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "j1"}\n{"prompt": "j2"}\n')
    cfg.stage2_prompts = str(jsonl)
    assert hqd.fresh_prompts(cfg, ["h1"], rows) == ["j1", "j2"]
    # a chat prompt written twice with its keys in another order is one prompt
    same = [[{"role": "user", "content": "hi"}], [{"content": "hi", "role": "user"}]]
    assert hqd.fresh_prompts(dataclasses.replace(cfg, stage2_prompts=None), same, rows) == same[:1]
    samples = [{"response": "ok then fine", "sampled_at": [1.0, 0.0]}, {"response": "no", "sampled_at": [1.0, 0.0]},
               {"response": "a fine long answer here", "sampled_at": [0.5, 0.5]}]
    assert hqd.collapse_report(samples) == {"collapse_rate": pytest.approx(1 / 3),
                                            "per_preference": {"w100-0": 0.5, "w50-50": 0.0}, "n": 3}
    assert hqd.collapse_report([]) == {"collapse_rate": 0.0, "per_preference": {}, "n": 0}
