"""Panacea (Zhong et al., arXiv 2402.02030, NeurIPS 2024): one SVD-LoRA adapter for the whole front.

Per adapted linear layer (docs/methods.md, "Panacea")::

    W(w) = W0 + c * U diag(sigma_1..sigma_r, s*w_1..s*w_k) V^T

U [out, r+k], V [in, r+k] and the singular values sigma [r] are learned, s is
a learned per-layer scale of the preference block, w is *written in* (never
trained) and c = lora_alpha / r. Init: U, V ~ N(0, 0.02), sigma = 0, s = 0, so
the initial delta is exactly zero (``SVDLoRALinear``).

Training: every batch samples one w (with probability ``vertex_prob`` a vertex
e_i of the simplex, otherwise a Dirichlet(``dirichlet_alpha``) point: the paper
samples the vertices more often than the interior; the choice is logged as
``vertex``), writes it into every layer, computes one DPO loss per objective on
that objective's pairs, and aggregates (selectable, ``aggregation``):

    linear scalarisation:  L = sum_i w_i L_i
    Tchebycheff:           L = max_i w_i (L_i - z_i)     z = ``ideal`` (default 0, the DPO optimum)

Tchebycheff's ideal point z (``ideal``): fixed values (default 0 for every
objective), or ``adaptive``: the running minimum of each objective's training
loss, less ``ideal_margin`` (the "utopia" offset that keeps L_i - z_i > 0).
A fixed z above the reachable loss silently stops training at the vertices: at
w = e_i the loss is max(L_i - z_i, 0) and once L_i < z_i the zero terms win and
the batch has no gradient. ``TchebycheffMonitor`` counts such batches (metric
``clamped``) and, when a vertex was clamped on every one of its batches of an
epoch, logs a warning and a ``tchebycheff_clamped`` record in metrics.jsonl.

The DPO reference of every objective is the base (all SVD-LoRA layers off).
One adapter serves any k (the paper goes to 10 objectives).

At the end the layers are converted to the bank (``paretoapp.bank.svd_lora_tensors``):
sigma and s are folded into B, the gains are [1 (r times), w_1..w_k].

Where this follows the note rather than the paper's text: the method section of
the paper could not be read; the layer, the init and both aggregations are as
docs/methods.md states them (which draws on the abstract and third-party code;
no official code was released). The vertex/interior sampling ratio is a knob.

    paretoapp train panacea --config panacea.yaml
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from paretoapp.atomic import atomic_folder
from paretoapp.bank import svd_lora_tensors

from .cli import method_main
from .config import ConfigError, MethodConfig, to_dict
from .family_io import family_from_run, save_family
from .loop import on_main_process, start_run, train_adapter
from .lora import load_run_base
from .multi_objective import (
    AGGREGATIONS,
    MultiObjectiveCollator,
    dpo_metrics,
    multi_objective_rows,
    per_objective_dpo,
    scalarise,
)
from .objective_adapter import finished_run, run_recipe, write_recipe

try:
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover
    Conv1D = ()

WEIGHTS_FILE = "svd_lora.safetensors"
META_FILE = "svd_lora.json"
ADAPTIVE = "adaptive"
log = logging.getLogger(__name__)


@dataclass
class PanaceaConfig(MethodConfig):
    aggregation: str = "linear"          # "linear" or "tchebycheff"
    ideal: list[float] | str | None = None  # Tchebycheff z_i: one value per objective (default 0), or "adaptive"
    ideal_margin: float = 0.01           # adaptive z_i = running min of L_i - ideal_margin
    vertex_prob: float = 0.5             # share of batches trained at a vertex e_i of the simplex
    dirichlet_alpha: float = 1.0         # interior points ~ Dirichlet(alpha * 1): 1 is uniform on the simplex
    init_std: float = 0.02               # U, V ~ N(0, init_std)

    def check(self) -> None:
        super().check()
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if isinstance(self.ideal, str) and self.ideal != ADAPTIVE:
            raise ConfigError(f"ideal must be a list (one value per objective) or {ADAPTIVE!r}, got {self.ideal!r}")
        if isinstance(self.ideal, list) and len(self.ideal) != len(self.objectives):
            raise ConfigError(f"ideal needs one value per objective ({len(self.objectives)}), got {self.ideal}")
        if self.ideal_margin < 0:
            raise ConfigError(f"ideal_margin must be >= 0, got {self.ideal_margin}")
        if not 0.0 <= self.vertex_prob <= 1.0 or self.dirichlet_alpha <= 0:
            raise ConfigError("need 0 <= vertex_prob <= 1 and dirichlet_alpha > 0")


# --------------------------------------------------------------------------- the SVD-LoRA layer
class SVDLoRALinear(nn.Module):
    """``y = W0 x + c * U diag(sigma, s*w) V^T x`` around a frozen linear (or GPT-2 Conv1D) layer.

    ``w`` is a buffer written per batch (``set_preference``): shape [k] for the
    whole batch or [batch, k] for one preference per row.
    """

    def __init__(self, base: nn.Module, r: int, k: int, scaling: float, init_std: float = 0.02):
        super().__init__()
        transposed = bool(Conv1D) and isinstance(base, Conv1D)
        if not (isinstance(base, nn.Linear) or transposed):
            raise TypeError(f"SVD-LoRA wraps nn.Linear or Conv1D layers, got {type(base).__name__}")
        wt = base.weight
        d_in, d_out = (wt.shape[0], wt.shape[1]) if transposed else (wt.shape[1], wt.shape[0])
        self.base_layer = base
        self.r, self.k, self.scaling = r, k, float(scaling)
        dtype = torch.promote_types(wt.dtype, torch.float32)
        self.U = nn.Parameter(torch.randn(d_out, r + k, dtype=dtype, device=wt.device) * init_std)
        self.V = nn.Parameter(torch.randn(d_in, r + k, dtype=dtype, device=wt.device) * init_std)
        self.sigma = nn.Parameter(torch.zeros(r, dtype=dtype, device=wt.device))
        self.s = nn.Parameter(torch.zeros((), dtype=dtype, device=wt.device))
        self.register_buffer("w", torch.full((k,), 1.0 / k, dtype=dtype, device=wt.device), persistent=False)
        self.enabled = True

    def diag(self) -> torch.Tensor:
        """[r+k] (one w) or [batch, r+k] (per-row w): the learned and the preference singular values."""
        w = self.w.to(self.sigma.dtype)
        if w.dim() == 1:
            return torch.cat([self.sigma, self.s * w])
        return torch.cat([self.sigma.expand(w.shape[0], -1), self.s * w], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if not self.enabled:
            return out
        d = self.diag()
        if d.dim() == 2 and x.dim() == 3:
            d = d.unsqueeze(1)
        xs = x.to(self.V.dtype)
        delta = F.linear(F.linear(xs, self.V.T) * d, self.U) * self.scaling
        return out + delta.to(out.dtype)

    def delta_weight(self) -> torch.Tensor:
        """c U diag V^T [out, in] at the current (single) w."""
        return (self.U * self.diag()) @ self.V.T * self.scaling


def svd_layers(model: nn.Module) -> dict[str, SVDLoRALinear]:
    return {n: m for n, m in getattr(model, "module", model).named_modules() if isinstance(m, SVDLoRALinear)}


def inject_svd_lora(model: nn.Module, target_modules, r: int, k: int, alpha: float,
                    init_std: float = 0.02) -> dict[str, SVDLoRALinear]:
    """Replace every targeted linear layer by an ``SVDLoRALinear``; freezes everything else."""
    model.requires_grad_(False)
    targets = {target_modules} if isinstance(target_modules, str) else set(target_modules)
    names = [n for n, m in model.named_modules()
             if n.rsplit(".", 1)[-1] in targets and (isinstance(m, nn.Linear) or (Conv1D and isinstance(m, Conv1D)))]
    if not names:
        raise ConfigError(f"no linear layer of the base model is named one of {sorted(targets)}; "
                          "set lora.target_modules to the model's layer names (e.g. q_proj, v_proj)")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, SVDLoRALinear(getattr(parent, child), r, k, alpha / r, init_std))
    return svd_layers(model)


def set_preference(model: nn.Module, w) -> None:
    """Write preference(s) w ([k] or [batch, k]) into every SVD-LoRA layer."""
    for layer in svd_layers(model).values():
        layer.w = torch.as_tensor(w, dtype=layer.w.dtype, device=layer.U.device)


@contextlib.contextmanager
def svd_disabled(model: nn.Module):
    """The DPO reference: every SVD-LoRA layer off (the frozen base)."""
    layers = list(svd_layers(model).values())
    for layer in layers:
        layer.enabled = False
    try:
        yield
    finally:
        for layer in layers:
            layer.enabled = True


svd_disabled.cache_key = "frozen base"  # losses.ReferenceCache: the same log-probs as lora.reference


def save_svd_lora(model: nn.Module, path: Path, meta: dict) -> Path:
    """Write the layers' U, V, sigma, s (safetensors) and their shape (JSON) atomically."""
    path = Path(path)
    with atomic_folder(path) as tmp:
        tensors = {}
        for name, layer in svd_layers(model).items():
            for key in ("U", "V", "sigma", "s"):
                tensors[f"{name}.{key}"] = getattr(layer, key).detach().to("cpu", torch.float32).contiguous()
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    return path


def load_svd_lora(path: Path) -> tuple[dict[str, dict], dict]:
    """The saved adapter as ``{module: {"U", "V", "sigma", "s", "scaling"}}`` (svd_lora_tensors' input)."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{path}: no {WEIGHTS_FILE}; pass the 'adapter' folder of a Panacea run")
    meta = json.loads((path / META_FILE).read_text())
    tensors = load_file(str(path / WEIGHTS_FILE))
    layers: dict[str, dict] = {}
    for key, t in tensors.items():
        module, _, part = key.rpartition(".")
        layers.setdefault(module, {"scaling": meta["scaling"]})[part] = t
    return layers, meta


# --------------------------------------------------------------------------- training
def sample_preference(k: int, vertex_prob: float, dirichlet_alpha: float) -> tuple[torch.Tensor, bool]:
    """One w on the simplex: a vertex with probability ``vertex_prob``, else Dirichlet.

    Uses torch's global generator, which checkpoints save and restore, so a
    resumed run draws the same preferences.
    """
    if torch.rand(()) < vertex_prob:
        w = torch.zeros(k)
        w[torch.randint(k, ())] = 1.0
        return w, True
    return torch.distributions.Dirichlet(torch.full((k,), float(dirichlet_alpha))).sample(), False


def panacea_loss(model, batch: dict, w: torch.Tensor, names, beta: float, aggregation: str = "linear",
                 ideal=None, label_smoothing: float = 0.0, sft_weight: float = 0.0):
    """Write w into the layers, DPO per objective (reference: layers off), aggregate.

    ``sft_weight`` > 0 (``train.sft_weight``; 0, the paper's loss, by default) makes each objective's loss
    DPO + sft_weight * NLL of its chosen answers (RPO), so the aggregation weighs both terms by w_i.

    ``ideal``: Tchebycheff's z (one value per objective), or a function of the
    batch's per-objective losses that returns it (the adaptive ideal point).
    Returns (loss, per-objective DPOResults).
    """
    set_preference(model, w)
    results = per_objective_dpo(model, batch, names, beta, label_smoothing, reference_context=svd_disabled,
                                sft_weight=sft_weight)
    losses = torch.stack([r.loss for r in results])
    z = ideal(losses) if callable(ideal) else ideal
    return scalarise(losses, w, aggregation, z), results


def is_clamped(w: Sequence[float], losses: Sequence[float], ideal: Sequence[float] | None) -> bool:
    """Whether Tchebycheff's max is taken by a zero-weight objective's 0 term: the batch has no gradient.

    That happens when some w_j = 0 and every weighted objective is below its ideal (L_i < z_i).
    """
    w = [float(v) for v in w]
    z = [0.0] * len(w) if ideal is None else [float(v) for v in ideal]
    active = [wi * (float(li) - zi) for wi, li, zi in zip(w, losses, z) if wi > 0]
    return min(w) == 0.0 and bool(active) and max(active) < 0.0


class TchebycheffMonitor:
    """The ideal point z of a Tchebycheff run (fixed or adaptive), and the vertices whose term is clamped.

    ``ideal(losses, training)`` gives z for a batch: the fixed values, or (adaptive)
    the running minimum of each objective's training loss, current batch included,
    less ``margin``. ``observe`` counts the training batches at each vertex e_i and
    the clamped ones; ``on_epoch_end`` warns about, and returns a metrics record
    for, every vertex clamped on all its batches of the epoch. The running minimum
    starts afresh when a run resumes, and each process keeps its own.
    """

    def __init__(self, names: Sequence[str], ideal=None, margin: float = 0.01):
        self.names = list(names)
        self.adaptive = ideal == ADAPTIVE
        self.fixed = None if self.adaptive or ideal is None else [float(v) for v in ideal]
        self.margin = float(margin)
        self.running_min: list[float] | None = None
        self.last: list[float] | None = self.fixed
        self._reset()

    def _reset(self) -> None:
        self.seen = [0] * len(self.names)
        self.clamped = [0] * len(self.names)

    def ideal(self, losses: torch.Tensor, training: bool = True) -> list[float] | None:
        if self.adaptive:
            current = [float(v) for v in losses.detach()]
            if training:
                prev = self.running_min or current
                self.running_min = [min(a, b) for a, b in zip(prev, current)]
            self.last = [m - self.margin for m in (self.running_min or current)]
        return self.last

    def observe(self, w: Sequence[float], losses: Sequence[float]) -> bool:
        """Record one training batch; returns whether it was clamped (no gradient)."""
        clamped = is_clamped(w, losses, self.last)
        vertex = [i for i, v in enumerate(w) if float(v) == 1.0]
        if len(vertex) == 1 and sum(float(v) for v in w) == 1.0:
            self.seen[vertex[0]] += 1
            self.clamped[vertex[0]] += int(clamped)
        return clamped

    def on_epoch_end(self, epoch: int) -> list[dict]:
        records = []
        for i, name in enumerate(self.names):
            if self.seen[i] and self.clamped[i] == self.seen[i]:
                z = 0.0 if self.last is None else self.last[i]
                log.warning("Panacea Tchebycheff: at the vertex %r every batch of epoch %d (%d) had L < z = %.4g, "
                            "so the loss was clamped to 0 and gave no gradient; lower 'ideal' or use "
                            "ideal: adaptive", name, epoch, self.seen[i], z)
                records.append({"event": "tchebycheff_clamped", "objective": name, "batches": self.seen[i],
                                "ideal": z})
        self._reset()
        return records


class PanaceaLoss:
    """The training loss: a fresh w per batch, ``panacea_loss``, and the Tchebycheff monitor."""

    def __init__(self, cfg: PanaceaConfig, names: Sequence[str]):
        self.cfg, self.names = cfg, list(names)
        self.monitor = TchebycheffMonitor(names, cfg.ideal, cfg.ideal_margin) \
            if cfg.aggregation == "tchebycheff" else None

    def __call__(self, model, batch):
        cfg, names = self.cfg, self.names
        w, vertex = sample_preference(len(names), cfg.vertex_prob, cfg.dirichlet_alpha)
        training = getattr(model, "training", True)
        ideal = (lambda losses: self.monitor.ideal(losses, training)) if self.monitor else cfg.ideal
        loss, results = panacea_loss(model, batch, w, names, cfg.train.beta, cfg.aggregation, ideal,
                                     cfg.train.label_smoothing, cfg.train.sft_weight)
        metrics = {"loss": loss.item(), "vertex": float(vertex), **{f"w_{n}": float(v) for n, v in zip(names, w)},
                   **dpo_metrics(results, names)}
        if self.monitor is not None:
            losses = [r.loss.item() for r in results]
            clamped = self.monitor.observe(w, losses) if training else is_clamped(w, losses, self.monitor.last)
            metrics["clamped"] = float(clamped)
            if self.monitor.adaptive:
                metrics.update({f"ideal_{n}": z for n, z in zip(names, self.monitor.last)})
        return loss, metrics

    def on_epoch_end(self, epoch: int) -> list[dict]:
        return self.monitor.on_epoch_end(epoch) if self.monitor else []


def make_loss_fn(cfg: PanaceaConfig, names):
    return PanaceaLoss(cfg, names)


def _meta(cfg: PanaceaConfig, names) -> dict:
    return {"r": cfg.lora.r, "k": len(names), "alpha": cfg.lora.alpha, "scaling": cfg.lora.alpha / cfg.lora.r,
            "objectives": list(names), "target_modules": cfg.lora.target_modules}


def train_svd_adapter(cfg: PanaceaConfig) -> Path:
    """Train (or reuse) the SVD-LoRA adapter; returns ``{output_dir}/panacea/adapter``."""
    names = [o.name for o in cfg.objectives]
    run_dir = Path(cfg.output_dir) / "panacea"
    if cfg.lora.use_rslora:
        raise ConfigError("Panacea's SVD-LoRA uses c = alpha / r; set lora.use_rslora: false")
    recipe = run_recipe(cfg, aggregation=cfg.aggregation, ideal=cfg.ideal, vertex_prob=cfg.vertex_prob,
                        **({"ideal_margin": cfg.ideal_margin} if cfg.ideal == ADAPTIVE else {}),
                        dirichlet_alpha=cfg.dirichlet_alpha, init_std=cfg.init_std,
                        data=[to_dict(o.data) for o in cfg.objectives])
    if (done := finished_run(run_dir, recipe)) is not None:
        return done
    model, tokenizer = load_run_base(cfg)
    torch.manual_seed(cfg.train.seed)
    inject_svd_lora(model, cfg.lora.target_modules, cfg.lora.r, len(names), cfg.lora.alpha, cfg.init_std)
    train_rows, eval_rows = multi_objective_rows(cfg)
    collate = MultiObjectiveCollator(tokenizer, names, cfg.train.max_length, cfg.train.max_prompt_length)
    write_recipe(run_dir, recipe)
    meta = _meta(cfg, names)
    return train_adapter(model, "panacea", train_rows, collate, make_loss_fn(cfg, names), cfg.train, run_dir,
                         eval_rows=eval_rows, save_fn=lambda m, p: save_svd_lora(m, p, meta))


def write_panacea_family(cfg: PanaceaConfig, adapter_dir: Path) -> Path:
    layers, meta = load_svd_lora(adapter_dir)
    k = meta["k"]
    tensors, blocks, gate = svd_lora_tensors(layers, k)
    model, _ = load_run_base(cfg)
    family = family_from_run(
        cfg, "panacea", model, tensors, blocks, gate,
        training={"adapter": str(Path(adapter_dir).resolve()), **meta, "aggregation": cfg.aggregation,
                  **({"ideal": cfg.ideal} if cfg.aggregation == "tchebycheff" else {})},
        w_low=[0.0] * k, w_high=[1.0] * k, in_sample_low=[0.0] * k, in_sample_high=[1.0] * k, on_simplex=True,
        description=f"Panacea: one SVD-LoRA (r={meta['r']}) with a preference block s*w, "
                    f"{cfg.aggregation} aggregation of per-objective DPO losses")
    return save_family(cfg, family)


def train(cfg: PanaceaConfig) -> Path:
    start_run(cfg)
    adapter = train_svd_adapter(cfg)
    on_main_process(lambda: write_panacea_family(cfg, adapter))
    return cfg.family_path


main = method_main("panacea")


if __name__ == "__main__":
    main()
