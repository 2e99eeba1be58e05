"""Linear-scalarised DPO (the MORLHF baseline, offline): one adapter per point of a preference grid.

docs/methods.md, "Baselines": MORLHF trains one model per grid point w on the
w-weighted mix of objectives. Its offline form, used here (and as the baseline
in the Panacea and ParetoHqD papers' DPO settings), is DPO with the linearly
scalarised loss::

    L(w) = sum_i w_i L_DPO,i        L_DPO,i: DPO on objective i's pairs, reference theta_0

With ``train.sft_weight`` = lambda > 0 (off by default, the published baseline) each term also
carries RPO's likelihood of its chosen answers: L_DPO,i + lambda * NLL_i, the recipe the demo's
per-objective adapters use, so the baseline is compared on the same recipe.

Each grid point trains its own LoRA adapter from theta_0 (objectives with
w_i = 0 are not even evaluated). The family stacks the adapters; its gate is
an anchors table over the grid: ``gate_mode: nearest`` (default, the baseline
as published: a query w is served by the nearest trained point) or
``interpolate`` (the weighted sum of the two nearest points' deltas).

A step draws ``train.batch_size`` pairs of every objective weighted non-zero, so at one
``train.max_steps`` a point mixing two objectives sees twice the pairs of an end point.
``budget: pairs`` gives every point the same pairs instead: a point with m non-zero
weights trains ``max_steps // m`` steps (the ends ``max_steps``, the k = 2 middle half).

MORLHF proper optimises the scalarised reward with PPO against reward models;
that online RL loop is not implemented here.

    paretoapp train linear_dpo --config ls.yaml
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .cli import method_main
from .config import ConfigError, MethodConfig, TrainConfig, to_dict
from .loop import on_main_process, start_run, train_adapter
from .lora import attach_lora, load_run_base
from .multi_objective import (
    MultiObjectiveCollator,
    dpo_metrics,
    multi_objective_rows,
    per_objective_dpo,
    point_label,
    preference_grid,
    scalarise,
    write_anchor_family,
)
from .objective_adapter import finished_run, run_recipe, write_recipe


@dataclass
class LinearDPOConfig(MethodConfig):
    grid: list[list[float]] | None = None   # explicit preference points; default: simplex grid
    grid_resolution: int = 4                # step 1/resolution (k=2: 5 points)
    gate_mode: str = "nearest"              # or "interpolate"
    budget: str = "steps"                   # "steps": max_steps at every point; "pairs": the same pairs at each

    def check(self) -> None:
        super().check()
        if self.gate_mode not in ("nearest", "interpolate"):
            raise ConfigError(f"gate_mode must be 'nearest' or 'interpolate', got {self.gate_mode!r}")
        if self.budget not in ("steps", "pairs"):
            raise ConfigError(f"budget must be 'steps' or 'pairs', got {self.budget!r}")
        preference_grid(len(self.objectives), self.grid, self.grid_resolution)


def linear_dpo_loss(model, batch: dict, w, names, beta: float, label_smoothing: float = 0.0,
                    sft_weight: float = 0.0):
    """sum_i w_i L_i over the objectives with w_i != 0, L_i = L_DPO,i (+ sft_weight * NLL_i);
    returns (loss, {name: DPOResult})."""
    w = torch.as_tensor(w)  # scalarise casts it to the losses' dtype
    keep = [i for i, v in enumerate(w.tolist()) if v != 0.0]
    results = per_objective_dpo(model, batch, [names[i] for i in keep], beta, label_smoothing,
                                sft_weight=sft_weight)
    losses = torch.stack([r.loss for r in results])
    return scalarise(losses, w[keep], "linear"), dict(zip([names[i] for i in keep], results))


def point_train(cfg: LinearDPOConfig, w: list[float]) -> TrainConfig:
    """The optimisation of point ``w``: ``cfg.train``, its steps (or epochs) divided by the number of
    objectives weighted non-zero under ``budget: pairs`` (the same pairs at every point)."""
    mixed = sum(v != 0.0 for v in w)
    if cfg.budget == "steps" or mixed == 1:
        return cfg.train
    if cfg.train.max_steps is None:
        return replace(cfg.train, epochs=cfg.train.epochs / mixed)
    return replace(cfg.train, max_steps=max(1, cfg.train.max_steps // mixed))


def train_point(cfg: LinearDPOConfig, w: list[float]) -> Path:
    """Train (or reuse) the adapter of one grid point; returns its adapter folder."""
    names = [o.name for o in cfg.objectives]
    run_dir = cfg.adapters_path / f"linear-{point_label(w)}"
    train_cfg = point_train(cfg, w)
    recipe = run_recipe(cfg, train_cfg, w=w, objectives=names, data=[to_dict(o.data) for o in cfg.objectives])
    if (done := finished_run(run_dir, recipe)) is not None:
        return done
    model, tokenizer = load_run_base(cfg)
    torch.manual_seed(cfg.train.seed)
    model = attach_lora(model, cfg.lora, adapter_name="default")
    train_rows, eval_rows = multi_objective_rows(cfg)
    collate = MultiObjectiveCollator(tokenizer, names, cfg.train.max_length, cfg.train.max_prompt_length)

    def loss_fn(m, batch):
        loss, results = linear_dpo_loss(m, batch, w, names, cfg.train.beta, cfg.train.label_smoothing,
                                        cfg.train.sft_weight)
        return loss, {"loss": loss.item(), **dpo_metrics(results.values(), results.keys())}

    write_recipe(run_dir, recipe)
    return train_adapter(model, "default", train_rows, collate, loss_fn, train_cfg, run_dir, eval_rows=eval_rows)


def train(cfg: LinearDPOConfig) -> Path:
    start_run(cfg)
    points = preference_grid(len(cfg.objectives), cfg.grid, cfg.grid_resolution)
    adapters = {point_label(w): train_point(cfg, w) for w in points}
    on_main_process(lambda: write_anchor_family(
        cfg, "linear_dpo", adapters, points, cfg.gate_mode,
        description=f"Linear-scalarised DPO: one LoRA adapter per grid point ({len(points)}), "
                    f"gate: {cfg.gate_mode} trained point"))
    return cfg.family_path


main = method_main("linear_dpo")


if __name__ == "__main__":
    main()
