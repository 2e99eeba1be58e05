"""Gates: how a preference vector w becomes per-block gains g(w).

Every family stacks its low-rank blocks along one rank axis (see ``bank.py``);
a gate says how strongly each block is switched on for a given w. Two shapes
cover every method in the project:

* ``affine``: g(w) = M w + c, one row of M per block. Rewarded Soups
  (M = I), Preference Vector (rows +e_i and -e_i), Panacea (a constant block
  for the learned singular values, one block per objective for s * w_i).
* ``anchors``: a table of trained preference points and the block gains that
  serve them. A query w takes the gains of the nearest anchor, or interpolates
  between its neighbours. PEO (coefficients chosen by the post-training
  search), ParetoHqD and linear-scalarised DPO (one adapter per direction).

Gates work on small CPU tensors once per request, never per token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .errors import PreferenceError

GATE_KINDS = ("affine", "anchors")
# the largest |w| a family with no declared range serves: far past any trained range, and far below where a
# float32 model's activations overflow (at |w| = 1e6 the tiny test model already answers with NaN logits)
MAX_ABS_W = 1000.0
# one preference vector, or one per row of a batch
Preferences = Sequence[float] | Sequence[Sequence[float]] | torch.Tensor
ANCHOR_MODES = ("interpolate", "nearest")


@dataclass
class Gate:
    kind: str
    # affine: matrix [n_blocks][k], offset [n_blocks]
    matrix: list[list[float]] | None = None
    offset: list[float] | None = None
    # anchors: points [n][k], gains [n][n_blocks]
    points: list[list[float]] | None = None
    gains: list[list[float]] | None = None
    mode: str = "interpolate"
    extra: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ----------------------------------------------------------------- builders
    @classmethod
    def affine(cls, matrix: Sequence[Sequence[float]], offset: Sequence[float] | None = None) -> Gate:
        matrix = [[float(v) for v in row] for row in matrix]
        offset = [0.0] * len(matrix) if offset is None else [float(v) for v in offset]
        gate = cls(kind="affine", matrix=matrix, offset=offset)
        gate.validate()
        return gate

    @classmethod
    def identity(cls, k: int) -> Gate:
        """One block per objective, gain w_i: the weighted sum of deltas."""
        return cls.affine([[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)])

    @classmethod
    def anchors(cls, points: Sequence[Sequence[float]], gains: Sequence[Sequence[float]],
                mode: str = "interpolate") -> Gate:
        gate = cls(kind="anchors", points=[[float(v) for v in p] for p in points],
                   gains=[[float(v) for v in g] for g in gains], mode=mode)
        gate.validate()
        return gate

    # ------------------------------------------------------------------- shape
    @property
    def n_blocks(self) -> int:
        return len(self.matrix) if self.kind == "affine" else len(self.gains[0])

    @property
    def k(self) -> int:
        return len(self.matrix[0]) if self.kind == "affine" else len(self.points[0])

    def validate(self) -> None:
        if self.kind not in GATE_KINDS:
            raise ValueError(f"unknown gate kind {self.kind!r}; expected one of {GATE_KINDS}")
        if self.kind == "affine":
            if not self.matrix or not self.matrix[0]:
                raise ValueError("affine gate needs a non-empty matrix [n_blocks][k]")
            if len({len(r) for r in self.matrix}) != 1:
                raise ValueError("affine gate matrix rows must all have length k")
            if self.offset is None or len(self.offset) != len(self.matrix):
                raise ValueError("affine gate offset must have one value per block")
        else:
            if not self.points or not self.gains or len(self.points) != len(self.gains):
                raise ValueError("anchors gate needs as many gain rows as anchor points")
            if len({len(p) for p in self.points}) != 1 or len({len(g) for g in self.gains}) != 1:
                raise ValueError("anchors gate rows must have equal lengths")
            if self.mode not in ANCHOR_MODES:
                raise ValueError(f"unknown anchors mode {self.mode!r}; expected {ANCHOR_MODES}")
        values = sum((self.matrix or []) + (self.points or []) + (self.gains or []), []) + (self.offset or [])
        if not all(math.isfinite(v) for v in values):
            raise ValueError("gate parameters must be finite numbers")

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.kind == "affine":
            d.update(matrix=self.matrix, offset=self.offset)
        else:
            d.update(points=self.points, gains=self.gains, mode=self.mode)
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Gate:
        gate = cls(kind=d.get("kind"), matrix=d.get("matrix"), offset=d.get("offset"),
                   points=d.get("points"), gains=d.get("gains"),
                   mode=d.get("mode", "interpolate"), extra=d.get("extra", {}))
        gate.validate()
        return gate

    # ----------------------------------------------------------------- compute
    def _tensor(self, name: str) -> torch.Tensor:
        """The parameter as a float64 tensor, built once: the slider path runs this per request."""
        if name not in self._cache:
            self._cache[name] = torch.tensor(getattr(self, name), dtype=torch.float64)
        return self._cache[name]

    def block_gains(self, w: torch.Tensor) -> torch.Tensor:
        """[batch, k] preferences -> [batch, n_blocks] gains (float64 on CPU)."""
        w = w.to(torch.float64)
        if self.kind == "affine":
            return torch.addmm(self._tensor("offset"), w, self._tensor("matrix").T)
        pts, table = self._tensor("points"), self._tensor("gains")
        dist = torch.cdist(w, pts)  # [batch, n]
        if self.mode == "nearest" or len(pts) == 1:
            return table[dist.argmin(dim=1)]
        return _interpolate(w, pts, table, dist)


def _interpolate(w: torch.Tensor, pts: torch.Tensor, table: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between the two nearest anchors along their segment.

    For k = 2 on a 1-D grid of anchors this is exact piecewise-linear
    interpolation in w_1; for a query beyond the outermost anchors it clamps
    to the nearest one (an anchors family is only defined where it was trained).
    """
    out = []
    two = dist.topk(2, dim=1, largest=False).indices
    for row, (i, j) in enumerate(two.tolist()):
        a, b = pts[i], pts[j]
        seg = b - a
        t = float(((w[row] - a) @ seg) / (seg @ seg).clamp_min(1e-12))
        t = min(max(t, 0.0), 1.0)
        out.append((1 - t) * table[i] + t * table[j])
    return torch.stack(out)


def check_preferences(w: Preferences, k: int, low: Sequence[float] | None = None,
                      high: Sequence[float] | None = None) -> torch.Tensor:
    """Validate user preferences and return them as a [batch, k] float64 tensor.

    Accepts one vector (list/tuple/1-D tensor) or a batch. Any real value is
    fine unless the family declares a range: extrapolation is a feature.
    Checked in plain Python: this runs on every slider move and every request,
    and a handful of floats is faster to check there than with tensor ops.
    """
    rows = _as_rows(w)
    if not rows:
        raise PreferenceError("empty batch of preferences: pass at least one preference vector")
    for row in rows:
        if len(row) != k:
            raise PreferenceError(f"preference has {len(row)} values but this family has {k} objectives; "
                                  "pass one weight per objective")
        if not all(math.isfinite(v) for v in row):
            raise PreferenceError("preference contains NaN or infinity; use finite numbers")
        if low is None or high is None:
            for col, v in enumerate(row):
                if abs(v) > MAX_ABS_W:
                    raise PreferenceError(
                        f"preference value w[{col}] = {v:g} is too large: past ±{MAX_ABS_W:g} the model's numbers "
                        f"overflow; choose a value between {-MAX_ABS_W:g} and {MAX_ABS_W:g}")
        else:
            for col, (v, lo, hi) in enumerate(zip(row, low, high)):
                if not lo - 1e-9 <= v <= hi + 1e-9:
                    raise PreferenceError(
                        f"preference value w[{col}] = {v:g} is outside this family's allowed range "
                        f"[{lo:g}, {hi:g}]; choose a value inside it")
    return torch.tensor(rows, dtype=torch.float64)


def _as_rows(w) -> list[list[float]]:
    """One vector or a batch of them as a list of rows of floats."""
    if hasattr(w, "tolist") and not isinstance(w, (list, tuple)):  # torch tensors, numpy arrays
        w = w.tolist()
    if isinstance(w, (str, bytes)) or not isinstance(w, (list, tuple)):
        raise PreferenceError(f"preference must be a list of numbers, one per objective; got {w!r}")
    try:
        if w and all(isinstance(v, (list, tuple)) for v in w):
            return [[_weight(v) for v in row] for row in w]
        if any(isinstance(v, (list, tuple, str, bytes)) for v in w):
            raise TypeError("mixed rows and numbers")
        return [[_weight(v) for v in w]] if w else []
    except (TypeError, ValueError) as exc:
        raise PreferenceError(f"preference must be numbers, got {w!r}: {exc}") from None


def _weight(v) -> float:
    """One weight as a float; True and False are not weights (HTTP and the CLI refuse them too)."""
    if isinstance(v, bool):
        raise TypeError(f"{v!r} is a truth value, not a number; give numbers like 0.3, 0.7")
    return float(v)
