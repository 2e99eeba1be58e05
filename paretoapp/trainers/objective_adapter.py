"""Train one LoRA adapter on one objective's data (DPO or SFT) from the frozen base.

This is the building block every weight-space method shares: Rewarded Soups'
per-objective models, Preference Vector's +/- runs and PEO's phase 1 are all
"DPO on objective i from theta_0". A run lives in

    {adapters_dir}/{objective}-{loss}[-neg]/     (see loop.py for its contents)

and a finished run is reused rather than retrained, as long as it was made
with the same base, LoRA shape, optimisation and data (``run.json`` records
them; a mismatch is an error rather than a silent reuse). Point several
methods' ``adapters_dir`` at one folder and the phase-1 adapters are trained
once.

Run alone to train the adapters of every objective in a config:

    python -m paretoapp.trainers.objective_adapter --config cfg.yaml [--set loss=sft] [--set negatives=true]
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .cli import parse_cli
from .config import ConfigError, MethodConfig, ObjectiveSpec, TrainConfig, save_config, to_dict
from .data import PreferenceCollator, SFTCollator, train_eval_pairs
from .loop import is_finished, train_adapter
from .lora import attach_lora, load_run_base, reference
from .losses import chosen_nll_per_token, dpo_batch_loss, dpo_loss, policy_and_reference_logps, sft_loss

LOSSES = ("dpo", "sft")
# settings that do not change the trained weights, left out of the reuse check
_COSMETIC = {"progress", "log_every", "eval_every", "save_every", "keep_checkpoints"}


def run_dir_for(cfg: MethodConfig, objective: str, loss: str = "dpo", negative: bool = False) -> Path:
    return cfg.adapters_path / f"{objective}-{loss}{'-neg' if negative else ''}"


def train_recipe(train: TrainConfig) -> dict:
    """The optimisation settings that change the trained weights (logging and checkpointing left out)."""
    return {k: v for k, v in to_dict(train).items() if k not in _COSMETIC}


def run_recipe(cfg: MethodConfig, train: TrainConfig | None = None, **fields) -> dict:
    """What makes a run's weights: base, dtype, LoRA shape, optimisation, and the method's own ``fields``."""
    return {"base_model": cfg.base_model, "revision": cfg.revision, "dtype": cfg.dtype, "lora": to_dict(cfg.lora),
            **fields, "train": train_recipe(train or cfg.train)}


def finished_run(run_dir: Path, recipe: dict) -> Path | None:
    """The adapter of a finished run made with ``recipe`` (reused, not retrained), else None.

    A run started with other settings is an error (``check_recipe``), never silently reused.
    """
    check_recipe(run_dir, recipe)
    return run_dir / "adapter" if is_finished(run_dir) else None


def check_recipe(run_dir: Path, recipe: dict) -> None:
    """Refuse to reuse or resume ``run_dir`` if it was started with other settings."""
    recipe_file = run_dir / "run.json"
    if recipe_file.is_file():
        saved = json.loads(recipe_file.read_text())
        want = json.loads(json.dumps(recipe))
        # a run saved before a TrainConfig field existed was made with that field's default
        defaults, saved_train = to_dict(TrainConfig()), saved.get("train")
        if isinstance(saved_train, dict) and isinstance(want.get("train"), dict):
            for k, v in want["train"].items():
                if k not in saved_train and k in defaults and defaults[k] == v:
                    saved_train[k] = v
        if saved != want:
            changed = sorted(k for k in set(want) | set(saved) if saved.get(k) != want.get(k))
            raise ConfigError(f"{run_dir} holds a run made with different settings ({', '.join(changed)}); "
                              "delete that folder or set another adapters_dir/output_dir")


def write_recipe(run_dir: Path, recipe: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(recipe, indent=1))


def make_loss_fn(loss: str, train: TrainConfig, reference_context=reference):
    """``loss_fn(model, batch) -> (loss, metrics)`` for the loop."""
    if loss == "dpo" and train.sft_weight:
        def dpo_nll(model, batch):  # DPO + sft_weight * mean NLL per token of the chosen answers (RPO)
            chosen, rejected, ref_chosen, ref_rejected = policy_and_reference_logps(model, batch, reference_context)
            result = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=train.beta,
                              label_smoothing=train.label_smoothing)
            nll = chosen_nll_per_token(chosen, batch)
            total = result.loss + train.sft_weight * nll
            return total, {**result.metrics(), "loss": total.item(), "dpo_loss": result.loss.item(),
                           "chosen_nll": nll.item()}
        return dpo_nll
    if loss == "dpo":
        def dpo(model, batch):
            result = dpo_batch_loss(model, batch, beta=train.beta, label_smoothing=train.label_smoothing,
                                    reference_context=reference_context)
            return result.loss, result.metrics()
        return dpo
    if loss == "sft":
        def sft(model, batch):
            value = sft_loss(model, batch)
            return value, {"loss": value.item()}
        return sft
    raise ConfigError(f"unknown loss {loss!r}; expected one of {LOSSES}")


def train_objective_adapter(cfg: MethodConfig, objective: ObjectiveSpec, loss: str = "dpo",
                            negative: bool = False, train: TrainConfig | None = None) -> Path:
    """Train (or reuse) the adapter for one objective; returns its adapter folder.

    ``negative`` swaps chosen and rejected (Preference Vector's opposite run).
    A pre-trained adapter given in the config (``adapter`` / ``neg_adapter``)
    is returned as is.
    """
    given = objective.neg_adapter if negative else objective.adapter
    if given:
        return Path(given)
    if objective.data is None:
        raise ConfigError(f"objective {objective.name!r}: no data to train the {'negative ' if negative else ''}"
                          "adapter from; give data or a trained adapter folder")
    train = train or cfg.train
    data = dataclasses.replace(objective.data, objective=objective.data.objective or objective.name,
                               swap=objective.data.swap != negative)
    run_dir = run_dir_for(cfg, objective.name, loss, negative)
    recipe = run_recipe(cfg, train, loss=loss, data=to_dict(data))
    check_recipe(run_dir, recipe)
    if is_finished(run_dir):
        return run_dir / "adapter"

    model, tokenizer = load_run_base(cfg)
    torch.manual_seed(train.seed)  # the adapter's initial A depends on it: same seed, same run
    model = attach_lora(model, cfg.lora, adapter_name="default")
    train_rows, eval_rows = train_eval_pairs(data, seed=train.seed)
    collator_cls = PreferenceCollator if loss == "dpo" else SFTCollator
    collate = collator_cls(tokenizer, max_length=train.max_length, max_prompt_length=train.max_prompt_length)
    write_recipe(run_dir, recipe)
    return train_adapter(model, "default", train_rows, collate, make_loss_fn(loss, train), train, run_dir,
                         eval_rows=eval_rows)


@dataclass
class AdaptersConfig(MethodConfig):
    """Train every objective's adapter (and optionally its opposite) and stop."""
    loss: str = "dpo"
    negatives: bool = False


def main(argv: list[str] | None = None) -> list[Path]:
    cfg = parse_cli(AdaptersConfig, argv, description=__doc__.split("\n")[0])
    cfg.adapters_path.mkdir(parents=True, exist_ok=True)
    save_config(cfg, cfg.adapters_path / "adapters-config.yaml")
    out = []
    for objective in cfg.objectives:
        out.append(train_objective_adapter(cfg, objective, cfg.loss))
        if cfg.negatives:
            out.append(train_objective_adapter(cfg, objective, cfg.loss, negative=True))
    for path in out:
        print(path)
    return out


if __name__ == "__main__":
    main()
