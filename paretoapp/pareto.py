"""Pareto-front geometry: which points are non-dominated, how much they cover.

Everything here works on a small matrix of per-preference mean scores
(one row per preference vector w, one column per objective) and a per-objective
direction (``maximise[i]`` is False for costs, e.g. the PKU beaver cost model).
The heavy lifting (non-dominated filtering, hypervolume, contributions) is done
by ``moocore`` (a well-tested C library); this module only adds the conventions
the project needs on top of it:

* **Reference point.** No paper in this area states its hypervolume reference
  point, so every number is only comparable with the same point.  The default,
  :func:`reference_point`, is *the component-wise worst value over all the
  fronts being compared, moved a margin (10 % of that objective's range) further
  into the bad direction*.  It is computed once over every compared front, stored
  with the results and printed beside every hypervolume.
* **Normalisation.** Inner product and spacing are computed on scores mapped to
  [0, 1] per objective (0 = worst, 1 = best, in the objective's own direction),
  so objectives on different scales weigh the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import moocore
import numpy as np
import pandas as pd

DEFAULT_MARGIN = 0.1


def _as_points(points) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"points must be a 2-D array (rows = points, columns = objectives); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("points contain NaN or infinite values; drop or fix those rows before computing a front")
    return arr


def _as_maximise(maximise, k: int) -> np.ndarray:
    if isinstance(maximise, (bool, np.bool_)):
        return np.full(k, bool(maximise))
    flags = np.asarray(list(maximise), dtype=bool)
    if flags.shape != (k,):
        raise ValueError(f"maximise has {flags.size} entries but the points have {k} objectives")
    return flags


def oriented(points, maximise=True) -> np.ndarray:
    """Flip the sign of lower-is-better objectives so that larger is always better."""
    pts = _as_points(points)
    return np.where(_as_maximise(maximise, pts.shape[1]), pts, -pts)


def nondominated_mask(points, maximise=True) -> np.ndarray:
    """Boolean mask of the points no other point dominates (duplicates: only the first kept)."""
    pts = _as_points(points)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(pts, maximise=_as_maximise(maximise, pts.shape[1]).tolist()))


def reference_point(*point_sets, maximise=True, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The project's default hypervolume reference point for the given fronts.

    Component-wise worst value over *all* the point sets, moved ``margin`` times
    that objective's range further into the bad direction (or by ``margin`` in
    absolute terms when every point has the same value), so that every point of
    every front contributes a positive volume.
    """
    if not point_sets:
        raise ValueError("reference_point needs at least one set of points")
    pts = np.vstack([_as_points(p) for p in point_sets])
    flags = _as_maximise(maximise, pts.shape[1])
    span = pts.max(axis=0) - pts.min(axis=0)
    step = np.where(span > 0, margin * span, margin)
    return np.where(flags, pts.min(axis=0) - step, pts.max(axis=0) + step)


def hypervolume(points, ref, maximise=True) -> float:
    """Volume dominated by ``points`` and bounded by ``ref`` (points worse than ref add nothing)."""
    pts = _as_points(points)
    ref = np.asarray(ref, dtype=float)
    if ref.shape != (pts.shape[1],):
        raise ValueError(f"reference point has {ref.size} values but the points have {pts.shape[1]} objectives")
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref, maximise=_as_maximise(maximise, pts.shape[1]).tolist()))


def hv_contributions(points, ref, maximise=True) -> np.ndarray:
    """Hypervolume lost if each point were removed (0 for dominated or duplicated points)."""
    pts = _as_points(points)
    ref = np.asarray(ref, dtype=float)
    if len(pts) == 0:
        return np.zeros(0)
    flags = _as_maximise(maximise, pts.shape[1])
    if pts.shape[1] == 1:  # moocore 0.3 segfaults on 1-D input; in 1-D only the best point owns volume
        o = oriented(pts, flags)[:, 0]
        r = float(oriented(ref[None, :], flags)[0, 0])
        best = int(np.argmax(o))
        rest = np.delete(o, best)
        runner_up = max(r, float(rest.max())) if len(rest) else r
        out = np.zeros(len(pts))
        out[best] = max(0.0, float(o[best]) - runner_up)
        return out
    return np.asarray(
        moocore.hv_contributions(pts, ref=ref, maximise=_as_maximise(maximise, pts.shape[1]).tolist()), dtype=float
    )


def normalise(points, maximise=True, lo=None, hi=None) -> np.ndarray:
    """Map each objective to [0, 1] with 1 = best, using bounds ``lo``/``hi`` (raw units).

    The bounds default to the min and max of ``points``; pass the bounds of all
    compared fronts to keep several fronts on one scale.  A constant objective maps to 0.5.
    """
    pts = _as_points(points)
    flags = _as_maximise(maximise, pts.shape[1])
    lo = pts.min(axis=0) if lo is None else np.asarray(lo, dtype=float)
    hi = pts.max(axis=0) if hi is None else np.asarray(hi, dtype=float)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    unit = np.where(span > 0, (pts - lo) / safe, 0.5)
    return np.where(flags, unit, 1.0 - unit)


def inner_product(ws, points, maximise=True, lo=None, hi=None) -> float:
    """Mean over preferences of <w, normalised scores(w)> (Panacea's alignment measure).

    High when each preference vector gets the scores it asked for.  ``ws`` and
    ``points`` are row-aligned; scores are normalised with :func:`normalise`.
    """
    w = _as_points(ws)
    pts = _as_points(points)
    if w.shape != pts.shape:
        raise ValueError(
            f"inner_product needs one w per point with one weight per objective; got w {w.shape} and points {pts.shape}"
        )
    return float(np.mean(np.sum(w * normalise(pts, maximise, lo, hi), axis=1)))


def spacing(points, maximise=True, lo=None, hi=None) -> float:
    """Schott's spacing of a front: std of each point's L1 distance to its nearest neighbour.

    0 means evenly spread points.  Computed on normalised scores; NaN for fewer than 2 points.
    """
    pts = _as_points(points)
    if len(pts) < 2:
        return float("nan")
    unit = normalise(pts, maximise, lo, hi)
    dist = np.abs(unit[:, None, :] - unit[None, :, :]).sum(axis=2)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(axis=1)
    return float(np.sqrt(np.sum((nearest - nearest.mean()) ** 2) / (len(pts) - 1)))


def sparsity(points, maximise=True, lo=None, hi=None) -> float:
    """Mean squared gap between consecutive points along each objective (PGMORL's sparsity).

    Low means a dense front.  Computed on normalised scores; NaN for fewer than 2 points.
    """
    pts = _as_points(points)
    if len(pts) < 2:
        return float("nan")
    unit = np.sort(normalise(pts, maximise, lo, hi), axis=0)
    return float(np.sum(np.diff(unit, axis=0) ** 2) / (len(pts) - 1))


@dataclass
class FrontSummary:
    """What one family's front looks like against a given reference point."""

    hypervolume: float
    reference: list[float]
    nondominated: list[bool]
    contributions: list[float]
    inner_product: float
    spacing: float
    sparsity: float
    extra: dict = field(default_factory=dict)


def summarize(points, ws=None, maximise=True, ref=None, lo=None, hi=None) -> FrontSummary:
    """All front metrics for one set of per-w mean scores (ref defaults to :func:`reference_point`)."""
    pts = _as_points(points)
    flags = _as_maximise(maximise, pts.shape[1])
    ref = reference_point(pts, maximise=flags) if ref is None else np.asarray(ref, dtype=float)
    mask = nondominated_mask(pts, flags)
    front = pts[mask]
    ip = float("nan")
    if ws is not None and np.asarray(ws).shape == pts.shape:
        ip = inner_product(ws, pts, flags, lo, hi)
    return FrontSummary(
        hypervolume=hypervolume(pts, ref, flags),
        reference=[float(x) for x in ref],
        nondominated=[bool(x) for x in mask],
        contributions=[float(x) for x in hv_contributions(pts, ref, flags)],
        inner_product=ip,
        spacing=spacing(front, flags, lo, hi),
        sparsity=sparsity(front, flags, lo, hi),
    )


def compare_fronts(
    fronts: Mapping[str, np.ndarray], maximise=True, ref=None, ws: Mapping[str, np.ndarray] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Side-by-side metrics of several fronts measured on the same prompts and scorers.

    One reference point and one normalisation (bounds over all fronts) are shared,
    so the numbers are comparable.  ``on_joint_front`` is the share of a family's
    points that survive when all families' points are pooled: 1.0 means nothing
    else beats it anywhere.  Returns (table indexed by family name, reference point).
    """
    if not fronts:
        raise ValueError("compare_fronts needs at least one front")
    names = list(fronts)
    sets = [_as_points(fronts[n]) for n in names]
    k = sets[0].shape[1]
    if any(s.shape[1] != k for s in sets):
        raise ValueError("all fronts must have the same objectives (same number of score columns)")
    flags = _as_maximise(maximise, k)
    ref = reference_point(*sets, maximise=flags) if ref is None else np.asarray(ref, dtype=float)
    pooled = np.vstack(sets)
    lo, hi = pooled.min(axis=0), pooled.max(axis=0)
    # keep_weakly: a point tied with another family's point still counts as on the joint front.
    joint = np.asarray(moocore.is_nondominated(pooled, maximise=flags.tolist(), keep_weakly=True))
    rows, start = [], 0
    for name, pts in zip(names, sets):
        s = summarize(pts, None if ws is None else ws.get(name), flags, ref, lo, hi)
        on_joint = joint[start : start + len(pts)]
        start += len(pts)
        rows.append(
            {
                "family": name,
                "hypervolume": s.hypervolume,
                "n_points": len(pts),
                "n_nondominated": int(sum(s.nondominated)),
                "on_joint_front": float(on_joint.mean()) if len(pts) else float("nan"),
                "inner_product": s.inner_product,
                "spacing": s.spacing,
                "sparsity": s.sparsity,
            }
        )
    return pd.DataFrame(rows).set_index("family"), ref


def format_reference(ref: Sequence[float], names: Sequence[str] | None = None) -> str:
    """Human-readable reference point, printed beside every hypervolume."""
    names = list(names) if names is not None else [f"obj{i}" for i in range(len(ref))]
    return "(" + ", ".join(f"{n}={v:.4g}" for n, v in zip(names, ref)) + ")"
