"""The results of an evaluation: the table, its per-w statistics, the front metrics, the folder on disk.

A results folder (written by :meth:`EvalResult.save`, read by :func:`load_results`):

* ``rows.parquet``: one row per (w, prompt): ``w_idx``, one ``w_<objective>``
  column per family objective, ``prompt_id``, ``prompt``, ``response``, one
  column per scorer, ``n_words``, ``collapsed``, the generation ``settings``
  (JSON), ``system_prompt``, ``family`` and ``family_hash``;
* ``means.csv``: per w: mean, std and 95 % confidence interval (Student t over
  prompts) of every scorer, the collapse rate, whether the point is on the
  front and its hypervolume contribution;
* ``meta.json``: what was evaluated (family, prompts, grid, settings, scorers
  and their directions), the hypervolume **with its reference point** and the
  other front metrics.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import pareto
from ..atomic import atomic_folder
from ..errors import EvaluationError

RESULTS_VERSION = 1


@dataclass
class EvalResult:
    """Rows, per-w means and metadata of one evaluation (see the module docstring)."""

    rows: pd.DataFrame
    means: pd.DataFrame
    meta: dict
    stats: dict = field(default_factory=dict)  # how much was reused from the cache (not saved)

    @property
    def objectives(self) -> list[str]:
        return [s["name"] for s in self.meta["scorers"]]

    @property
    def maximise(self) -> list[bool]:
        return [bool(s["higher_is_better"]) for s in self.meta["scorers"]]

    @property
    def w_columns(self) -> list[str]:
        return list(self.meta["w_columns"])

    def front_points(self) -> np.ndarray:
        return self.means[self.objectives].to_numpy(dtype=float)

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write rows.parquet, means.csv and meta.json; an existing folder is replaced only once all are written."""
        out = Path(out_dir)
        with atomic_folder(out) as tmp:
            self.rows.to_parquet(tmp / "rows.parquet", index=False)
            self.means.to_csv(tmp / "means.csv", index=False)
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2, default=_json_default), encoding="utf-8")
        return out

    def summary_text(self) -> str:
        """The front as a small table plus the hypervolume and its reference point."""
        cols = ["w_idx", *self.w_columns, *self.objectives, "collapse_rate", "on_front"]
        table = self.means[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        m = self.meta["metrics"]
        ref = pareto.format_reference(m["reference"], self.objectives)
        arrows = ", ".join(f"{n} {'(higher better)' if up else '(lower better)'}"
                           for n, up in zip(self.objectives, self.maximise))
        return (
            f"family {self.meta['family']['name']} ({self.meta['family']['hash']}), "
            f"{self.meta['prompts']['n']} prompts x {len(self.means)} preferences; objectives: {arrows}\n"
            f"{table}\n"
            f"hypervolume {m['hypervolume']:.6g} (reference point {ref}, {m['reference_rule']})\n"
            f"non-dominated {m['n_nondominated']}/{len(self.means)}, inner product {m['inner_product']:.4g}, "
            f"spacing {m['spacing']:.4g}, collapse rate {m['collapse_rate']:.3f}"
        )


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def load_results(path: str | os.PathLike) -> EvalResult:
    """Read a results folder written by :meth:`EvalResult.save` (or the rows.parquet / meta.json inside it)."""
    p = Path(path)
    folder = p.parent if p.is_file() else p
    missing = [f for f in ("rows.parquet", "means.csv", "meta.json") if not (folder / f).is_file()]
    if missing:
        raise EvaluationError(f"{folder} is not a results folder (missing {missing}); run `paretoapp evaluate`")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return EvalResult(pd.read_parquet(folder / "rows.parquet"), pd.read_csv(folder / "means.csv"), meta)


def per_w_means(rows: pd.DataFrame, w_columns: list[str], objectives: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Mean, std and a Student-t confidence interval over prompts of every objective, per preference."""
    from scipy import stats

    out = []
    for w_idx, group in rows.groupby("w_idx", sort=True):
        rec = {"w_idx": int(w_idx), **{c: float(group[c].iloc[0]) for c in w_columns}, "n": len(group)}
        for name in objectives:
            x = group[name].to_numpy(dtype=float)
            mean, n = float(np.mean(x)), len(x)
            std = float(np.std(x, ddof=1)) if n > 1 else 0.0
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
            rec.update({name: mean, f"{name}_std": std, f"{name}_ci_low": mean - half, f"{name}_ci_high": mean + half})
        rec["collapse_rate"] = float(group["collapsed"].mean())
        out.append(rec)
    return pd.DataFrame(out)


def front_metrics(means: pd.DataFrame, w_columns: list[str], objectives: list[str], maximise: list[bool],
                  ref=None) -> tuple[dict, pd.DataFrame]:
    """Hypervolume (with its reference point), non-dominated flags and contributions of the per-w means."""
    points = means[objectives].to_numpy(dtype=float)
    rule = "given" if ref is not None else f"component-wise worst mean minus {pareto.DEFAULT_MARGIN:g} x range"
    ws = means[w_columns].to_numpy(dtype=float) if len(w_columns) == len(objectives) else None
    s = pareto.summarize(points, ws=ws, maximise=maximise, ref=ref)
    means = means.copy()
    means["on_front"] = s.nondominated
    means["hv_contribution"] = s.contributions
    metrics = {
        "hypervolume": s.hypervolume,
        "reference": s.reference,
        "reference_rule": rule,
        "n_nondominated": int(sum(s.nondominated)),
        "inner_product": s.inner_product,
        "inner_product_note": "scorers matched to family objectives by order" if ws is not None else "n/a (k differs)",
        "spacing": s.spacing,
        "sparsity": s.sparsity,
        "collapse_rate": float(means["collapse_rate"].mean()),
    }
    return metrics, means


def compare_results(results: dict[str, EvalResult], ref: Sequence[float] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Side-by-side front metrics of several evaluations, with one shared reference point.

    All results must use the same scorers (same names and directions); a warning
    column ``same_prompts`` says whether they also share the prompt set.
    """
    if not results:
        raise EvaluationError("nothing to compare")
    first = next(iter(results.values()))
    for name, r in results.items():
        if r.objectives != first.objectives or r.maximise != first.maximise:
            raise EvaluationError(
                f"{name} was scored with {r.objectives} but the first result with {first.objectives}; "
                "compare results that share their scorers"
            )
    fronts = {n: r.front_points() for n, r in results.items()}
    ws = {n: r.means[r.w_columns].to_numpy(float) for n, r in results.items() if len(r.w_columns) == len(r.objectives)}
    table, ref_used = pareto.compare_fronts(fronts, maximise=first.maximise, ref=ref, ws=ws or None)
    table["same_prompts"] = [r.meta["prompts"]["hash"] == first.meta["prompts"]["hash"] for r in results.values()]
    table["collapse_rate"] = [r.meta["metrics"]["collapse_rate"] for r in results.values()]
    return table, ref_used


def assemble_result(rows: pd.DataFrame, family: dict, grid: np.ndarray, w_columns: list[str], scorers: list[dict],
                    prompts: dict, settings: dict, system_prompt: str | None = None,
                    ref: Sequence[float] | None = None, **extra_meta) -> EvalResult:
    """The one place a results table is put together: per-w means, front metrics and ``meta.json``.

    ``rows`` holds one row per (w, prompt) with a column per scorer and ``collapsed``;
    ``scorers`` describes each scorer column (name, higher_is_better, description, spec).
    """
    names = [s["name"] for s in scorers]
    maximise = [bool(s["higher_is_better"]) for s in scorers]
    means = per_w_means(rows, w_columns, names)
    metrics, means = front_metrics(means, w_columns, names, maximise, ref)
    meta = {
        "format": "paretoapp-eval", "version": RESULTS_VERSION,
        "family": family, "w_columns": w_columns, "grid": np.asarray(grid).tolist(), "prompts": prompts,
        "settings": settings, "system_prompt": system_prompt, "scorers": scorers, "metrics": metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra_meta,
    }
    return EvalResult(rows, means, meta)


def worst_degenerate_rate(result: EvalResult) -> float:
    """The share of degenerate answers (``scorers.is_degenerate``: a loop or a collapse) at the family's worst
    evaluated w: the one figure every table and card calls "degenerate"."""
    from ..scorers import is_degenerate

    rows = result.rows
    if rows.empty or "response" not in rows:
        return float("nan")
    flags = pd.Series([is_degenerate(str(t)) for t in rows["response"].fillna("")], index=rows.index)
    return float(flags.groupby(rows["w_idx"]).mean().max())


def training_time_text(meta: dict) -> str:
    """A family's training wall time as its build recorded it (``training_cost.train_s`` in the results meta,
    written by the demo build), for the front-quality tables; "—" when nothing was recorded."""
    cost = meta.get("training_cost") or {}
    return f"{cost['train_s'] / 60:.1f} min" if "train_s" in cost else "—"


def hypervolume_interval(result: EvalResult, ref: Sequence[float], confidence: float = 0.95, n_boot: int = 400,
                         seed: int = 0) -> tuple[float, float] | None:
    """A bootstrap interval over prompts for the hypervolume of the per-w means, at reference ``ref``.

    Prompts are resampled with replacement (the same resample for every w, as the
    per-w means share their prompts); each resample's per-w means give one
    hypervolume. None when there are fewer than two prompts.
    """
    key = ("hv_interval", tuple(np.round(np.asarray(ref, float), 12)), confidence, n_boot, seed)
    if key in result.stats:
        return result.stats[key]
    rows, names = result.rows, result.objectives
    table = rows.pivot_table(index="w_idx", columns="prompt_id", values=names, aggfunc="mean")
    n_prompts = rows["prompt_id"].nunique()
    if n_prompts < 2 or table.isna().any().any():
        return None
    scores = np.stack([table[n].to_numpy(float) for n in names], axis=-1)  # [w, prompt, objective]
    rng = np.random.default_rng(seed)
    hvs = [pareto.hypervolume(scores[:, rng.integers(0, n_prompts, n_prompts)].mean(axis=1), ref, result.maximise)
           for _ in range(n_boot)]
    alpha = (1 - confidence) / 2
    interval = (float(np.quantile(hvs, alpha)), float(np.quantile(hvs, 1 - alpha)))
    result.stats[key] = interval
    return interval
