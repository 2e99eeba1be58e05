"""The app's pure parts: preference controls, the front figure, family discovery, the fallback family."""

from __future__ import annotations

import json

import pytest

from paretoapp.family import BaseModelRef, Block, FamilyManifest, Objective
from paretoapp.gates import Gate, PreferenceError
from paretoapp.preferences import PreferenceSpace


def manifest(k=2, on_simplex=True, **kw) -> FamilyManifest:
    return FamilyManifest(name="m", method="rewarded_soups", base_model=BaseModelRef("x"),
                          objectives=[Objective(f"o{i}") for i in range(k)], blocks=[Block(f"b{i}", 2) for i in range(k)],
                          gate=Gate.identity(k), on_simplex=on_simplex, **kw)


def test_line_mode_range_is_the_allowed_range_and_marks_extrapolation():
    m = manifest(w_low=[-1, -1], w_high=[2, 2], in_sample_low=[0, 0], in_sample_high=[1, 1])
    space = PreferenceSpace(m)
    assert space.mode == "line"
    (c,) = space.controls()
    assert (c.low, c.high) == (-1, 2) and "0–1" in c.info
    assert space.to_w([0.25]) == [0.25, 0.75]
    assert "extrapolated" in space.describe(space.to_w([1.5]))
    assert "trained range" in space.describe([0.5, 0.5]) and "extrapolated" not in space.describe([0.5, 0.5])
    with pytest.raises(PreferenceError, match="allowed range"):
        space.to_w([2.5])


def test_free_mode_normalises_on_the_simplex_and_rejects_all_zero():
    space = PreferenceSpace(manifest(k=3))
    assert space.mode == "free" and len(space.controls()) == 3
    assert space.to_w([1, 1, 2]) == [0.25, 0.25, 0.5]
    assert space.default_w() == pytest.approx([1 / 3] * 3)
    with pytest.raises(PreferenceError, match="sum to 0"):
        space.to_w([0, 0, 0])


def test_free_mode_off_simplex_uses_values_as_given():
    space = PreferenceSpace(manifest(k=2, on_simplex=False, in_sample_low=[0, 0], in_sample_high=[1, 1]))
    assert space.mode == "free"
    assert space.to_w([1.2, 0.3]) == [1.2, 0.3]
    lo, hi = space.controls()[0].low, space.controls()[0].high
    assert lo < 0 and hi > 1  # any value allowed: the trained range widened


@pytest.fixture(scope="module")
def fallback(tmp_path_factory):
    from paretoapp.demo.fallback import fallback_family_dir
    from paretoapp.ui.catalog import Catalog
    path = fallback_family_dir(tmp_path_factory.mktemp("fb") / "fallback")
    cat = Catalog()
    return cat.add(path, note="test")


def test_fallback_family_has_results_with_a_front(fallback):
    r = fallback.results
    assert r is not None and r.meta["synthetic"] is True
    assert r.means["on_front"].sum() >= 3 and r.meta["metrics"]["hypervolume"] > 0
    assert set(r.rows["response"].str.len() > 0) == {True}  # real answers from the tiny model


def test_front_figure_marks_front_extrapolation_samples_and_current_w(fallback):
    from paretoapp.ui.plot import front_figure, summary_markdown
    fig = json.loads(front_figure([fallback], fallback, [0.25, 0.75]).to_json())
    by_name = {t.get("name"): t for t in fig["data"]}
    inside, extra = by_name["tiny-random"], by_name["tiny-random · extrapolated w"]
    assert sorted(c[2] for c in inside["customdata"]) == [0, 0.25, 0.5, 0.75, 1]
    assert all(c[2] < 0 or c[2] > 1 for c in extra["customdata"])
    assert all(s.startswith("diamond") for s in extra["marker"]["symbol"])
    assert "error_x" in inside and "Q: " in inside["text"][0]
    star = by_name["current w"]
    row = fallback.results.means.set_index("w_harmless").loc[0.25]
    assert star["x"][0] == pytest.approx(row["harmless_score"]) and star["y"][0] == pytest.approx(row["helpful_score"])
    assert "better →" in fig["layout"]["xaxis"]["title"]["text"]
    # between two evaluated w the star is an estimate, hollow, and says so
    fig2 = json.loads(front_figure([fallback], fallback, [0.3, 0.7]).to_json())
    est = [t for t in fig2["data"] if t.get("name") == "current w (estimated)"]
    assert est and est[0]["marker"]["symbol"] == "star-open"
    md = summary_markdown([fallback])
    assert "| tiny-random | rewarded soups |" in md and "synthetic" in md
    assert md.splitlines()[0].endswith("| training |") and md.splitlines()[2].endswith("| — |")  # none recorded
    fallback.results.meta["training_cost"] = {"train_s": 90.0}
    try:
        assert summary_markdown([fallback]).splitlines()[2].endswith("| 1.5 min |")
    finally:
        del fallback.results.meta["training_cost"]


def test_catalog_finds_results_by_convention(fallback, tmp_path):
    import shutil

    from paretoapp.ui.catalog import Catalog, discover, find_results
    fam = tmp_path / "assets" / "fam"
    shutil.copytree(fallback.path, fam)
    shutil.move(str(fam / "results"), str(tmp_path / "assets" / "results_tmp"))
    (tmp_path / "assets" / "results").mkdir()
    shutil.move(str(tmp_path / "assets" / "results_tmp"), str(tmp_path / "assets" / "results" / "tiny-random"))
    assert discover(tmp_path / "assets") == [fam]
    assert find_results(fam, "tiny-random") == tmp_path / "assets" / "results" / "tiny-random"
    cat = Catalog()
    e1 = cat.add(fam)
    assert e1.results is not None and cat.add(fam) is e1  # the same folder is listed once
    with pytest.raises(Exception, match="family.json"):
        cat.add(tmp_path)
