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


def _message(excinfo) -> str:
    return str(excinfo.value)


def test_points_are_float_rows_and_bad_shapes_are_named():
    # a flat list is one objective (one column); integers become floats
    assert pareto.hypervolume([1, 3, 2], ref=[0]) == pytest.approx(3.0)
    flipped = pareto.oriented([[1, 2]], [True, False])
    assert flipped.dtype == float and flipped.tolist() == [[1.0, -2.0]]
    assert pareto.oriented([[1, 2]], False).tolist() == [[-1.0, -2.0]]
    assert pareto.oriented([[1, 2]], np.bool_(True)).tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError) as e:
        pareto.oriented(np.zeros((1, 1, 1)))
    assert _message(e) == "points must be a 2-D array (rows = points, columns = objectives); got shape (1, 1, 1)"
    with pytest.raises(ValueError) as e:
        pareto.oriented([[np.inf, 1.0]])
    assert _message(e) == ("points contain NaN or infinite values; drop or fix those rows before computing a front")
    with pytest.raises(ValueError) as e:
        pareto.oriented([[1.0, 2.0]], [True, False, True])
    assert _message(e) == "maximise has 3 entries but the points have 2 objectives"
    with pytest.raises(ValueError) as e:
        pareto.reference_point()
    assert _message(e) == "reference_point needs at least one set of points"


def test_empty_and_single_point_fronts():
    empty = np.zeros((0, 2))
    mask = pareto.nondominated_mask(empty)
    assert mask.dtype == bool and mask.shape == (0,)
    assert pareto.nondominated_mask([[1.0, 2.0]]).tolist() == [True]
    assert pareto.hypervolume(empty, ref=[0, 0]) == 0.0
    assert pareto.hypervolume([[2.0, 3.0]], ref=[0, 1]) == pytest.approx(4.0)
    contrib = pareto.hv_contributions(empty, ref=[0, 0])
    assert contrib.shape == (0,)
    assert pareto.hv_contributions([[2.0, 3.0]], ref=[0, 1]).tolist() == pytest.approx([4.0])
    # one objective: the best point owns what lies between it and the runner-up (or the reference)
    assert pareto.hv_contributions([[1.0], [1.5]], ref=[0]).tolist() == pytest.approx([0.0, 0.5])
    assert pareto.hv_contributions([[0.5]], ref=[0]).tolist() == pytest.approx([0.5])
    assert pareto.hv_contributions([[-1.0]], ref=[0]).tolist() == [0.0]  # worse than the reference


def test_reference_point_margin_below_one_unit_of_range():
    # range 0.5 in objective 0 -> step 0.05; objective 1 constant -> step = margin itself
    ref = pareto.reference_point(np.array([[0.0, 2.0], [0.5, 2.0]]), maximise=[True, False], margin=0.1)
    assert ref.tolist() == pytest.approx([-0.05, 2.1])
    # per objective, not over the whole matrix
    ref = pareto.reference_point(np.array([[0.0, 10.0], [1.0, 20.0]]), margin=0.5)
    assert ref.tolist() == pytest.approx([-0.5, 5.0])
    ref = pareto.reference_point(np.array([[0.0, 10.0], [1.0, 20.0]]), maximise=False, margin=0.5)
    assert ref.tolist() == pytest.approx([1.5, 25.0])


def test_normalise_by_hand():
    pts = [[1, 10], [3, 30], [2, 20]]
    # maximise objective 0, minimise objective 1: 1 = best in each
    got = pareto.normalise(pts, [True, False])
    assert np.allclose(got, [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    # explicit bounds (lists) are used as given, in raw units
    got = pareto.normalise(pts, [True, False], lo=[0, 0], hi=[4, 40])
    assert np.allclose(got, [[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]])
    # a constant objective maps to 0.5 whatever its direction
    assert np.allclose(pareto.normalise([[1, 5], [3, 5]], [True, False]), [[0.0, 0.5], [1.0, 0.5]])
    assert np.allclose(pareto.normalise([[5.0], [5.0]], True), [[0.5], [0.5]])


def test_inner_product_spacing_sparsity_with_shared_bounds():
    ws = [[1.0, 0.0], [0.5, 0.5]]
    pts = [[2.0, 0.0], [1.0, 1.0]]
    # own bounds: (1, 0) and (0, 1) -> 1 * 1 and 0.5 * 1 -> mean 0.75
    assert pareto.inner_product(ws, pts) == pytest.approx(0.75)
    # bounds [0, 4] x [0, 2]: (0.5, 0) and (0.25, 0.5) -> 0.5 and 0.375 -> mean 0.4375
    assert pareto.inner_product(ws, pts, lo=[0, 0], hi=[4, 2]) == pytest.approx(0.4375)
    three = [[0.0, 4.0], [1.0, 1.0], [4.0, 0.0]]
    # on bounds [0, 4]^2: (0, 1), (.25, .25), (1, 0); nearest L1: 1.0, 1.0, 1.0 -> spacing 0
    assert pareto.spacing(three, lo=[0, 0], hi=[4, 4]) == pytest.approx(0.0)
    two = [[0.0, 1.0], [1.0, 0.0]]
    assert pareto.spacing(two) == pytest.approx(0.0)  # two points: defined, both nearest distances 2
    uneven = [[0.0, 4.0], [1.0, 2.0], [4.0, 0.0]]
    # bounds [0, 4]^2: (0, 1), (.25, .5), (1, 0); L1 to nearest: .75, .75, 1.25; twice the bounds halves them
    nearest = np.array([0.75, 0.75, 1.25])
    want = math.sqrt(np.sum((nearest - nearest.mean()) ** 2) / 2)
    assert pareto.spacing(uneven, lo=[0, 0], hi=[4, 4]) == pytest.approx(want)
    assert pareto.spacing(uneven, lo=[0, 0], hi=[8, 8]) == pytest.approx(want / 2)
    # sparsity: sorted per objective, mean squared consecutive gap summed over objectives / (n - 1)
    # bounds [0, 4]^2: objective 0 sorted 0, .25, 1 -> gaps .25, .75; objective 1 sorted 0, .5, 1 -> .5, .5
    assert pareto.sparsity(uneven, lo=[0, 0], hi=[4, 4]) == pytest.approx((0.0625 + 0.5625 + 0.25 + 0.25) / 2)
    assert pareto.sparsity(uneven) == pytest.approx((0.0625 + 0.5625 + 0.25 + 0.25) / 2)  # own bounds: the same
    assert pareto.sparsity(two) == pytest.approx(2.0)  # gaps 1 and 1, one pair
    assert pareto.sparsity(two, lo=[0, 0], hi=[2, 2]) == pytest.approx(0.5)
    assert math.isnan(pareto.sparsity(two[:1])) and math.isnan(pareto.spacing(two[:1]))


def test_summarize_by_hand():
    # helpful up, cost down; the third point is dominated by the first
    pts = np.array([[2.0, 1.0], [3.0, 2.0], [1.0, 3.0]])
    ws = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    s = pareto.summarize(pts, ws, maximise=[True, False], ref=[0, 4])
    # boxes from (0, 4): (2, 1) -> 2 x 3 = 6; (3, 2) adds x in [2, 3] times 2 -> 2: HV 8
    assert s.hypervolume == pytest.approx(8.0) and s.reference == [0.0, 4.0]
    assert s.nondominated == [True, True, False]
    assert s.contributions == pytest.approx([2.0, 2.0, 0.0])
    # normalised (1 = best): (.5, 1), (1, .5), (0, 0) -> <w, .>: 1, 1, 0 -> mean 2/3
    assert s.inner_product == pytest.approx(2 / 3)
    # the front (2 points) on its own bounds: (0, 1) and (1, 0): spacing 0, sparsity (1 + 1) / 1
    assert s.spacing == pytest.approx(0.0) and s.sparsity == pytest.approx(2.0)
    # with the bounds of a wider comparison the front's gaps shrink
    s2 = pareto.summarize(pts, ws, maximise=[True, False], ref=[0, 4], lo=[0, 0], hi=[4, 4])
    assert s2.sparsity == pytest.approx(0.25 ** 2 + 0.25 ** 2)
    assert s2.inner_product == pytest.approx((0.75 + 0.75 + 0.5 * (0.25 + 0.25)) / 3)
    # default reference: worst minus 10 % of the range -> (1 - 0.2, 3 + 0.2)
    s3 = pareto.summarize(pts, maximise=[True, False])
    assert s3.reference == pytest.approx([0.8, 3.2]) and math.isnan(s3.inner_product)
    assert s3.hypervolume == pytest.approx(pareto.hypervolume(pts, [0.8, 3.2], [True, False]))
    assert math.isnan(pareto.summarize(pts, ws[:2]).inner_product)  # ws not one per point


def test_compare_fronts_table_by_hand():
    a = np.array([[0.0, 2.0], [2.0, 0.0], [1.0, 1.0]])
    b = np.array([[1.0, 1.0], [0.5, 0.5]])  # ties a's (1, 1); (0.5, 0.5) is dominated
    table, ref = pareto.compare_fronts({"a": a, "b": b}, ref=[-1, -1],
                                       ws={"a": [[0, 1], [1, 0], [0.5, 0.5]], "b": [[0.5, 0.5], [1, 0]]})
    assert ref.tolist() == [-1.0, -1.0] and list(table.index) == ["a", "b"]
    assert table.loc["a", "hypervolume"] == pytest.approx(pareto.hypervolume(a, [-1, -1]))
    assert table.loc["b", "hypervolume"] == pytest.approx(4.0)
    assert table.loc["a", "n_points"] == 3 and table.loc["b", "n_points"] == 2
    assert table.loc["a", "n_nondominated"] == 3 and table.loc["b", "n_nondominated"] == 1
    # pooled: a's three points survive; b's (1, 1) ties a's and counts, (0.5, 0.5) does not
    assert table.loc["a", "on_joint_front"] == 1.0 and table.loc["b", "on_joint_front"] == 0.5
    # shared bounds [0, 2]^2: a -> (0, 1), (1, 0), (.5, .5) against its w: 1, 1, .5 -> 5/6
    assert table.loc["a", "inner_product"] == pytest.approx(5 / 6)
    # b -> (.5, .5), (.25, .25) against (.5, .5) and (1, 0): .5 and .25 -> .375
    assert table.loc["b", "inner_product"] == pytest.approx(0.375)
    # a's front on the shared bounds: nearest L1 distances 1, 1, 1 -> spacing 0; sparsity (.25 * 2 * 2) / 2
    assert table.loc["a", "spacing"] == pytest.approx(0.0) and table.loc["a", "sparsity"] == pytest.approx(0.5)
    assert math.isnan(table.loc["b", "spacing"])  # one point on its front
    # the reference defaults to the shared worst point less the margin
    _, ref = pareto.compare_fronts({"a": a, "b": b}, maximise=[True, False])
    assert ref.tolist() == pytest.approx([-0.2, 2.2])
    table, _ = pareto.compare_fronts({"a": a})
    assert math.isnan(table.loc["a", "inner_product"])
    with pytest.raises(ValueError) as e:
        pareto.compare_fronts({})
    assert _message(e) == "compare_fronts needs at least one front"
    with pytest.raises(ValueError) as e:
        pareto.compare_fronts({"a": a, "c": np.ones((2, 3))})
    assert _message(e) == "all fronts must have the same objectives (same number of score columns)"


def test_format_reference():
    assert pareto.format_reference([0.123456, -2.0]) == "(obj0=0.1235, obj1=-2)"
    assert pareto.format_reference([1.5, 20000.0], ["helpful", "harmless"]) == "(helpful=1.5, harmless=2e+04)"


def test_defaults_maximise_and_small_ranges():
    assert pareto.oriented([[1.0, -2.0]]).tolist() == [[1.0, -2.0]]  # larger is better unless told otherwise
    # a range below one unit is still stretched to [0, 1]; the default direction is "maximise"
    assert np.allclose(pareto.normalise([[0.25, 3.0], [0.75, 1.0]]), [[0.0, 1.0], [1.0, 0.0]])
    pts = np.array([[2.0, 1.0], [3.0, 0.0], [1.0, 3.0]])
    s = pareto.summarize(pts)
    assert s.nondominated == [True, True, True]
    assert s.hypervolume == pytest.approx(pareto.hypervolume(pts, s.reference, True))
    assert s.reference == pytest.approx([0.8, -0.3])


def test_bounds_reach_every_metric():
    """lo/hi given by the caller (a wider comparison) reach spacing, directly and through summarize."""
    front = np.array([[0.0, 4.0], [1.0, 3.0], [4.0, 0.0]])
    # on bounds [0, 4] x [-4, 8]: (0, 2/3), (1/4, 7/12), (1, 1/3); L1 to the nearest: 1/3, 1/3, 1
    nearest = np.array([1 / 3, 1 / 3, 1.0])
    want = math.sqrt(np.sum((nearest - nearest.mean()) ** 2) / 2)
    assert pareto.spacing(front, lo=[0, -4], hi=[4, 8]) == pytest.approx(want)
    assert pareto.summarize(front, ref=[-1, -1], lo=[0, -4], hi=[4, 8]).spacing == pytest.approx(want)
    assert pareto.summarize(front, ref=[-1, -1]).spacing == pytest.approx(pareto.spacing(front))
    assert pareto.spacing(front) != pytest.approx(want)


def test_compare_three_fronts_with_different_ranges_per_objective():
    a = np.array([[0.0, 40.0], [10.0, 0.0], [4.0, 20.0]])
    b = np.array([[5.0, 5.0]])
    c = np.array([[10.0, 40.0], [2.0, 2.0]])  # (10, 40) beats everything; (2, 2) loses to b
    table, _ = pareto.compare_fronts({"a": a, "b": b, "c": c}, ref=[-1, -1])
    assert table["on_joint_front"].tolist() == [0.0, 0.0, 0.5]
    # spacing on the pooled bounds [0, 10] x [0, 40]: a -> (0, 1), (1, 0), (.4, .5)
    assert table.loc["a", "spacing"] == pytest.approx(pareto.spacing(a, lo=[0, 0], hi=[10, 40]))
    assert table.loc["a", "spacing"] != pytest.approx(pareto.spacing(a, lo=[0, 0], hi=[40, 40]))
    # the shared bounds are per objective: moving the second objective to [100, 140] changes no metric
    ws = {"a": [[0, 1], [1, 0], [0.5, 0.5]]}
    shifted, _ = pareto.compare_fronts({n: p + [0.0, 100.0] for n, p in (("a", a), ("b", b), ("c", c))},
                                       ref=[-1, 99], ws=ws)
    assert shifted.loc["a", "inner_product"] == pytest.approx(pareto.inner_product(ws["a"], a, lo=[0, 0], hi=[10, 40]))
    assert shifted.loc["a", "spacing"] == pytest.approx(table.loc["a", "spacing"])
    table, _ = pareto.compare_fronts({"a": a, "none": np.zeros((0, 2))}, ref=[-1, -1])
    assert table.loc["none", "n_points"] == 0 and math.isnan(table.loc["none", "on_joint_front"])
