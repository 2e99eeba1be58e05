"""Pieces the multi-objective trainers share (Panacea, linear DPO, UPO, ParetoHqD, RiC).

* Multi-objective batches: each training row holds one pair *per objective*
  (objective i's pairs cycled to the longest list), so one optimizer step sees
  every objective and a loss can weigh the per-objective DPO losses
  (``MultiObjectiveCollator``, ``per_objective_dpo``).
* Scalarisation of per-objective losses (docs/methods.md, Panacea):
  linear ``sum_i w_i L_i`` and Tchebycheff ``max_i w_i (L_i - z_i)``.
* Scoring responses with ``paretoapp.scorers`` scorers, oriented so that larger
  is better for every objective.
* Preference grids and the "one adapter per trained preference" family
  (anchors gate, nearest or interpolated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from paretoapp.gates import Gate

from .config import ConfigError, MethodConfig
from .data import PreferenceCollator, hh_to_messages, train_eval_pairs
from .family_io import write_family
from .lora import reference
from .losses import DPOResult, chosen_nll_per_token, dpo_loss, reference_logprobs, sequence_logprobs

AGGREGATIONS = ("linear", "tchebycheff")
Scorer = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


# --------------------------------------------------------------------------- data
def objective_pairs(cfg: MethodConfig, seed: int | None = None) -> dict[str, tuple[list[dict], list[dict]]]:
    """objective name -> (train pairs, eval pairs) for every objective that has data."""
    seed = cfg.train.seed if seed is None else seed
    out = {}
    for o in cfg.objectives:
        if o.data is None:
            raise ConfigError(f"objective {o.name!r} has no data; this method trains on every objective's pairs")
        spec = dataclasses.replace(o.data, objective=o.data.objective or o.name)
        out[o.name] = train_eval_pairs(spec, seed=seed)
    return out


def zip_objectives(per_objective: dict[str, list[dict]]) -> list[dict[str, dict]]:
    """Rows ``{objective: pair}``: objective i's pairs cycled to the length of the longest list."""
    if not per_objective or any(not v for v in per_objective.values()):
        return []
    n = max(len(v) for v in per_objective.values())
    return [{name: pairs[j % len(pairs)] for name, pairs in per_objective.items()} for j in range(n)]


def multi_objective_rows(cfg: MethodConfig) -> tuple[list[dict], list[dict]]:
    pairs = objective_pairs(cfg)
    return (zip_objectives({k: v[0] for k, v in pairs.items()}),
            zip_objectives({k: v[1] for k, v in pairs.items()}))


@dataclasses.dataclass
class MultiObjectiveCollator:
    """Rows ``{objective: pair}`` -> ``{objective: PreferenceCollator batch}``."""
    tokenizer: object
    names: list[str]
    max_length: int | None = None
    max_prompt_length: int | None = None

    def __post_init__(self):
        self.inner = PreferenceCollator(self.tokenizer, self.max_length, self.max_prompt_length)

    def __call__(self, rows: list[dict]) -> dict:
        return {name: self.inner([r[name] for r in rows]) for name in self.names}


def per_objective_dpo(model, batch: dict, names: Sequence[str], beta: float, label_smoothing: float = 0.0,
                      reference_context=reference, sft_weight: float = 0.0) -> list[DPOResult]:
    """DPO on each objective's sub-batch (policy and reference forwards per objective).

    With ``sft_weight`` > 0 each objective's loss is DPO + sft_weight * NLL per token of its chosen answers
    (RPO, ``TrainConfig.sft_weight``), so a scalarised sum weighs both terms by w_i."""
    out = []
    for name in names:
        sub = batch[name]
        logps = sequence_logprobs(model, sub)
        ref = reference_logprobs(model, sub, reference_context)
        chosen, rejected = logps.chunk(2)
        result = dpo_loss(chosen, rejected, *ref.chunk(2), beta=beta, label_smoothing=label_smoothing)
        if sft_weight:
            result = dataclasses.replace(result, loss=result.loss + sft_weight * chosen_nll_per_token(chosen, sub))
        out.append(result)
    return out


def scalarise(losses: torch.Tensor, w: torch.Tensor, aggregation: str = "linear",
              ideal: Sequence[float] | None = None) -> torch.Tensor:
    """Per-objective losses [k] and a preference [k] -> one loss.

    linear:      sum_i w_i L_i
    tchebycheff: max_i w_i (L_i - z_i), z the ideal (best reachable) losses (default 0).
    """
    w = w.to(losses)
    if aggregation == "linear":
        return (w * losses).sum()
    if aggregation == "tchebycheff":
        z = torch.zeros_like(losses) if ideal is None else torch.as_tensor(list(ideal), dtype=losses.dtype,
                                                                                device=losses.device)
        return (w * (losses - z)).max()
    raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def dpo_metrics(results: Sequence[DPOResult], names: Sequence[str]) -> dict[str, float]:
    out = {}
    for name, r in zip(names, results):
        out.update({f"{name}/{k}": v for k, v in r.metrics().items()})
    return out


# --------------------------------------------------------------------------- scoring
def last_user_text(prompt) -> str:
    """A data prompt as plain text for scorers: itself, or the last user message of a chat."""
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def prompt_messages(prompt) -> list[dict]:
    """A data prompt as chat messages: a copy of a chat, an HH transcript split into turns, else one user turn."""
    if isinstance(prompt, list):
        return [dict(m) for m in prompt]
    if prompt.startswith("\n\nHuman:"):
        cut = prompt.rfind("\n\nAssistant:")
        return hh_to_messages(prompt[:cut] if cut > 0 else prompt)
    return [{"role": "user", "content": prompt}]


def build_objective_scorers(specs: Sequence[str], cfg: MethodConfig, k: int, what: str) -> list:
    """Scorers from ``paretoapp.scorers`` names; the base model is loaded for them only when one needs it
    (its registry entry says ``needs_lm``, e.g. ``relevance``)."""
    from paretoapp.scorers import ScorerContext, build_scorers, needs_lm

    if len(specs) != k:
        raise ConfigError(f"{what} needs {k} scorer(s) (one per objective) in 'scorers:', got {list(specs)}; "
                          "e.g. [ray-helpful, ray-harmless], or offline [helpful_offline, harmless_offline]")
    ctx = ScorerContext(model_id=cfg.base_model, system_prompt=cfg.system_prompt, show_progress=cfg.train.progress)
    if needs_lm(specs):
        from .lora import load_run_base
        ctx.causal_lm, ctx.tokenizer = load_run_base(cfg)
    return build_scorers(list(specs), ctx)


def score_responses(scorers: Sequence[Scorer], prompts: Sequence, responses: Sequence[str],
                    oriented: bool = True) -> np.ndarray:
    """[n, k] scores of (prompt, response) rows; lower-is-better scorers negated when ``oriented``."""
    texts = [last_user_text(p) for p in prompts]
    cols = []
    for s in scorers:
        v = np.asarray(s(texts, list(responses)), dtype=np.float64).reshape(-1)
        if v.shape[0] != len(texts):
            raise RuntimeError(f"scorer {getattr(s, 'name', s)!r} returned {v.shape[0]} scores for {len(texts)} rows")
        sign = -1.0 if oriented and not getattr(s, "higher_is_better", True) else 1.0
        cols.append(sign * v)
    return np.stack(cols, axis=1) if cols else np.zeros((len(texts), 0))


def scorer_names(scorers: Sequence) -> list[str]:
    return [getattr(s, "name", getattr(s, "__name__", repr(s))) for s in scorers]


# --------------------------------------------------------------------------- grids and families
def preference_grid(k: int, points: list[list[float]] | None = None, resolution: int = 4) -> list[list[float]]:
    """Explicit ``points`` (checked) or every simplex point with step 1/resolution."""
    if points:
        grid = [[float(v) for v in p] for p in points]
        if any(len(p) != k for p in grid):
            raise ConfigError(f"every preference point needs {k} values (one per objective), got {points}")
        if any(min(p) < 0 or abs(sum(p) - 1.0) > 1e-6 for p in grid):
            raise ConfigError(f"preference points must lie on the simplex (non-negative, sum 1), got {points}")
        return grid
    if resolution < 1:
        raise ConfigError(f"grid_resolution must be at least 1, got {resolution}")
    from paretoapp.evaluate import simplex_grid
    return [[round(float(v), 9) for v in row] for row in simplex_grid(k, resolution)]


def point_label(w: Sequence[float]) -> str:
    """A folder- and module-safe name for a preference point, in percent: ``w25-75``, ``w33p33-66p67``."""
    return "w" + "-".join(format(round(100 * v, 2), "g").replace(".", "p") for v in w)


def recipe_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def write_anchor_family(cfg: MethodConfig, method: str, adapters: dict[str, Path], points: list[list[float]],
                        mode: str = "nearest", training: dict | None = None, description: str = "") -> Path:
    """One block per trained preference point; the gate gives gain 1 to the nearest point's block
    (``nearest``) or splits it linearly between the two nearest (``interpolate``)."""
    n = len(points)
    gains = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    k = len(points[0])
    return write_family(cfg, method, adapters, Gate.anchors(points, gains, mode=mode),
                        training={"points": points, "gate_mode": mode, **(training or {})},
                        w_low=[0.0] * k, w_high=[1.0] * k, in_sample_low=[0.0] * k, in_sample_high=[1.0] * k,
                        on_simplex=True, description=description)
