"""Preference grids: which w a front is evaluated at.

The papers' conventions (docs/methods.md, "Evaluation conventions"): for k = 2,
w_1 in {0, 0.1, ..., 1} (11 points); for k = 3, Rewards-in-Context's 13 points;
a sweep may reach past [0, 1] where the family allows extrapolation.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np

from ..errors import EvaluationError


def simplex_grid(k: int, resolution: int) -> np.ndarray:
    """Every w with entries in {0, 1/resolution, ..., 1} summing to 1 (k=2, resolution 10: 11 points)."""
    if k < 1 or resolution < 1:
        raise EvaluationError("simplex grid needs k >= 1 objectives and resolution >= 1")
    points = [c for c in itertools.product(range(resolution + 1), repeat=k) if sum(c) == resolution]
    grid = np.array(points, dtype=float) / resolution
    return grid[np.lexsort(grid.T[::-1])][::-1]  # first objective's weight descending


def sweep_grid(n_points: int = 11, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """k=2 line w = (a, 1 - a) for n_points values of a from low to high.

    low < 0 or high > 1 extrapolates beyond the simplex (PEO, Preference Vector);
    the family must allow such weights (its ``w_low``/``w_high``).
    """
    if n_points < 1:
        raise EvaluationError("a sweep needs at least one point")
    a = np.linspace(high, low, n_points) if n_points > 1 else np.array([low])
    return np.stack([a, 1.0 - a], axis=1)


def ric_grid_k3() -> np.ndarray:
    """Rewards-in-Context's 13-point grid for k=3 (docs/methods.md)."""
    base = [(1, 0, 0), (0.1, 0.1, 0.8), (0.2, 0.2, 0.6), (0.2, 0.4, 0.4)]
    points = {p for b in base for p in itertools.permutations(b)}
    grid = sorted(points, reverse=True) + [(1 / 3, 1 / 3, 1 / 3)]
    return np.array(grid, dtype=float)


def parse_grid(spec: str, k: int) -> np.ndarray:
    """A grid from a short string (the CLI's ``--grid``).

    ``simplex:R`` (uniform on the simplex, resolution R), ``sweep:N`` or
    ``sweep:N:LOW:HIGH`` (k=2 only), ``ric3`` (k=3), ``points:0.2,0.8;0.5,0.5``,
    or a path to a JSON list of vectors / a CSV with one vector per line.
    Default when omitted: ``sweep:11`` for k=2, ``ric3`` for k=3, ``simplex:4`` otherwise.
    """
    spec = (spec or "").strip()
    if not spec:
        spec = "sweep:11" if k == 2 else "ric3" if k == 3 else "simplex:4"
    kind, _, arg = spec.partition(":")
    try:
        if kind == "simplex":
            grid = simplex_grid(k, int(arg or 10))
        elif kind == "sweep":
            if k != 2:
                raise EvaluationError(f"a sweep grid is for 2 objectives; this family has {k} (use simplex:R)")
            parts = [float(x) for x in arg.split(":")] if arg else []
            n = int(parts[0]) if parts else 11
            low, high = (parts[1], parts[2]) if len(parts) == 3 else (0.0, 1.0)
            grid = sweep_grid(n, low, high)
        elif kind == "ric3":
            if k != 3:
                raise EvaluationError(f"the RiC grid is for 3 objectives; this family has {k}")
            grid = ric_grid_k3()
        elif kind == "points":
            grid = np.array([[float(x) for x in p.split(",")] for p in arg.split(";") if p.strip()])
        elif Path(spec).is_file():
            grid = _read_grid_file(Path(spec))
        else:
            raise EvaluationError(
                f"unknown grid {spec!r}; use simplex:R, sweep:N[:LOW:HIGH], ric3, points:a,b;c,d or a file"
            )
    except ValueError as e:
        if isinstance(e, EvaluationError):
            raise
        raise EvaluationError(f"cannot read grid {spec!r}: {e}") from e
    grid = np.atleast_2d(np.asarray(grid, dtype=float))
    if grid.shape[1] != k:
        raise EvaluationError(f"grid {spec!r} has vectors of length {grid.shape[1]} but the family has {k} objectives")
    return grid


def _read_grid_file(path: Path) -> np.ndarray:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return np.array(json.loads(text), dtype=float)
    return np.array([[float(x) for x in row] for row in csv.reader(text.splitlines()) if row], dtype=float)
