"""Trained runs -> a Family on disk (``paretoapp/family.py`` format).

Every method ends the same way: a manifest that records the run's config, the
base model, the objectives and a gate that says how a preference w turns into
per-block gains, around stacked low-rank tensors. ``family_from_run`` fills in
what comes from the run's config (the one place that does), ``write_family``
does the common case: stack LoRA adapters along the rank axis
(``paretoapp.bank.stack_lora_adapters``, LoRA scaling folded into B) and save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paretoapp.bank import stack_lora_adapters
from paretoapp.family import BaseModelRef, Block, Family, Objective, make_family
from paretoapp.gates import Gate

from .config import MethodConfig, to_dict
from .lora import load_adapters, load_run_base


def base_ref(cfg: MethodConfig, model) -> BaseModelRef:
    name = cfg.base_model
    if Path(name).expanduser().is_dir():  # a local folder: store it absolute so the family loads from anywhere
        name = str(Path(name).expanduser().resolve())
    return BaseModelRef.of(model, name, cfg.revision)


def load_stacked(cfg: MethodConfig, adapters: dict[str, str | Path]):
    """(peft model, tokenizer, tensors, blocks) for adapters given as block name -> folder."""
    base, tokenizer = load_run_base(cfg)
    peft_model = load_adapters(base, adapters)
    tensors, blocks = stack_lora_adapters(peft_model, list(adapters))
    return peft_model, tokenizer, tensors, blocks


def family_from_run(cfg: MethodConfig, method: str, model, tensors: dict, blocks: list[Block], gate: Gate,
                    training: dict[str, Any] | None = None, **manifest_fields) -> Family:
    """A family whose name, base, objectives, prompt format and training record come from ``cfg``.

    ``manifest_fields`` go to ``FamilyManifest`` (w_low/w_high, in_sample_*, on_simplex, description, ...).
    """
    return make_family(
        name=cfg.name, method=method, base_model=base_ref(cfg, model),
        objectives=[Objective(o.name, o.higher_is_better) for o in cfg.objectives],
        tensors=tensors, blocks=blocks, gate=gate, system_prompt=cfg.system_prompt,
        prompt_format=manifest_fields.pop("prompt_format", cfg.prompt_format),
        training={"config": to_dict(cfg), **(training or {})}, **manifest_fields)


def save_family(cfg: MethodConfig, family: Family) -> Path:
    return family.save(cfg.family_path, overwrite=cfg.overwrite)


def write_family(cfg: MethodConfig, method: str, adapters: dict[str, str | Path], gate: Gate,
                 training: dict[str, Any] | None = None, **manifest_fields) -> Path:
    """Stack ``adapters`` (block name -> adapter folder, in block order) and save the family; returns its folder."""
    peft_model, _, tensors, blocks = load_stacked(cfg, adapters)
    training = {"adapters": {k: str(Path(v).resolve()) for k, v in adapters.items()}, **(training or {})}
    family = family_from_run(cfg, method, peft_model.get_base_model(), tensors, blocks, gate, training,
                             **manifest_fields)
    return save_family(cfg, family)
