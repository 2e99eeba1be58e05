"""Front metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from paretoapp import pareto

STAIRS_2D = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.0, 1.0]])


def test_hypervolume_2d_by_hand():
    # Boxes from (0, 0): x in [0,1] up to 3, [1,2] up to 2, [2,3] up to 1 -> 3 + 2 + 1.
    assert pareto.hypervolume(STAIRS_2D, ref=[0, 0]) == pytest.approx(6.0)
    # From (1, 1) only the box [1,2]x[1,2] of point (2, 2) has area; the others are flat.
    assert pareto.hypervolume(STAIRS_2D, ref=[1, 1]) == pytest.approx(1.0)


def test_nondominated_and_contributions_2d():
    assert pareto.nondominated_mask(STAIRS_2D).tolist() == [True, True, True, False]
    # Each stair owns one unit square; the dominated point owns nothing.
    assert pareto.hv_contributions(STAIRS_2D, ref=[0, 0]).tolist() == pytest.approx([1, 1, 1, 0])


def test_hypervolume_3d_by_hand():
    pts = np.array([[2.0, 1, 1], [1, 2, 1], [1, 1, 2]])
    # Inclusion-exclusion: 3 boxes of 2, pairwise overlaps the unit cube (3x), triple overlap 1 -> 6 - 3 + 1.
    assert pareto.hypervolume(pts, ref=[0, 0, 0]) == pytest.approx(4.0)
    # Removing one point leaves 2 + 2 - 1 = 3, so each contributes 1.
    assert pareto.hv_contributions(pts, ref=[0, 0, 0]).tolist() == pytest.approx([1, 1, 1])
    dominated = np.vstack([pts, [[1, 1, 1]]])
    assert pareto.nondominated_mask(dominated).tolist() == [True, True, True, False]
    assert pareto.hypervolume(dominated, ref=[0, 0, 0]) == pytest.approx(4.0)


def test_lower_is_better_objective():
    # (helpful up, cost down): all three trade off; with ref (0, 4) the volume is 3 + 2 + 1.
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    flags = [True, False]
    assert pareto.nondominated_mask(pts, flags).all()
    assert pareto.hypervolume(pts, ref=[0, 4], maximise=flags) == pytest.approx(6.0)
    # Same data with both maximised: only (3, 3) survives.
    assert pareto.nondominated_mask(pts, True).tolist() == [False, False, True]


def test_reference_point_is_worst_minus_margin():
    a = np.array([[0.0, 10.0], [1.0, 5.0]])
    b = np.array([[2.0, 0.0]])
    ref = pareto.reference_point(a, b, maximise=[True, False], margin=0.1)
    # objective 0 maximised: min 0, range 2 -> -0.2; objective 1 minimised: max 10, range 10 -> 11.
    assert ref.tolist() == pytest.approx([-0.2, 11.0])
    # A constant objective still gets a margin.
    assert pareto.reference_point(np.array([[1.0, 1.0], [1.0, 2.0]]))[0] == pytest.approx(0.9)


def test_spacing_by_hand():
    even = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert pareto.spacing(even) == pytest.approx(0.0)
    uneven = np.array([[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]])
    # nearest L1 distances 0.5, 0.5, 1.5 -> sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3)
    assert pareto.spacing(uneven) == pytest.approx(math.sqrt(1 / 3))
    assert math.isnan(pareto.spacing(even[:1]))


def test_inner_product_rewards_matching_preferences():
    ws = np.array([[1.0, 0.0], [0.0, 1.0]])
    aligned = np.array([[1.0, 0.0], [0.0, 1.0]])  # each w gets the objective it asked for
    swapped = aligned[::-1]
    assert pareto.inner_product(ws, aligned) == pytest.approx(1.0)
    assert pareto.inner_product(ws, swapped) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one w per point"):
        pareto.inner_product(ws[:1], aligned)


def test_compare_fronts_shares_reference():
    better = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    worse = better - 0.5
    table, ref = pareto.compare_fronts({"better": better, "worse": worse})
    assert ref.tolist() == pytest.approx([0.25, 0.25])  # min 0.5, range 2.5 -> minus 0.25
    assert table.loc["better", "hypervolume"] > table.loc["worse", "hypervolume"]
    assert table.loc["better", "hypervolume"] == pytest.approx(pareto.hypervolume(better, ref))
    assert table.loc["better", "on_joint_front"] == 1.0
    assert table.loc["worse", "on_joint_front"] == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="NaN"):
        pareto.hypervolume(np.array([[np.nan, 1.0]]), ref=[0, 0])
    with pytest.raises(ValueError, match="reference point has 3"):
        pareto.hypervolume(STAIRS_2D, ref=[0, 0, 0])
    with pytest.raises(ValueError, match="maximise has 1"):
        pareto.nondominated_mask(STAIRS_2D, [True])


def test_one_objective_front():
    # moocore crashes on 1-D contributions; the wrapper handles it: only the best point owns volume.
    pts = np.array([[1.0], [3.0], [2.0]])
    assert pareto.hypervolume(pts, ref=[0]) == pytest.approx(3.0)
    assert pareto.hv_contributions(pts, ref=[0]).tolist() == pytest.approx([0, 1, 0])
    assert pareto.hv_contributions(pts, ref=[5], maximise=False).tolist() == pytest.approx([1, 0, 0])
    assert pareto.nondominated_mask(pts).tolist() == [False, True, False]
