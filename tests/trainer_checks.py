"""Shared checks for the method tests: merged weights of adapters and of families."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from paretoapp.bank import PreferenceBank
from paretoapp.family import Family


def base_state(base_dir: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(base_dir).state_dict().items()}


def adapter_delta(base_dir: Path, adapter_dir: Path) -> dict[str, torch.Tensor]:
    """theta_adapter - theta_0 for every weight, via PEFT's own merge (an independent path)."""
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().state_dict()
    theta0 = base_state(base_dir)
    return {k: merged[k] - theta0[k] for k in theta0}


def family_delta(base_dir: Path, family_dir: Path, w) -> dict[str, torch.Tensor]:
    """theta(w) - theta_0 as the bank materialises it."""
    family = Family.load(family_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    merged = PreferenceBank(model, family).merged_state_dict(w)
    theta0 = base_state(base_dir)
    return {k: merged[k] - theta0[k] for k in theta0}


def assert_deltas_close(got: dict, want: dict, atol: float = 1e-5) -> None:
    assert set(got) == set(want)
    moved = [k for k in want if want[k].abs().max() > 1e-4]
    assert moved, "the expected delta is zero everywhere: the adapters did not train"
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=atol, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")
