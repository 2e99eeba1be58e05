"""Front evaluation: grids, prompts, batched-vs-alone equality, caching, results files, CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_tiny_family

from paretoapp import cli, pareto
from paretoapp.evaluate import (
    EvaluationError,
    compare_results,
    evaluate_family,
    is_collapsed,
    load_prompts,
    load_results,
    parse_grid,
    ric_grid_k3,
    simplex_grid,
    sweep_grid,
)
from paretoapp.generate import GenerationSettings, load_policy
from paretoapp.scorers import Scorer, build_scorers

PROMPTS = ["how do I bake bread at home", "tell me a joke", "explain gradient descent in simple words", "hi",
           "what is the capital of France"]
SETTINGS = GenerationSettings(max_new_tokens=8)


class CountingScorer(Scorer):
    """Answer length in characters; counts how many rows it was asked to score."""

    name = "chars"

    def __init__(self):
        self.rows_scored = 0

    def _score(self, prompts, responses):
        self.rows_scored += len(prompts)
        return [len(r) for r in responses]


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory, tokenizer_dir):
    return make_tiny_family(tmp_path_factory.mktemp("fam"), tokenizer_dir, arch="llama", k=2, seed=0)


@pytest.fixture(scope="module")
def other_family_dir(tmp_path_factory, tokenizer_dir):
    return make_tiny_family(tmp_path_factory.mktemp("fam2"), tokenizer_dir, arch="llama", k=2, seed=1)


def count_generate(monkeypatch, policy):
    """The preferences of every request the evaluator hands to the engine (and its options)."""
    calls = []
    original = policy.submit

    def spy(prompts, ws, settings=None, system_prompt=None, **kw):
        calls.append([tuple(w) for w in ws])
        calls[-1].append(kw)
        return original(prompts, ws, settings, system_prompt, **kw)

    monkeypatch.setattr(policy, "submit", spy)
    return calls


# ---------------------------------------------------------------- grids, prompts, collapse


def test_grids():
    g = simplex_grid(2, 10)
    assert g.shape == (11, 2) and np.allclose(g.sum(1), 1) and g[0].tolist() == [1, 0]
    g3 = simplex_grid(3, 2)
    assert g3.shape == (6, 3) and np.allclose(g3.sum(1), 1)
    ric = ric_grid_k3()
    assert ric.shape == (13, 3) and np.allclose(ric.sum(1), 1) and len({tuple(r) for r in ric}) == 13
    assert [0.2, 0.4, 0.4] in ric.tolist() and [1 / 3] * 3 in ric.tolist()
    ext = parse_grid("sweep:5:-0.5:1.5", 2)
    assert ext[:, 0].tolist() == [1.5, 1.0, 0.5, 0.0, -0.5] and np.allclose(ext.sum(1), 1)
    assert parse_grid("points:0.2,0.8;1,0", 2).tolist() == [[0.2, 0.8], [1, 0]]
    assert np.array_equal(parse_grid(None, 2), sweep_grid(11))
    with pytest.raises(EvaluationError, match="2 objectives"):
        parse_grid("sweep:5", 3)
    with pytest.raises(EvaluationError, match="length 3 but the family has 2"):
        parse_grid("points:0.2,0.3,0.5", 2)
    with pytest.raises(EvaluationError, match="unknown grid"):
        parse_grid("nonsense", 2)


def test_load_prompts(tmp_path):
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps({"prompt": p, "id": i}) for i, p in enumerate(PROMPTS)))
    assert load_prompts(tmp_path / "p.jsonl") == PROMPTS
    pd.DataFrame({"question": PROMPTS}).to_csv(tmp_path / "p.csv", index=False)
    assert load_prompts(tmp_path / "p.csv", column="question", limit=2) == PROMPTS[:2]
    with pytest.raises(EvaluationError, match="no 'prompt' column"):
        load_prompts(tmp_path / "p.csv")
    with pytest.raises(EvaluationError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")


def test_collapse_detection():
    assert is_collapsed("")
    assert is_collapsed("ok ok")
    assert is_collapsed("the cat sat " * 10)
    assert not is_collapsed("Mix flour, water, salt and yeast; knead for ten minutes, then bake it hot.")


# ---------------------------------------------------------------- the evaluation


def test_batched_per_row_equals_each_w_alone(family_dir, monkeypatch):
    policy = load_policy(family_dir)
    calls = count_generate(monkeypatch, policy)
    grid = parse_grid("sweep:5:-0.5:1.5", 2)
    scorers = ["length_words", "relevance", "harmless_offline"]
    sizes = []
    hook = policy.model.register_forward_pre_hook(lambda m, a, kw: sizes.append(kw["input_ids"].shape[0]),
                                                  with_kwargs=True)
    try:
        result = evaluate_family(policy, PROMPTS, scorers, grid=grid, settings=SETTINGS, batch_size=8,
                                 use_cache=False, show_progress=False)
    finally:
        hook.remove()
    assert len(calls) == 1 and len(calls[0]) == 25 + 1  # one request of all 25 rows (+ its options)
    assert calls[0][-1]["batch_size"] == 8 and max(sizes) == 8, "at most batch_size rows decode together"
    assert len(set(calls[0][:8])) > 1, "rows of several preferences decode together"
    monkeypatch.undo()

    alone = [policy.generate(list(PROMPTS), [list(w)] * len(PROMPTS), settings=SETTINGS) for w in grid]  # one w at a time
    flat = [a for per_w in alone for a in per_w]
    assert result.rows["response"].tolist() == flat
    assert len(set(flat)) > len(PROMPTS), "different preferences should give different answers"
    rows = result.rows
    for scorer in build_scorers(scorers[:1] + scorers[2:]):
        np.testing.assert_allclose(rows[scorer.name], scorer(PROMPTS * len(grid), flat), atol=1e-9)
    for wi, w in enumerate(grid):
        sub = rows[rows.w_idx == wi]
        assert sub[["w_obj0", "w_obj1"]].iloc[0].tolist() == pytest.approx(w.tolist())
        assert sub["prompt_id"].tolist() == list(range(len(PROMPTS)))
    # per-w means and the front are computed from those rows
    assert result.means["length_words"].tolist() == pytest.approx(rows.groupby("w_idx")["length_words"].mean().tolist())
    points = result.means[["length_words", "relevance", "harmless_offline"]].to_numpy()
    m = result.meta["metrics"]
    assert m["hypervolume"] == pytest.approx(pareto.hypervolume(points, m["reference"]))
    assert result.means["on_front"].tolist() == pareto.nondominated_mask(points).tolist()
    assert (result.means["length_words_ci_low"] <= result.means["length_words"]).all()
    assert set(rows["family_hash"]) == {policy.family.fingerprint()}


def test_cache_reuse_and_invalidation(family_dir, other_family_dir, tmp_path, monkeypatch):
    policy = load_policy(family_dir)
    calls = count_generate(monkeypatch, policy)
    scorer = CountingScorer()
    kw = dict(grid="sweep:3", settings=SETTINGS, cache_dir=tmp_path / "cache", show_progress=False)

    first = evaluate_family(policy, PROMPTS, [scorer], **kw)
    assert first.stats["generated"] == 15 and scorer.rows_scored == 15 and len(calls) == 1

    again = evaluate_family(policy, PROMPTS, [scorer], **kw)
    assert again.stats["generated"] == 0 and scorer.rows_scored == 15 and len(calls) == 1
    pd.testing.assert_frame_equal(again.rows, first.rows)

    # a new scorer is computed, the answers are reused
    again2 = evaluate_family(policy, PROMPTS, [scorer, "length_words"], **kw)
    assert again2.stats["generated"] == 0 and again2.stats["scored"] == ["length_words"]

    # other generation settings: new answers
    changed = evaluate_family(policy, PROMPTS, [scorer], **{**kw, "settings": GenerationSettings(max_new_tokens=5)})
    assert changed.stats["generated"] == 15 and len(calls) == 2 and scorer.rows_scored == 30

    # another family (other weights): new answers
    monkeypatch.undo()
    other = evaluate_family(other_family_dir, PROMPTS, [scorer], **kw)
    assert other.stats["generated"] == 15 and other.meta["family"]["hash"] != first.meta["family"]["hash"]

    # other prompts: new answers
    fewer = evaluate_family(policy, PROMPTS[:3], [scorer], **kw)
    assert fewer.stats["generated"] == 9


def test_each_distinct_answer_is_scored_once_and_every_row_gets_its_score(family_dir, tmp_path):
    scorer = CountingScorer()
    prompts = PROMPTS + PROMPTS[:2]  # a repeated prompt gets the same greedy answer at the same w
    res = evaluate_family(family_dir, prompts, [scorer], grid="sweep:3", settings=SETTINGS,
                          cache_dir=tmp_path / "cache", show_progress=False)
    distinct = res.rows[["prompt", "response"]].drop_duplicates()
    assert len(distinct) <= 15 < len(res.rows) == 21
    assert scorer.rows_scored == len(distinct)
    assert (res.rows["chars"] == res.rows["response"].str.len()).all()


def test_w_that_give_the_same_policy_share_one_generation(family_dir, tmp_path, monkeypatch):
    """An anchors family with mode "nearest" serves a 5-point sweep with 2 policies: each is generated once, and
    every w gets the answers its policy gives (those of the plain family at the anchor's gains)."""
    from paretoapp.family import Family
    from paretoapp.gates import Gate

    fam = Family.load(family_dir)
    fam.manifest.gate = Gate.anchors([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], mode="nearest")
    fam.manifest.w_low = fam.manifest.w_high = None
    nearest = load_policy(fam.save(tmp_path / "nearest"))
    calls = count_generate(monkeypatch, nearest)
    res = evaluate_family(nearest, PROMPTS, ["length_words"], grid="sweep:5", settings=SETTINGS,
                          cache_dir=tmp_path / "cache", show_progress=False)
    assert len(set(calls[0][:-1])) == 2 and len(calls[0]) - 1 == 2 * len(PROMPTS)  # one w per policy
    plain = evaluate_family(family_dir, PROMPTS, ["length_words"], grid=[[1.0, 0.0], [0.0, 1.0]],
                            settings=SETTINGS, cache_dir=tmp_path / "cache2", show_progress=False)
    want = {tuple(w): plain.rows[plain.rows["w_idx"] == i]["response"].tolist()
            for i, w in enumerate([[1.0, 0.0], [0.0, 1.0]])}
    for wi, w in enumerate(parse_grid("sweep:5", 2)):
        anchor = (1.0, 0.0) if w[0] > 0.5 else (0.0, 1.0) if w[0] < 0.5 else None
        got = res.rows[res.rows["w_idx"] == wi]["response"].tolist()
        if anchor is not None:
            assert got == want[anchor], f"w = {w.tolist()} should answer as its nearest anchor {anchor}"
    # sampled answers are never shared: each row has its own seed
    calls.clear()
    evaluate_family(nearest, PROMPTS, ["length_words"], grid="sweep:5", cache_dir=tmp_path / "cache3",
                    settings=GenerationSettings(max_new_tokens=4, do_sample=True, seed=1), show_progress=False)
    assert len(calls[0]) - 1 == 5 * len(PROMPTS)


def test_family_range_is_checked_before_work(family_dir):
    with pytest.raises(ValueError, match="range|outside|allowed"):
        evaluate_family(family_dir, PROMPTS, "length_words", grid="sweep:3:-5:6", settings=SETTINGS,
                        use_cache=False, show_progress=False)


def test_save_load_and_compare(family_dir, other_family_dir, tmp_path):
    kw = dict(grid="sweep:3", settings=SETTINGS, cache_dir=tmp_path / "cache", show_progress=False)
    a = evaluate_family(family_dir, PROMPTS, "length_words,harmless_offline", **kw)
    b = evaluate_family(other_family_dir, PROMPTS, "length_words,harmless_offline", **kw)
    a.save(tmp_path / "a")
    a.save(tmp_path / "a")  # replacing an existing folder works
    b.save(tmp_path / "b")
    la = load_results(tmp_path / "a")
    pd.testing.assert_frame_equal(la.rows, a.rows)
    assert la.objectives == ["length_words", "harmless_offline"] and la.maximise == [True, True]
    table, ref = compare_results({"a": la, "b": load_results(tmp_path / "b")})
    expected_ref = pareto.reference_point(a.front_points(), b.front_points())
    assert ref.tolist() == pytest.approx(expected_ref.tolist())
    assert table.loc["a", "hypervolume"] == pytest.approx(pareto.hypervolume(a.front_points(), ref))
    assert table["same_prompts"].all()
    c = evaluate_family(family_dir, PROMPTS, "length_words", **kw)
    with pytest.raises(EvaluationError, match="share their scorers"):
        compare_results({"a": a, "c": c})
    with pytest.raises(EvaluationError, match="not a results folder"):
        load_results(tmp_path)


def test_cli_evaluate_and_compare(family_dir, other_family_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS[:3]))
    common = ["--prompts", str(prompts), "--scorers", "length_words,harmless_offline", "--grid", "sweep:3",
              "--max-new-tokens", "6", "--cache-dir", str(tmp_path / "cache"), "--quiet", "--device", "cpu"]
    assert cli.main(["evaluate", str(family_dir), *common, "--out", str(tmp_path / "r1")]) == 0
    out = capsys.readouterr().out
    assert "hypervolume" in out and "reference point" in out
    assert cli.main(["evaluate", str(other_family_dir), *common, "--out", str(tmp_path / "r2")]) == 0
    rows = pd.read_parquet(tmp_path / "r1" / "rows.parquet")
    assert len(rows) == 9 and {"w_obj0", "w_obj1", "prompt_id", "response", "length_words", "harmless_offline",
                               "settings", "family_hash"} <= set(rows.columns)
    capsys.readouterr()
    html = tmp_path / "fronts.html"
    assert cli.main(["compare", str(tmp_path / "r1"), str(tmp_path / "r2"), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "r1" in out and "r2" in out and "shared reference point" in out
    assert html.is_file() and "plotly" in html.read_text()[:5000].lower()
    # a clear error, not a traceback, for an unknown scorer
    assert cli.main(["evaluate", str(family_dir), *common[:2], "--scorers", "nope", "--quiet"]) == 2
    assert "unknown scorer 'nope'" in capsys.readouterr().err


def test_two_processes_give_the_single_process_table(family_dir, tmp_path):
    """``accelerate launch -m paretoapp evaluate`` on 2 CPU processes (gloo): rows split, one identical table."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS))
    common = ["--prompts", str(prompts), "--scorers", "length_words,harmless_offline", "--grid", "sweep:4",
              "--max-new-tokens", "6", "--no-cache", "--quiet", "--device", "cpu", "--batch-size", "4",
              "--do-sample", "--temperature", "0.9", "--seed", "5"]
    assert cli.main(["evaluate", str(family_dir), *common, "--out", str(tmp_path / "one")]) == 0
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "WORLD_SIZE": ""}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
              "-m", "paretoapp", "evaluate", str(family_dir), *common, "--out", str(tmp_path / "two")]
    done = subprocess.run(launch, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = load_results(tmp_path / "one"), load_results(tmp_path / "two")
    pd.testing.assert_frame_equal(two.rows, one.rows)
    pd.testing.assert_frame_equal(two.means, one.means)
    assert two.meta["metrics"] == one.meta["metrics"]
    assert one.rows["response"].nunique() > len(PROMPTS)
