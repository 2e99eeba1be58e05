"""Pick a preference by constraint: "harmless at least 0.9, then as helpful as possible".

A user rarely knows the w they want; they know a floor on one objective and
what to make as large as they can under it. ``pick`` answers that on the
evaluated front (the per-w means of a results table):

* among the evaluated w whose means satisfy every bound, the one with the best
  value of the objective to maximise;
* on a two-objective family whose gate is affine in w (Rewarded Soups,
  Preference Vector, Panacea: the policy moves smoothly with w), also the
  points *between* neighbouring evaluated w, with the means interpolated
  linearly: a bound then binds where the interpolated mean crosses it. Such a
  pick is an estimate and says so;
* when nothing satisfies the bounds, the closest evaluated w (least total
  shortfall) with a message that says which bound fails.

Objectives are named by the family's objective names (``harmless``) or the
results' scorer columns (``harmless_offline``); they are matched by order, as
everywhere in the evaluator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .evaluate import EvalResult, EvaluationError


@dataclass
class Pick:
    """The w a constraint picks, what it scores there, and how it was found."""

    w: list[float] | None
    means: dict[str, float] = field(default_factory=dict)
    feasible: bool = True
    estimated: bool = False   # between two evaluated w, means interpolated
    note: str = ""


def can_interpolate(manifest) -> bool:
    """Whether means between evaluated w are an honest estimate: two objectives on the simplex, an affine gate
    (the policy moves linearly in weight space with w) and no prompt conditioning."""
    return manifest.k == 2 and manifest.on_simplex and manifest.gate.kind == "affine" and manifest.conditioning is None


def objective_columns(result: EvalResult, family_objectives: list[str] | None = None) -> dict[str, str]:
    """Name -> scorer column: every scorer column under its own name, and the family's objective names by order."""
    cols = {c: c for c in result.objectives}
    names = family_objectives or result.meta.get("family", {}).get("objectives") or []
    if len(names) == len(result.objectives):
        cols.update(dict(zip(names, result.objectives)))
    return cols


def _resolve(cols: dict[str, str], name: str) -> str:
    if name not in cols:
        raise EvaluationError(f"no objective {name!r} in this evaluation; use one of {', '.join(sorted(cols))}")
    return cols[name]


def pick(result: EvalResult, at_least: dict[str, float] | None = None, at_most: dict[str, float] | None = None,
         maximize: str | None = None, interpolate: bool = False,
         family_objectives: list[str] | None = None) -> Pick:
    """The w on the evaluated front that satisfies the bounds and maximises ``maximize``.

    ``interpolate``: also consider w between neighbouring evaluated points (k = 2
    on the simplex only; the caller decides whether the family's gate makes
    that honest). Directions follow each scorer (a lower-is-better scorer's
    "at least" still means its value is at least the bound).
    """
    cols = objective_columns(result, family_objectives)
    lows = {_resolve(cols, k): _bound(k, v) for k, v in (at_least or {}).items()}
    highs = {_resolve(cols, k): _bound(k, v) for k, v in (at_most or {}).items()}
    names = result.objectives
    if maximize is None:
        free = [n for n in names if n not in lows and n not in highs]
        if not free:
            raise EvaluationError("say which objective to maximise (--maximize NAME): every objective has a bound")
        maximize = free[0]
    target = _resolve(cols, maximize)
    sign = 1.0 if result.maximise[names.index(target)] else -1.0  # "as good as possible" in its direction
    W = result.means[result.w_columns].to_numpy(float)
    M = result.means[names].to_numpy(float)

    def shortfall(m: np.ndarray) -> float:
        s = sum(max(0.0, lo - m[names.index(c)]) for c, lo in lows.items())
        return s + sum(max(0.0, m[names.index(c)] - hi) for c, hi in highs.items())

    candidates = [(W[i], M[i], False) for i in range(len(W))]
    if interpolate and W.shape[1] == 2 and len(W) > 1:
        candidates += _crossings(W, M, names, {**lows, **highs})
    feasible = [(w, m, est) for w, m, est in candidates if shortfall(m) <= 1e-12]
    if feasible:
        w, m, est = max(feasible, key=lambda c: (sign * c[1][names.index(target)], not c[2]))
        bounds = ", ".join([f"{c} ≥ {v:g}" for c, v in lows.items()] + [f"{c} ≤ {v:g}" for c, v in highs.items()])
        note = (f"best {target} with {bounds}" if bounds else f"best {target}") + (
            " (estimated between evaluated w)" if est else " (an evaluated w)")
        return Pick(_w(w), dict(zip(names, map(float, m))), True, est, note)
    w, m, _ = min(((w, m, est) for w, m, est in candidates if not est), key=lambda c: shortfall(c[1]))
    failing = [f"{c} ≥ {v:g} (best reachable {M[:, names.index(c)].max():.3g})" for c, v in lows.items()
               if M[:, names.index(c)].max() < v]
    failing += [f"{c} ≤ {v:g} (lowest reachable {M[:, names.index(c)].min():.3g})" for c, v in highs.items()
                if M[:, names.index(c)].min() > v]
    why = "; ".join(failing) if failing else "the bounds together"
    return Pick(_w(w), dict(zip(names, map(float, m))), False, False,
                f"no evaluated w satisfies {why}; the closest evaluated w is shown")


def _bound(name: str, value) -> float:
    """A bound as a finite float: NaN would compare false with every mean and silently bind nothing."""
    try:
        bound = float(value)
    except (TypeError, ValueError):
        raise EvaluationError(f"the bound on {name} is {value!r}, not a number; give one like 0.9") from None
    if not math.isfinite(bound):
        raise EvaluationError(f"the bound on {name} is {bound}; give a finite number like 0.9")
    return bound


def _w(w: np.ndarray) -> list[float]:
    return [round(float(v), 10) for v in w]


def _crossings(W: np.ndarray, M: np.ndarray, names: list[str], bounds: dict[str, float]) -> list:
    """Points between neighbouring evaluated w (sorted by w_1) where an interpolated mean meets a bound."""
    order = np.argsort(W[:, 0])
    out = []
    for a, b in zip(order[:-1], order[1:]):
        for col, bound in bounds.items():
            j = names.index(col)
            lo, hi = M[a, j], M[b, j]
            if lo == hi or not (min(lo, hi) <= bound <= max(lo, hi)):
                continue
            t = (bound - lo) / (hi - lo)
            if 1e-9 < t < 1 - 1e-9:
                out.append(((1 - t) * W[a] + t * W[b], (1 - t) * M[a] + t * M[b], True))
    return out


def parse_bounds(items: list[str], what: str) -> dict[str, float]:
    """``["harmless=0.9", ...]`` -> ``{"harmless": 0.9}`` (the CLI's --at-least / --at-most)."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise EvaluationError(f"{what} {item!r}: write NAME=NUMBER, e.g. harmless=0.9") from None
        if not math.isfinite(out[name.strip()]):
            raise EvaluationError(f"{what} {item!r}: a bound must be a finite number; give one like harmless=0.9")
    return out
