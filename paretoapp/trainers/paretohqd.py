"""ParetoHqD (arXiv 2504.16628, AAAI 2026): preference directions and Pareto high-quality data, two-stage SFT.

What the paper confirms (abstract): preferences are *directions* in objective
space; data near the Pareto front is high-quality; for each preference a
two-stage SFT, each stage on its own Pareto high-quality set matching that
direction. The details follow the **reconstruction** in docs/methods.md
(the method section could not be read); every choice is a setting:

1. Score every (prompt, response) of the data (chosen and rejected of every
   objective's pairs) with the k scorers, oriented larger-is-better, and
   min-max normalise each objective over the data.
2. A preference w is the ray from the ideal point r_max towards the compromise
   point W(w) = r_min + w (r_max - r_min); in the normalised space r_max = 1,
   r_min = 0, so the ray leaves 1 in the direction w - 1.
3. Pareto high-quality data: the first ``n_layers`` non-dominated layers
   (``pareto_layers``); for each preference the ``n_per_preference`` points of
   that set with the smallest perpendicular distance to its ray
   (``select_for_directions``; ties keep the data order).
4. Stage 1: one LoRA adapter per preference, SFT from the base on its points.
   Stage 2: the stage-1 models (by default one per objective vertex plus the
   balanced one, ``stage2_sample_preferences``) answer fresh prompts; the
   answers are scored, normalised with the stage-1 min/max, and selected again
   (n/2 per preference, ``stage2_per_preference``) from their own first layers;
   each preference's adapter continues SFT on its selection.
   The share of stage-2 answers that are near-empty or repetitive ("language
   collapse", ``paretoapp.scorers.is_collapsed``) is recorded in the family.

Family: one adapter per trained preference (k = 2: 11 directions by default);
the gate interpolates the two nearest trained directions (or ``nearest``).

    paretoapp train paretohqd --config hqd.yaml
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from paretoapp.atomic import atomic_file
from paretoapp.gates import Gate
from paretoapp.pareto import nondominated_mask

from .cli import method_main
from .config import ConfigError, MethodConfig, TrainConfig, to_dict
from .data import DataSpec, SFTCollator, read_rows, train_eval_pairs
from .family_io import family_from_run, load_stacked
from .loop import on_main_process, start_run, train_adapter
from .lora import activate, attach_lora, load_adapters, load_run_base
from .multi_objective import (
    build_objective_scorers,
    point_label,
    preference_grid,
    recipe_hash,
    score_responses,
    scorer_names,
    write_anchor_family,
)
from .objective_adapter import finished_run, make_loss_fn, train_recipe, write_recipe


@dataclass
class ParetoHqDConfig(MethodConfig):
    scorers: list[str] | None = None             # one paretoapp.scorers spec per objective
    preferences: list[list[float]] | None = None  # default: simplex grid, step 1/grid_resolution
    grid_resolution: int = 10                     # k = 2: 11 directions (the paper)
    n_layers: int = 2                             # non-dominated layers that form the high-quality set
    n_per_preference: int = 100                   # stage 1 (paper: 100)
    stage2: bool = True
    stage2_per_preference: int | None = None      # default n_per_preference // 2
    stage2_prompts: str | None = None             # .jsonl ("prompt") or .txt; default: held-out, else data prompts
    n_stage2_prompts: int = 64
    stage2_sample_preferences: list[list[float]] | None = None  # default: the vertices and the balanced point
    samples_per_prompt: int = 1
    max_new_tokens: int = 128
    temperature: float = 0.7
    generation_batch_size: int = 32
    stage2_train: TrainConfig | None = None       # default: ``train``
    gate_mode: str = "interpolate"

    def check(self) -> None:
        super().check()
        k = len(self.objectives)
        if self.n_layers < 1 or self.n_per_preference < 1:
            raise ConfigError("need n_layers >= 1 and n_per_preference >= 1")
        if self.gate_mode not in ("nearest", "interpolate"):
            raise ConfigError(f"gate_mode must be 'nearest' or 'interpolate', got {self.gate_mode!r}")
        preference_grid(k, self.preferences, self.grid_resolution)
        if self.stage2_sample_preferences:
            preference_grid(k, self.stage2_sample_preferences)


# --------------------------------------------------------------------------- selection (the method's core)
def minmax_normalise(scores: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None):
    """(normalised scores, lo, hi): each objective mapped to [0, 1] over the data (or the given range)."""
    scores = np.asarray(scores, dtype=np.float64)
    lo = scores.min(axis=0) if lo is None else np.asarray(lo, dtype=np.float64)
    hi = scores.max(axis=0) if hi is None else np.asarray(hi, dtype=np.float64)
    return (scores - lo) / np.where(hi - lo > 0, hi - lo, 1.0), lo, hi


def pareto_layers(points: np.ndarray, n_layers: int | None = None) -> list[np.ndarray]:
    """Non-dominated sorting (maximise): layer 0 is the front, layer 1 the front of the rest, ...

    Exact duplicates share a layer.
    """
    remaining = np.arange(len(points))
    layers = []
    while len(remaining) and (n_layers is None or len(layers) < n_layers):
        pts = points[remaining]
        mask = nondominated_mask(pts, maximise=True)
        front = pts[mask]
        # moocore keeps only the first of duplicates: put the copies in the same layer
        dup = np.array([any(np.array_equal(p, f) for f in front) for p in pts])
        layers.append(remaining[mask | dup])
        remaining = remaining[~(mask | dup)]
    return layers


def ray_distance(points: np.ndarray, w: Sequence[float]) -> np.ndarray:
    """Perpendicular distance of normalised points to the ray from 1 towards w (direction w - 1)."""
    ideal = np.ones(points.shape[1])
    d = np.asarray(w, dtype=np.float64) - ideal
    d = d / np.linalg.norm(d)
    rel = points - ideal
    return np.linalg.norm(rel - np.outer(rel @ d, d), axis=1)


def select_for_directions(scores: np.ndarray, preferences: Sequence[Sequence[float]], n: int,
                          n_layers: int, lo=None, hi=None) -> list[list[int]]:
    """For each preference: indices of the ``n`` high-quality points nearest its ray (nearest first)."""
    norm, _, _ = minmax_normalise(scores, lo, hi)
    hq = np.sort(np.concatenate(pareto_layers(norm, n_layers)))
    out = []
    for w in preferences:
        dist = np.round(ray_distance(norm[hq], w), 12)  # float noise must not reorder exact ties
        order = np.argsort(dist, kind="stable")[:n]
        out.append(hq[order].tolist())
    return out


# --------------------------------------------------------------------------- data and prompts
def response_pool(cfg: ParetoHqDConfig) -> tuple[list[dict], list]:
    """Unique (prompt, response) rows from every objective's pairs, and the held-out prompts."""
    seen, rows, held = set(), [], []
    for o in cfg.objectives:
        if o.data is None:
            continue
        train, ev = train_eval_pairs(dataclasses.replace(o.data, objective=o.data.objective or o.name),
                                     cfg.train.seed)
        held += [p["prompt"] for p in ev]
        for p in train:
            for key in ("chosen", "rejected"):
                row = {"prompt": p["prompt"], "response": p[key]}
                sig = json.dumps(row, sort_keys=True)
                if sig not in seen:
                    seen.add(sig)
                    rows.append(row)
    if not rows:
        raise ConfigError("ParetoHqD found no responses to score: give the objectives data")
    return rows, held


def fresh_prompts(cfg: ParetoHqDConfig, held: list, rows: list[dict]) -> list:
    if cfg.stage2_prompts:
        path = Path(cfg.stage2_prompts)
        prompts = ([line.strip() for line in path.read_text().splitlines() if line.strip()] if path.suffix == ".txt"
                   else [r["prompt"] for r in read_rows(DataSpec(source=str(path)))])
    else:
        prompts = held or [r["prompt"] for r in rows]
    unique = list({json.dumps(p, sort_keys=True): p for p in prompts}.values())
    return unique[: cfg.n_stage2_prompts]


# --------------------------------------------------------------------------- training
def sft_run(cfg: ParetoHqDConfig, run_dir: Path, rows: list[dict], train: TrainConfig, recipe: dict,
            init_adapter: Path | None = None) -> Path:
    """SFT one adapter on ``rows`` (from the base, or continuing ``init_adapter``)."""
    if (done := finished_run(run_dir, recipe)) is not None:
        return done
    model, tokenizer = load_run_base(cfg)
    torch.manual_seed(train.seed)
    if init_adapter is None:
        model = attach_lora(model, cfg.lora, adapter_name="default")
    else:
        model = load_adapters(model, {"default": init_adapter})
        activate(model, ["default"], trainable=["default"])
    collate = SFTCollator(tokenizer, max_length=train.max_length, max_prompt_length=train.max_prompt_length)
    write_recipe(run_dir, recipe)
    return train_adapter(model, "default", rows, collate, make_loss_fn("sft", train), train, run_dir)


def sample_stage1(cfg: ParetoHqDConfig, adapters: dict[str, Path], points: list[list[float]], prompts: list,
                  sample_prefs: list[list[float]]) -> list[dict]:
    """Answers of the stage-1 models (nearest trained direction of each sampling preference), one batched
    generate per chunk with per-row preferences. Cached in ``output_dir/stage2_samples.jsonl``."""
    cache = Path(cfg.output_dir) / "stage2_samples.jsonl"
    if cache.is_file():
        return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    from paretoapp.generate import GenerationSettings, Policy

    peft_model, tokenizer, tensors, blocks = load_stacked(cfg, adapters)
    model = peft_model.unload()
    from accelerate import PartialState
    model.to(PartialState().device).eval()
    n = len(points)
    stage1 = family_from_run(
        cfg, "paretohqd", model, tensors, blocks,
        Gate.anchors(points, [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)], mode="nearest"))
    policy = Policy(stage1, model, tokenizer)
    jobs = [(w, p) for w in sample_prefs for p in prompts for _ in range(cfg.samples_per_prompt)]
    settings = GenerationSettings(max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                                  seed=cfg.train.seed, overflow="truncate_left")
    samples = []
    try:
        for start in range(0, len(jobs), cfg.generation_batch_size):
            chunk = jobs[start:start + cfg.generation_batch_size]
            texts = policy.generate([p for _, p in chunk], [w for w, _ in chunk], settings)
            samples += [{"prompt": p, "response": t, "sampled_at": w} for (w, p), t in zip(chunk, texts)]
    finally:
        policy.bank.detach()
    with atomic_file(cache) as tmp:
        tmp.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return samples


def collapse_report(samples: list[dict]) -> dict:
    """Share of "language collapse" answers (near-empty or repetitive), overall and per sampling preference."""
    from paretoapp.scorers import is_collapsed
    flags = [is_collapsed(s["response"]) for s in samples]
    per: dict[str, list[bool]] = {}
    for s, f in zip(samples, flags):
        per.setdefault(point_label(s["sampled_at"]), []).append(f)
    return {"collapse_rate": float(np.mean(flags)) if flags else 0.0,
            "per_preference": {k: float(np.mean(v)) for k, v in per.items()}, "n": len(flags)}


def default_sample_preferences(k: int) -> list[list[float]]:
    vertices = [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
    return vertices + [[1.0 / k] * k]


def train(cfg: ParetoHqDConfig, scorers: Sequence | None = None) -> Path:
    """Both stages and the family; ``scorers`` (callables, one per objective) override ``cfg.scorers``."""
    start_run(cfg)
    k = len(cfg.objectives)
    if scorers is None:
        scorers = build_objective_scorers(cfg.scorers or [], cfg, k, "ParetoHqD")
    names = scorer_names(scorers)
    points = preference_grid(k, cfg.preferences, cfg.grid_resolution)

    # stage 1: score the data, select per direction, SFT from the base
    rows, held = response_pool(cfg)
    scores = score_responses(scorers, [r["prompt"] for r in rows], [r["response"] for r in rows])
    _, lo, hi = minmax_normalise(scores)
    chosen = select_for_directions(scores, points, cfg.n_per_preference, cfg.n_layers)
    stage1 = {}
    for w, idx in zip(points, chosen):
        selected = [rows[i] for i in idx]
        recipe = {"stage": 1, "base_model": cfg.base_model, "revision": cfg.revision, "lora": to_dict(cfg.lora),
                  "w": w, "scorers": cfg.scorers or names, "rows": recipe_hash(selected),
                  "train": train_recipe(cfg.train)}
        stage1[point_label(w)] = sft_run(cfg, cfg.adapters_path / f"hqd-stage1-{point_label(w)}", selected,
                                         cfg.train, recipe)
    record = {"scorers": cfg.scorers or names, "normalisation": {"lo": lo.tolist(), "hi": hi.tolist()},
              "n_layers": cfg.n_layers, "stage1_selected": {point_label(w): idx for w, idx in zip(points, chosen)},
              "n_responses": len(rows)}
    final = stage1

    if cfg.stage2:
        prompts = fresh_prompts(cfg, held, rows)
        sample_prefs = cfg.stage2_sample_preferences or default_sample_preferences(k)
        samples = on_main_process(lambda: sample_stage1(cfg, stage1, points, prompts, sample_prefs))
        if samples is None:  # other processes read what the main process wrote
            cache = Path(cfg.output_dir) / "stage2_samples.jsonl"
            samples = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
        new_scores = score_responses(scorers, [s["prompt"] for s in samples], [s["response"] for s in samples])
        n2 = cfg.stage2_per_preference or max(1, cfg.n_per_preference // 2)
        chosen2 = select_for_directions(new_scores, points, n2, cfg.n_layers, lo, hi)
        train2 = cfg.stage2_train or cfg.train
        final = {}
        for w, idx in zip(points, chosen2):
            label = point_label(w)
            selected = [{"prompt": samples[i]["prompt"], "response": samples[i]["response"]} for i in idx]
            recipe = {"stage": 2, "init": str(Path(stage1[label]).resolve()), "rows": recipe_hash(selected),
                      "train": train_recipe(train2)}
            final[label] = sft_run(cfg, cfg.adapters_path / f"hqd-stage2-{label}", selected, train2, recipe,
                                   init_adapter=stage1[label])
        record["stage2"] = {"n_prompts": len(prompts), "sample_preferences": sample_prefs, "n_samples": len(samples),
                            "selected": {point_label(w): idx for w, idx in zip(points, chosen2)},
                            **collapse_report(samples)}
        print(f"ParetoHqD stage 2: language collapse rate {record['stage2']['collapse_rate']:.3f} "
              f"over {len(samples)} stage-1 answers")

    on_main_process(lambda: write_anchor_family(
        cfg, "paretohqd", final, points, cfg.gate_mode, training=record,
        description=f"ParetoHqD: one {'two' if cfg.stage2 else 'one'}-stage SFT adapter per preference direction "
                    f"({len(points)}), gate: {cfg.gate_mode}"))
    return cfg.family_path


main = method_main("paretohqd")


if __name__ == "__main__":
    main()
