"""Resumable checkpoints without pickle: trainable weights, optimizer, scheduler, RNG, position.

A checkpoint folder ``checkpoints/step-000120/`` holds

    trainable.safetensors   every parameter with requires_grad (the adapter being trained)
    optimizer.safetensors   the optimizer's per-parameter tensors (AdamW: step, exp_avg, exp_avg_sq)
    rng.safetensors         torch CPU (and CUDA) generator states
    state.json              step, epoch, batch offset, scheduler state, optimizer hyper-parameters

Everything is safetensors or JSON, so resuming never unpickles a file. It is
written to a temporary folder and renamed; an interrupted save leaves no
checkpoint rather than a broken one. Works for single-process and DDP runs
(every process holds the full state; the main process writes it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from paretoapp.atomic import atomic_folder

PREFIX = "step-"


def _trainable(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _split_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {"param_groups": state_dict["param_groups"], "state": {}}
    for idx, entry in state_dict["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain["state"].setdefault(str(idx), {})[key] = value
    return tensors, plain


def _join_optimizer(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in plain["state"].items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, position: dict, keep: int = 2) -> Path:
    """Write ``run_dir/checkpoints/step-N`` (N = position['step']) and prune old ones."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{position['step']:06d}"
    with atomic_folder(final) as tmp:
        save_file({n: p.detach().to("cpu").contiguous() for n, p in _trainable(model).items()},
                  str(tmp / "trainable.safetensors"))
        opt_tensors, opt_plain = _split_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        save_file(rng, str(tmp / "rng.safetensors"))
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        (tmp / "state.json").write_text(json.dumps(
            {"position": position, "scheduler": sched, "optimizer": opt_plain}, indent=1))
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX):]))


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Restore everything saved by ``save_checkpoint``; returns the saved position."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    weights = load_file(str(path / "trainable.safetensors"))
    params = _trainable(model)
    missing = sorted(set(params) - set(weights))
    if missing or set(weights) - set(params):
        raise RuntimeError(f"{path}: checkpoint does not match this model's trainable parameters "
                           f"(e.g. {missing[:1] or sorted(set(weights) - set(params))[:1]}); "
                           "the run config changed since it was written: use a new output_dir")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device, p.dtype))
    optimizer.load_state_dict(_join_optimizer(load_file(str(path / "optimizer.safetensors")), state["optimizer"]))
    scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return state["position"]
