"""Pick by constraint on an evaluated front: hand-made fronts whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paretoapp.evaluate import EvalResult, EvaluationError
from paretoapp.picking import parse_bounds, pick


def front(helpful, harmless, maximise=(True, True)) -> EvalResult:
    """A results table with one prompt per w on the line w = (a, 1 - a), a = 1, 0.75, ..., 0."""
    a = np.linspace(1, 0, len(helpful))
    means = pd.DataFrame({"w_idx": range(len(a)), "w_helpful": a, "w_harmless": 1 - a,
                          "helpful_rm": helpful, "harmless_rm": harmless})
    meta = {"w_columns": ["w_helpful", "w_harmless"], "family": {"objectives": ["helpful", "harmless"]},
            "scorers": [{"name": "helpful_rm", "higher_is_better": maximise[0]},
                        {"name": "harmless_rm", "higher_is_better": maximise[1]}]}
    return EvalResult(means.copy(), means, meta)


RESULT = front(helpful=[1.0, 0.8, 0.6, 0.3, 0.0], harmless=[0.0, 0.5, 0.7, 0.9, 1.0])


def test_the_best_evaluated_w_that_meets_the_floor():
    p = pick(RESULT, {"harmless": 0.7}, maximize="helpful")
    assert p.feasible and not p.estimated and p.w == [0.5, 0.5] and p.means["helpful_rm"] == 0.6
    assert pick(RESULT, {"harmless_rm": 0.85}, maximize="helpful_rm").w == [0.25, 0.75]  # scorer names work too


def test_between_evaluated_points_the_bound_binds_where_the_interpolated_mean_crosses_it():
    p = pick(RESULT, {"harmless": 0.8}, maximize="helpful", interpolate=True)
    assert p.feasible and p.estimated and "estimated" in p.note
    assert p.w == pytest.approx([0.375, 0.625]) and p.means["harmless_rm"] == pytest.approx(0.8)
    assert p.means["helpful_rm"] == pytest.approx(0.45)
    assert pick(RESULT, {"harmless": 0.8}, maximize="helpful").w == [0.25, 0.75]  # no interpolation asked


def test_several_bounds_and_a_ceiling():
    p = pick(RESULT, {"harmless": 0.4, "helpful": 0.5}, maximize="harmless")
    assert p.w == [0.5, 0.5]
    assert pick(RESULT, at_most={"harmless": 0.6}, maximize="helpful").w == [1.0, 0.0]


def test_no_w_meets_it_says_which_bound_and_shows_the_closest():
    p = pick(RESULT, {"harmless": 1.5}, maximize="helpful")
    assert not p.feasible and p.w == [0.0, 1.0]
    assert "harmless_rm ≥ 1.5 (best reachable 1)" in p.note


def test_maximize_defaults_to_the_free_objective_and_names_are_checked():
    assert pick(RESULT, {"harmless": 0.7}).w == [0.5, 0.5]
    with pytest.raises(EvaluationError, match="no objective 'harmful'.*harmless"):
        pick(RESULT, {"harmful": 0.7})
    with pytest.raises(EvaluationError, match="say which objective to maximise"):
        pick(RESULT, {"harmless": 0.1, "helpful": 0.1})
    with pytest.raises(EvaluationError, match="NAME=NUMBER"):
        parse_bounds(["harmless"], "--at-least")


def test_a_lower_is_better_objective_is_maximised_downwards():
    cost = front(helpful=[1.0, 0.8, 0.6, 0.3, 0.0], harmless=[5, 4, 3, 2, 1], maximise=(True, False))
    assert pick(cost, {"helpful": 0.5}, maximize="harmless").w == [0.5, 0.5]   # the lowest cost with helpful ≥ 0.5


def test_the_cli_prints_the_pick_and_exits_1_when_nothing_fits(tmp_path, capsys):
    from paretoapp.cli import main
    RESULT.meta.update(metrics={}, prompts={"n": 1})
    RESULT.save(tmp_path / "r")
    assert main(["pick", str(tmp_path / "r"), "--at-least", "harmless=0.7", "--maximize", "helpful"]) == 0
    assert "w = (0.5, 0.5)" in capsys.readouterr().out
    assert main(["pick", str(tmp_path / "r"), "--at-least", "harmless=2"]) == 1
    assert main(["pick", str(tmp_path / "r"), "--at-least", "oops"]) == 2


def test_a_bound_that_is_not_a_finite_number_is_refused():
    """NaN compares false with every mean: taken as a bound it would silently bind nothing."""
    for bad in (float("nan"), float("inf"), "lots"):
        with pytest.raises(EvaluationError, match="the bound on harmless is .*; give (one|a finite number) like 0.9"):
            pick(RESULT, {"harmless": bad}, maximize="helpful")
    with pytest.raises(EvaluationError, match="a bound must be a finite number"):
        parse_bounds(["helpful=nan"], "--at-least")
