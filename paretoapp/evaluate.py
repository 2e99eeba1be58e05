"""Front evaluation: a family on disk -> a tidy results table the UI and benchmarks read.

For a grid of preference vectors w and a prompt set, every (w, prompt) pair is
answered by the family and scored by each scorer.  Because the bank takes one
w *per row* (design.md), the whole grid is generated in large mixed batches
(:func:`generate_front`): rows are ordered by prompt length so a batch holds
one prompt under many preferences and pads little.  No model is merged or
reloaded per w.

Outputs (:class:`EvalResult`, saved by :meth:`EvalResult.save` to a folder):

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

Caching: generations are cached under a key made of the family fingerprint,
the prompts, the grid, the generation settings and system prompt; scores under
that key plus the scorer's spec.  Re-running with the same inputs generates and
scores nothing; changing the family or a setting recomputes what it affects.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import pareto
from .atomic import atomic_file, atomic_folder
from .rewards import Scorer, ScorerContext, build_scorers

CACHE_VERSION = 1


class EvaluationError(ValueError):
    """Bad evaluation input (prompts, grid, results folder), with what to do about it."""


# ----------------------------------------------------------------------------- preference grids


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
    """Rewards-in-Context's 13-point grid for k=3 (notes/methods.md)."""
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


# ----------------------------------------------------------------------------- prompts


def load_prompts(source: str | os.PathLike, split: str = "test", column: str = "prompt",
                 limit: int | None = None, config: str | None = None) -> list[str]:
    """Prompts from a JSONL/JSON/CSV file with a ``column`` column, a .txt file (one per line), or a Hub dataset.

    A source that is not an existing file is read as a Hugging Face dataset id
    (``datasets.load_dataset(source, config, split=split)``), which needs a network.
    """
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".txt":
            prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            if suffix in (".jsonl", ".ndjson"):
                df = pd.read_json(path, lines=True)
            elif suffix == ".json":
                df = pd.read_json(path)
            elif suffix in (".csv", ".tsv"):
                df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
            elif suffix == ".parquet":
                df = pd.read_parquet(path)
            else:
                raise EvaluationError(f"prompt file {path} must be .jsonl, .json, .csv, .tsv, .parquet or .txt")
            if column not in df.columns:
                raise EvaluationError(f"prompt file {path} has no {column!r} column (columns: {list(df.columns)})")
            prompts = [str(p) for p in df[column].tolist()]
    elif str(source).endswith((".jsonl", ".json", ".csv", ".txt", ".parquet", ".tsv")):
        raise EvaluationError(f"prompt file {source} does not exist")
    else:
        prompts = _load_hub_prompts(str(source), split, column, config)
    prompts = [p for p in prompts if p.strip()]
    if limit is not None:
        prompts = prompts[:limit]
    if not prompts:
        raise EvaluationError(f"no prompts found in {source}")
    return prompts


def _load_hub_prompts(dataset_id: str, split: str, column: str, config: str | None) -> list[str]:
    try:
        import datasets
    except ImportError as e:  # pragma: no cover
        raise EvaluationError("loading prompts from the Hub needs `pip install datasets`") from e
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # network, unknown id, unknown split: say which
        raise EvaluationError(
            f"cannot load Hub dataset {dataset_id!r} (split {split!r}): {e}. Pass a local JSONL/CSV file instead"
        ) from e
    if column not in ds.column_names:
        raise EvaluationError(f"dataset {dataset_id} has no {column!r} column; choose one of {ds.column_names}")
    return [str(x) for x in ds[column]]


# ----------------------------------------------------------------------------- text quality


def is_collapsed(text: str, min_words: int = 3, n: int = 3, max_repeat: float = 0.5) -> bool:
    """A "language collapse" answer (ParetoHqD): near-empty, or mostly repeated word n-grams.

    Near-empty: fewer than ``min_words`` words.  Repetitive: more than
    ``max_repeat`` of its word ``n``-grams are repeats of an earlier one.
    """
    words = text.split()
    if len(words) < min_words:
        return True
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return False
    return 1.0 - len(set(grams)) / len(grams) > max_repeat


# ----------------------------------------------------------------------------- generation


def _generation_order(policy, prompts: Sequence[str], n_w: int) -> list[tuple[int, int]]:
    """(w_idx, prompt_idx) pairs, longest prompts first, one prompt's preferences together (little padding)."""
    lengths = [len(policy.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    pairs = [(wi, pi) for pi in range(len(prompts)) for wi in range(n_w)]
    return sorted(pairs, key=lambda t: (-lengths[t[1]], t[1], t[0]))


def generate_front(policy, prompts: Sequence[str], grid: np.ndarray, settings, system_prompt: str | None = None,
                   batch_size: int = 64, show_progress: bool = True) -> list[list[str]]:
    """answers[w_idx][prompt_idx] for every (w, prompt), in mixed batches of per-row preferences."""
    order = _generation_order(policy, prompts, len(grid))
    answers: list[list[str]] = [[""] * len(prompts) for _ in range(len(grid))]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="generating front", disable=not show_progress, leave=False):
        texts = policy.generate([prompts[pi] for _, pi in batch], [list(grid[wi]) for wi, _ in batch],
                                settings=settings, system_prompt=system_prompt)
        for (wi, pi), text in zip(batch, texts):
            answers[wi][pi] = text
    return answers


def generate_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings, system_prompt: str | None = None,
                   batch_size: int = 64) -> list[list[str]]:
    """The same answers, one preference at a time (every row of a batch has the same w): a reference."""
    out = []
    for w in grid:
        texts: list[str] = []
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            texts += policy.generate(chunk, [list(w)] * len(chunk), settings=settings, system_prompt=system_prompt)
        out.append(texts)
    return out


def generate_merged_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings,
                          system_prompt: str | None = None, batch_size: int = 64) -> list[list[str]]:
    """The "one model per w" baseline: merge W0 + B diag(g(w)) A into a plain model for each w, then generate.

    What evaluating a front costs without a per-row bank (Rewarded Soups' way);
    used by ``bench/front_eval.py``.
    """
    out = []
    for w in grid:
        merged = policy.bank.merged_model(list(w)).to(policy.device)
        texts: list[str] = []
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            texts += policy.generate(chunk, [list(w)] * len(chunk), settings=settings, system_prompt=system_prompt,
                                     model=merged)
        out.append(texts)
        del merged
    return out


# ----------------------------------------------------------------------------- caching


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    from .models import cache_dir

    return cache_dir() / "eval"


def _write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


# ----------------------------------------------------------------------------- results


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
        raise EvaluationError(f"{folder} is not a results folder (missing {missing}); run `python -m paretoapp evaluate`")
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


# ----------------------------------------------------------------------------- the evaluation


def _as_policy(family_or_policy, device: str):
    if hasattr(family_or_policy, "generate") and hasattr(family_or_policy, "family"):
        return family_or_policy
    from .generate import load_policy

    return load_policy(family_or_policy, device=device)


def evaluate_family(
    family,
    prompts: Sequence[str],
    scorers: str | Sequence[str | Scorer],
    grid: np.ndarray | str | None = None,
    settings=None,
    system_prompt: str | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    device: str = "cpu",
    ref: Sequence[float] | None = None,
    prompts_source: str = "",
    show_progress: bool = True,
) -> EvalResult:
    """Generate an answer for every (w, prompt), score it, and summarise the front.

    ``family`` is a family folder or an already loaded ``Policy``; ``scorers`` a
    comma-separated string or a list (see ``rewards.build_scorer``), matched to
    the family's objectives by order for the inner product.
    """
    from .generate import GenerationSettings

    policy = _as_policy(family, device)
    manifest = policy.family.manifest
    k = manifest.k
    grid = parse_grid(grid, k) if grid is None or isinstance(grid, str) else np.atleast_2d(np.asarray(grid, float))
    if grid.shape[1] != k:
        raise EvaluationError(f"grid vectors have {grid.shape[1]} values but the family has {k} objectives")
    manifest.check_w(grid)  # the family's own range check, before any work
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise EvaluationError("no prompts to evaluate")
    settings = settings or GenerationSettings(max_new_tokens=64)
    context = ScorerContext(causal_lm=policy.model, tokenizer=policy.tokenizer,
                            model_id=manifest.base_model.name_or_path,
                            system_prompt=system_prompt if system_prompt is not None else manifest.system_prompt,
                            device=str(policy.device), show_progress=show_progress)
    scorer_list = build_scorers(scorers, context)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    family_hash = policy.family.fingerprint()
    gen_spec = {
        "v": CACHE_VERSION, "family": family_hash, "prompts": _hash(prompts), "grid": np.round(grid, 10).tolist(),
        "settings": settings.to_dict(), "system_prompt": system_prompt,
        # sampled answers depend on how rows are batched
        "batch_size": batch_size if settings.do_sample else None,
    }
    gen_key = _hash(gen_spec)
    stats = {"generated": 0, "scored": []}

    # generations
    gen_path = cache / "generations" / f"{gen_key}.parquet"
    if use_cache and gen_path.is_file():
        responses = pd.read_parquet(gen_path)["response"].tolist()
    else:
        t0 = time.perf_counter()
        answers = generate_front(policy, prompts, grid, settings, system_prompt, batch_size, show_progress)
        responses = [answers[wi][pi] for wi in range(len(grid)) for pi in range(len(prompts))]
        stats["generated"] = len(responses)
        stats["generation_seconds"] = time.perf_counter() - t0
        if use_cache:
            _write_parquet_atomic(pd.DataFrame({"response": responses}), gen_path)

    w_names = [f"w_{o.name}" for o in manifest.objectives]
    rows = pd.DataFrame({
        "w_idx": np.repeat(np.arange(len(grid)), len(prompts)),
        **{c: np.repeat(grid[:, i], len(prompts)) for i, c in enumerate(w_names)},
        "prompt_id": np.tile(np.arange(len(prompts)), len(grid)),
        "prompt": prompts * len(grid),
        "response": responses,
    })

    # scores
    for scorer in scorer_list:
        score_path = cache / "scores" / f"{gen_key}-{_hash(scorer.spec())}.parquet"
        if use_cache and score_path.is_file():
            values = pd.read_parquet(score_path)["score"].to_numpy()
        else:
            values = scorer(rows["prompt"].tolist(), rows["response"].tolist())
            stats["scored"].append(scorer.name)
            if use_cache:
                _write_parquet_atomic(pd.DataFrame({"score": values}), score_path)
        rows[scorer.name] = values

    rows["n_words"] = rows["response"].str.split().str.len().fillna(0).astype(int)
    rows["collapsed"] = [is_collapsed(r) for r in rows["response"]]
    rows["settings"] = json.dumps(settings.to_dict(), sort_keys=True)
    rows["system_prompt"] = system_prompt
    rows["family"] = manifest.name
    rows["family_hash"] = family_hash

    names = [s.name for s in scorer_list]
    maximise = [bool(s.higher_is_better) for s in scorer_list]
    means = per_w_means(rows, w_names, names)
    metrics, means = front_metrics(means, w_names, names, maximise, ref)
    meta = {
        "format": "paretoapp-eval", "version": CACHE_VERSION,
        "family": {"name": manifest.name, "method": manifest.method, "hash": family_hash,
                   "path": str(getattr(policy.family, "path", "") or ""),
                   "objectives": [o.name for o in manifest.objectives]},
        "w_columns": w_names,
        "grid": grid.tolist(),
        "prompts": {"source": str(prompts_source), "n": len(prompts), "hash": _hash(prompts)},
        "settings": settings.to_dict(),
        "system_prompt": system_prompt,
        "scorers": [{"name": s.name, "higher_is_better": bool(s.higher_is_better),
                     "description": getattr(s, "description", ""), "spec": s.spec()} for s in scorer_list],
        "metrics": metrics,
        "cache_key": gen_key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return EvalResult(rows, means, meta, stats)


# ----------------------------------------------------------------------------- comparing results


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
