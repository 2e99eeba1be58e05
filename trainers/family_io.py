"""Trained adapters -> a Family on disk (``paretoapp/family.py`` format).

Every weight-space method ends the same way: load its adapters onto the base,
stack them along the rank axis (``paretoapp.bank.stack_lora_adapters``, LoRA
scaling folded into B) and write a manifest whose gate says how a preference
w turns into per-adapter gains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paretoapp.bank import stack_lora_adapters
from paretoapp.family import BaseModelRef, Family, FamilyManifest, Objective, model_signature
from paretoapp.gates import Gate

from .config import MethodConfig, to_dict
from .lora import load_adapters, load_base


def base_ref(cfg: MethodConfig, model) -> BaseModelRef:
    name = cfg.base_model
    if Path(name).expanduser().is_dir():  # a local folder: store it absolute so the family loads from anywhere
        name = str(Path(name).expanduser().resolve())
    return BaseModelRef(name_or_path=name, revision=cfg.revision, signature=model_signature(model.config))


def load_stacked(cfg: MethodConfig, adapters: dict[str, str | Path]):
    """(base model, peft model, tensors, blocks) for adapters given as block name -> folder."""
    base, tokenizer = load_base(cfg.base_model, cfg.revision, cfg.dtype, cfg.trust_remote_code)
    peft_model = load_adapters(base, adapters)
    tensors, blocks = stack_lora_adapters(peft_model, list(adapters))
    return peft_model, tokenizer, tensors, blocks


def write_family(cfg: MethodConfig, method: str, adapters: dict[str, str | Path], gate: Gate,
                 training: dict[str, Any] | None = None, **manifest_fields) -> Path:
    """Stack ``adapters`` (block name -> adapter folder, in block order) and save the family.

    ``manifest_fields`` go to ``FamilyManifest`` (w_low/w_high, in_sample_*, on_simplex, ...).
    Returns the family folder.
    """
    peft_model, _, tensors, blocks = load_stacked(cfg, adapters)
    base_model = peft_model.get_base_model()
    manifest = FamilyManifest(
        name=cfg.name, method=method, base_model=base_ref(cfg, base_model),
        objectives=[Objective(o.name, o.higher_is_better) for o in cfg.objectives],
        blocks=blocks, gate=gate, system_prompt=cfg.system_prompt,
        prompt_format=manifest_fields.pop("prompt_format", cfg.prompt_format),
        training={"config": to_dict(cfg), "adapters": {k: str(Path(v).resolve()) for k, v in adapters.items()},
                  **(training or {})},
        **manifest_fields)
    family = Family(manifest, tensors)
    return family.save(cfg.family_path, overwrite=cfg.overwrite)
