"""Gates: w -> per-block gains, worked out by hand; bad gates and bad preferences named exactly."""

import numpy as np
import pytest
import torch

from paretoapp.gates import Gate, PreferenceError, check_preferences


def gains(gate: Gate, w) -> list[list[float]]:
    return gate.block_gains(torch.tensor(w, dtype=torch.float64)).tolist()


def message_of(fn, *args, error=ValueError, **kwargs) -> str:
    with pytest.raises(error) as e:
        fn(*args, **kwargs)
    return str(e.value)


def test_affine_gate_by_hand():
    gate = Gate.affine([[1, 2], [0, -1], [0.5, 0.5]], [1, 0, -2])
    assert (gate.n_blocks, gate.k) == (3, 2)
    # g = M w + c for each row of the batch
    got = gains(gate, [[1.0, 0.0], [0.2, 0.4]])
    np.testing.assert_allclose(got, [[2.0, 0.0, -1.5], [2.0, -0.4, -1.7]], atol=1e-12)
    assert gate.matrix == [[1.0, 2.0], [0.0, -1.0], [0.5, 0.5]] and gate.offset == [1.0, 0.0, -2.0]
    assert all(isinstance(v, float) for v in gate.matrix[0] + gate.offset)
    # no offset: zeros; the identity gate is one block per objective with gain w_i
    assert Gate.affine([[2.0]]).offset == [0.0]
    ident = Gate.identity(3)
    assert ident.matrix == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]] and ident.offset == [0.0] * 3
    np.testing.assert_allclose(gains(ident, [[0.2, -0.3, 1.5]]), [[0.2, -0.3, 1.5]])
    out = gate.block_gains(torch.tensor([[1.0, 0.0]], dtype=torch.float32))
    assert out.dtype == torch.float64


def test_anchors_gate_nearest_interpolate_and_clamp():
    points = [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    table = [[0, 1, 0], [2, 2, 1], [1, 0, 4]]
    gate = Gate.anchors(points, table)
    assert gate.mode == "interpolate" and (gate.n_blocks, gate.k) == (3, 2)
    assert gate.points == points and gate.gains == [[0.0, 1.0, 0.0], [2.0, 2.0, 1.0], [1.0, 0.0, 4.0]]
    # a quarter of the way from (0.5, 0.5) to (1, 0); on an anchor; beyond either end clamped
    np.testing.assert_allclose(gains(gate, [[0.625, 0.375], [0.5, 0.5], [1.5, -0.5], [-0.5, 1.5]]),
                               [[1.75, 1.5, 1.75], [2, 2, 1], [1, 0, 4], [0, 1, 0]], atol=1e-12)
    # the interpolation runs along the segment of the two nearest anchors, whichever order they come in
    np.testing.assert_allclose(gains(gate, [[0.3, 0.7]]), [[1.2, 1.6, 0.6]], atol=1e-12)
    nearest = Gate.anchors(points, table, mode="nearest")
    assert gains(nearest, [[0.3, 0.7], [0.8, 0.2], [0.1, 0.9]]) == [[2, 2, 1], [1, 0, 4], [0, 1, 0]]
    single = Gate.anchors([[0.5, 0.5]], [[3.0, 1.0]])
    assert gains(single, [[0.0, 1.0], [1.0, 0.0]]) == [[3.0, 1.0], [3.0, 1.0]]


def test_anchors_interpolation_in_three_objectives():
    gate = Gate.anchors([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], [[1.0], [2.0], [6.0]])
    # nearest two of (0.6, 0.4, 0): e_1 and e_2; projection onto their segment: t = 0.4
    np.testing.assert_allclose(gains(gate, [[0.6, 0.4, 0.0]]), [[1.4]], atol=1e-12)
    # duplicate anchors (zero-length segment) do not divide by zero
    dup = Gate.anchors([[0.0, 1.0], [0.0, 1.0]], [[1.0], [3.0]])
    assert np.isfinite(gains(dup, [[0.5, 0.5]])).all()


def test_round_trip_and_extra():
    gate = Gate.anchors([[0.0, 1.0], [1.0, 0.0]], [[0, 1], [1, 0]], mode="nearest")
    gate.extra = {"note": "searched"}
    d = gate.to_dict()
    assert d == {"kind": "anchors", "points": [[0.0, 1.0], [1.0, 0.0]], "gains": [[0.0, 1.0], [1.0, 0.0]],
                 "mode": "nearest", "extra": {"note": "searched"}}
    again = Gate.from_dict(d)
    assert again == gate and again.mode == "nearest" and again.extra == {"note": "searched"}
    affine = Gate.affine([[1.0, 0.0]], [0.5])
    assert affine.to_dict() == {"kind": "affine", "matrix": [[1.0, 0.0]], "offset": [0.5]}
    assert Gate.from_dict(affine.to_dict()) == affine
    # a stored anchors gate without a mode interpolates; without extra, extra is empty
    plain = Gate.from_dict({"kind": "anchors", "points": [[0.0, 1.0]], "gains": [[1.0]]})
    assert plain.mode == "interpolate" and plain.extra == {}


@pytest.mark.parametrize("d, message", [
    ({"kind": "lookup"}, "unknown gate kind 'lookup'; expected one of ('affine', 'anchors')"),
    ({"kind": "affine", "matrix": [], "offset": []}, "affine gate needs a non-empty matrix [n_blocks][k]"),
    ({"kind": "affine", "matrix": [[]], "offset": [0.0]}, "affine gate needs a non-empty matrix [n_blocks][k]"),
    ({"kind": "affine", "matrix": [[1.0], [1.0, 2.0]], "offset": [0.0, 0.0]},
     "affine gate matrix rows must all have length k"),
    ({"kind": "affine", "matrix": [[1.0]], "offset": None}, "affine gate offset must have one value per block"),
    ({"kind": "affine", "matrix": [[1.0]], "offset": [0.0, 1.0]}, "affine gate offset must have one value per block"),
    ({"kind": "anchors", "points": [], "gains": []}, "anchors gate needs as many gain rows as anchor points"),
    ({"kind": "anchors", "points": [[0.0]], "gains": []}, "anchors gate needs as many gain rows as anchor points"),
    ({"kind": "anchors", "points": [[0.0], [1.0]], "gains": [[1.0]]},
     "anchors gate needs as many gain rows as anchor points"),
    ({"kind": "anchors", "points": [[0.0], [1.0, 0.0]], "gains": [[1.0], [2.0]]},
     "anchors gate rows must have equal lengths"),
    ({"kind": "anchors", "points": [[0.0], [1.0]], "gains": [[1.0], [2.0, 1.0]]},
     "anchors gate rows must have equal lengths"),
    ({"kind": "anchors", "points": [[0.0]], "gains": [[1.0]], "mode": "cubic"},
     "unknown anchors mode 'cubic'; expected ('interpolate', 'nearest')"),
    ({"kind": "affine", "matrix": [[float("nan")]], "offset": [0.0]}, "gate parameters must be finite numbers"),
    ({"kind": "affine", "matrix": [[1.0]], "offset": [float("inf")]}, "gate parameters must be finite numbers"),
    ({"kind": "anchors", "points": [[float("inf")]], "gains": [[1.0]]}, "gate parameters must be finite numbers"),
    ({"kind": "anchors", "points": [[0.0]], "gains": [[float("nan")]]}, "gate parameters must be finite numbers"),
])
def test_bad_gates_are_named(d, message):
    assert message_of(Gate.from_dict, d) == message


def test_check_preferences_accepts_vectors_batches_tensors_and_arrays():
    want = torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    for w in ([0.25, 0.75], (0.25, 0.75), [[0.25, 0.75]], torch.tensor([0.25, 0.75]), np.array([[0.25, 0.75]]),
              [1 / 4, 3 / 4]):
        got = check_preferences(w, 2)
        assert got.dtype == torch.float64 and torch.equal(got, want)
    batch = check_preferences([[1, 0], (0, 1)], 2)
    assert batch.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # any real value when the family declares no range; the range is inclusive (with float slack)
    assert check_preferences([-3.0, 7.5], 2).tolist() == [[-3.0, 7.5]]
    assert check_preferences([1.0 + 1e-10, -1e-10], 2, low=[0, 0], high=[1, 1]).tolist() == [[1.0 + 1e-10, -1e-10]]
    assert check_preferences([2.0, 0.0], 2, low=[0, 0], high=None).tolist() == [[2.0, 0.0]]
    edge = [0.0 - 1e-9, 1.0 + 1e-9]  # exactly at the slack: still allowed
    assert check_preferences(edge, 2, low=[0, 0], high=[1, 1]).tolist() == [edge]


@pytest.mark.parametrize("w, k, extra, message", [
    ([], 2, {}, "empty batch of preferences: pass at least one preference vector"),
    ([0.5], 2, {}, "preference has 1 values but this family has 2 objectives; pass one weight per objective"),
    ([[0.5, 0.5], [1.0]], 2, {}, "preference has 1 values but this family has 2 objectives; pass one weight per "
                                 "objective"),
    ([float("nan"), 1.0], 2, {}, "preference contains NaN or infinity; use finite numbers"),
    ([0.5, float("inf")], 2, {}, "preference contains NaN or infinity; use finite numbers"),
    ([1.5, 0.0], 2, {"low": [0, 0], "high": [1, 1]},
     "preference value w[0] = 1.5 is outside this family's allowed range [0, 1]; choose a value inside it"),
    ([0.5, -0.25], 2, {"low": [0, -0.2], "high": [1, 1]},
     "preference value w[1] = -0.25 is outside this family's allowed range [-0.2, 1]; choose a value inside it"),
    ([1.0 + 1e-6, 0.0], 2, {"low": [0, 0], "high": [1, 1]},
     "preference value w[0] = 1 is outside this family's allowed range [0, 1]; choose a value inside it"),
    ("0.5, 0.5", 2, {}, "preference must be a list of numbers, one per objective; got '0.5, 0.5'"),
    (b"ab", 2, {}, "preference must be a list of numbers, one per objective; got b'ab'"),
    (0.5, 1, {}, "preference must be a list of numbers, one per objective; got 0.5"),
    ([[0.5, "a"]], 2, {}, "preference must be numbers, got [[0.5, 'a']]: could not convert string to float: 'a'"),
    ([[0.5, 0.5], 0.5], 2, {}, "preference must be numbers, got [[0.5, 0.5], 0.5]: mixed rows and numbers"),
    ([0.5, [0.5]], 2, {}, "preference must be numbers, got [0.5, [0.5]]: mixed rows and numbers"),
    ([0.5, "0.5"], 2, {}, "preference must be numbers, got [0.5, '0.5']: mixed rows and numbers"),
    ([[0.5, None]], 2, {}, "preference must be numbers, got [[0.5, None]]: float() argument must be a string or a "
                           "real number, not 'NoneType'"),
])
def test_bad_preferences_are_named(w, k, extra, message):
    assert message_of(check_preferences, w, k, error=PreferenceError, **extra) == message
