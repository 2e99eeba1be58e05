"""The preference-gated low-rank bank: y = W0 x + B diag(g(w)) A x.

Each adapted linear layer of a causal LM is replaced by a ``BankLinear`` that
keeps the original weight (same parameter, same state-dict name) and, per
attached family, a stacked ``A`` [R, in] and ``B`` [out, R] with each adapter's
LoRA scaling already folded into B. The per-row gains g [batch, R] are not
stored on the model: they travel in a ``ContextVar`` bound around the forward
or ``generate`` call, so every request, thread or asyncio task carries its own
preference and no request can see another's (see ``use_gains``).

Why a ContextVar: ``generate`` does not pass extra arguments down to linear
layers, and a shared "current merge" would need a lock around every request.
Every answer is decoded by the model's engine (``engine.py``) on its own
thread, which binds each step's gains itself (``use_gains`` around every
forward in ``kvbatch.py``), so no caller's context has to reach that thread.
Code that runs the model directly binds the gains on its own thread
(``with bank.preference(w): model.generate(...)``); a new ``threading.Thread``
starts with an empty context, so the binding goes inside the thread (or the
thread is started with ``contextvars.copy_context().run``).

Several families on the same base share one model in memory: each attaches
its tensors under its own bank id and the request names the bank it uses.
Every layer also keeps the *union* of its banks, stacked along one model-wide
rank axis (``BankLayout``: each bank owns ranks [offset, offset + R) in every
adapted layer, zeros where it does not adapt the layer). Gains bound under the
id ``UNION`` span that axis, so rows of different families, each with zero
gain outside its own family's ranks, share one forward (``engine.py``). The
per-bank tensors are views into the union, so nothing is stored twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .family import Block, Family, FamilyError, model_signature
from .gates import Gate

try:  # GPT-2 style layers store the weight transposed
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover
    Conv1D = ()


@dataclass(frozen=True)
class ActiveGains:
    """What one request carries down to the layers."""
    bank_id: str
    gains: torch.Tensor          # [batch, R] in the model's dtype and device
    start: int = 0               # ranks outside [start, stop) have zero gain for every row:
    stop: int | None = None      # layers skip them


_ACTIVE: contextvars.ContextVar[ActiveGains | None] = contextvars.ContextVar("paretoapp_gains", default=None)
UNION = "*union*"  # ActiveGains.bank_id whose gains span every bank attached to the model (see BankLayout)


@dataclass
class BankLayout:
    """Where each attached bank sits on a model's union rank axis.

    ``lock`` is held while banks are attached or detached and by whoever runs
    the model with ``UNION`` gains (the engine, around each forward), so a
    forward never sees layers of two different layouts. ``version`` changes
    with every attach and detach.
    """
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)  # bank_id -> (offset, rank)
    total: int = 0
    version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def span(self, bank_id: str) -> tuple[int, int]:
        """[start, stop) of ``bank_id`` on the union axis."""
        off, rank = self.offsets[bank_id]
        return off, off + rank


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAYOUTS_LOCK = threading.Lock()


def layout_of(model: nn.Module) -> BankLayout:
    """The model's bank layout (an empty one if no family is attached)."""
    with _LAYOUTS_LOCK:
        layout = _LAYOUTS.get(model)
        if layout is None:
            layout = _LAYOUTS[model] = BankLayout()
        return layout


@contextlib.contextmanager
def use_gains(active: ActiveGains | None):
    """Bind per-row gains for everything run inside the block (this context only)."""
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)


class BankLinear(nn.Module):
    """A linear (or GPT-2 Conv1D) layer plus any number of gated low-rank banks.

    ``weight`` and ``bias`` are the original module's parameters under the
    original names, so ``state_dict`` and ``save_pretrained`` see a plain model.
    The banks are plain tensors kept in a dict of (A [R, in], B [out, R]) views
    into the layer's union (B's storage is transposed, see ``set_layout``).
    """

    def __init__(self, base: nn.Module):
        super().__init__()
        self.transposed = isinstance(base, Conv1D) if Conv1D else False
        if not (isinstance(base, nn.Linear) or self.transposed):
            raise TypeError(f"can only wrap nn.Linear or Conv1D, got {type(base).__name__}")
        self.original = [base]  # a list hides it from nn.Module registration
        self.weight = base.weight
        self.bias = base.bias
        w = base.weight
        self.in_features, self.out_features = (w.shape[0], w.shape[1]) if self.transposed else (w.shape[1], w.shape[0])
        self.banks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # views into ``union``
        self.union: tuple[torch.Tensor, torch.Tensor] = (w.new_zeros(0, self.in_features),
                                                         w.new_zeros(self.out_features, 0))

    def check_bank(self, a: torch.Tensor, b: torch.Tensor) -> None:
        if a.shape[1] != self.in_features or b.shape[0] != self.out_features:
            raise FamilyError(
                f"bank tensors A {tuple(a.shape)} / B {tuple(b.shape)} do not fit a layer with "
                f"{self.in_features} inputs and {self.out_features} outputs: the family was trained for another base model")

    def set_layout(self, layout: BankLayout, new: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        """Rebuild the union for ``layout`` from the banks held now plus ``new`` (bank_id -> A, B)."""
        w = self.weight
        parts = {i: v for i, v in self.banks.items() if i in layout.offsets}
        parts.update({i: (a.to(w.device, w.dtype), b.to(w.device, w.dtype)) for i, (a, b) in (new or {}).items()})
        # B is stored transposed, [R, out]: any rank range of it is then contiguous, as the forward's
        # addmm_ wants it (a column slice of a [out, R] B made the CPU copy it in every layer, every step)
        a_u = w.new_zeros(layout.total, self.in_features)
        bt_u = w.new_zeros(layout.total, self.out_features)
        for bank_id, (a, b) in parts.items():
            s, e = layout.span(bank_id)
            a_u[s:e] = a
            bt_u[s:e] = b.T
        self.union = (a_u, bt_u.T)
        self.banks = {i: (a_u[slice(*layout.span(i))], bt_u[slice(*layout.span(i))].T) for i in parts}

    def base_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            shape = x.shape[:-1] + (self.out_features,)
            return torch.addmm(self.bias, x.reshape(-1, self.in_features), self.weight).view(shape)
        return F.linear(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_forward(x)
        active = _ACTIVE.get()
        if active is None:
            return out
        bank = self.union if active.bank_id == UNION else self.banks.get(active.bank_id)
        if bank is None:
            return out
        a, b = bank
        g = active.gains
        s, e = active.start, active.stop
        if s != 0 or e is not None:
            a, b, g = a[s:e], b[:, s:e], g[:, s:e]
        rows = x.shape[0]
        if g.shape[0] != rows and g.shape[0] != 1:
            if rows % g.shape[0]:
                raise RuntimeError(f"gains for {g.shape[0]} rows cannot serve a batch of {rows}")
            # generate() grew the batch (beam search, num_return_sequences): rows stay grouped
            g = g.repeat_interleave(rows // g.shape[0], dim=0)
        # three kernels: h = x A^T; h *= g (per row, over its positions); W0 x += h B^T in place
        # (autograd-safe: neither matmul's backward needs its own output)
        h = torch.mm(x.reshape(-1, self.in_features), a.t())
        if x.dim() == 3 and g.shape[0] != 1:
            h.view(rows, -1, h.shape[-1]).mul_(g.unsqueeze(1))
        else:
            h.mul_(g)
        out.view(-1, self.out_features).addmm_(h, b.t())
        return out

    def delta(self, bank_id: str, rank_gains: torch.Tensor) -> torch.Tensor:
        """B diag(g) A in at least float32, shaped like ``weight``."""
        a, b = self.banks[bank_id]
        dtype = torch.promote_types(b.dtype, torch.float32)
        d = (b.to(dtype) * rank_gains.to(b.device, dtype)) @ a.to(dtype)
        return d.T if self.transposed else d


def bank_layers(model: nn.Module) -> dict[str, BankLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, BankLinear)}


_ATTACH_LOCK = threading.Lock()


class PreferenceBank:
    """One family attached to one model: turns preferences into gains, merges, detaches."""

    def __init__(self, model: nn.Module, family: Family, bank_id: str | None = None):
        self.model = model
        self.family = family
        self.manifest = family.manifest
        self.bank_id = bank_id or f"{family.manifest.name}-{family.fingerprint()}"
        self.layout = layout_of(model)
        self._check_base(model)
        with _ATTACH_LOCK, self.layout.lock:
            self._attach()
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

    # -------------------------------------------------------------- attaching
    def _check_base(self, model: nn.Module) -> None:
        want = self.manifest.base_model.signature
        have = model_signature(model.config) if hasattr(model, "config") else {}
        diff = {k: (v, have.get(k)) for k, v in want.items() if have.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: family {a!r} vs model {b!r}" for k, (a, b) in diff.items())
            raise FamilyError(
                f"family {self.manifest.name!r} was trained on base {self.manifest.base_model.name_or_path!r} "
                f"and does not fit this model ({detail}); load the family's own base model")

    def _attach(self) -> None:
        modules = dict(self.model.named_modules())
        missing = [m for m in self.family.modules if m not in modules]
        if missing:
            raise FamilyError(
                f"family {self.manifest.name!r} adapts module {missing[0]!r}, which this model does not have "
                f"({len(missing)} missing): the adapters are for another base model")
        tensors = {name: (self.family.tensors[f"{name}.lora_A"], self.family.tensors[f"{name}.lora_B"])
                   for name in self.family.modules}
        wrapped = {}
        for name, (a, b) in tensors.items():
            layer = modules[name]
            wrapped[name] = layer if isinstance(layer, BankLinear) else BankLinear(layer)
            wrapped[name].check_bank(a, b)
        rank = self.manifest.total_rank
        layout = self.layout
        if self.bank_id not in layout.offsets:  # a new bank goes at the end; re-attaching keeps its place
            layout.offsets[self.bank_id] = (layout.total, rank)
            layout.total += rank
        elif layout.offsets[self.bank_id][1] != rank:
            raise FamilyError(f"bank id {self.bank_id!r} is already attached with another rank; detach it first")
        layout.version += 1
        for name, layer in wrapped.items():
            if layer is not modules[name]:
                parent_name, _, child = name.rpartition(".")
                setattr(modules[parent_name] if parent_name else self.model, child, layer)
        for name, layer in bank_layers(self.model).items():
            layer.banks.pop(self.bank_id, None)
            layer.set_layout(layout, {self.bank_id: tensors[name]} if name in tensors else None)

    def detach(self) -> None:
        """Remove this family's tensors; layers with no bank left get their original module back."""
        layout = self.layout
        with _ATTACH_LOCK, layout.lock:
            if self.bank_id in layout.offsets:
                off, rank = layout.offsets.pop(self.bank_id)
                layout.offsets = {i: (o - rank if o > off else o, r) for i, (o, r) in layout.offsets.items()}
                layout.total -= rank
                layout.version += 1
            for name, layer in bank_layers(self.model).items():
                layer.banks.pop(self.bank_id, None)
                if not layer.banks:
                    parent_name, _, child = name.rpartition(".")
                    parent = self.model.get_submodule(parent_name) if parent_name else self.model
                    setattr(parent, child, layer.original[0])
                else:
                    layer.set_layout(layout)

    # ------------------------------------------------------------------ gains
    def rank_gains(self, w) -> torch.Tensor:
        """Validated preferences [batch, k] -> per-rank gains [batch, R] (float64, CPU)."""
        return self.manifest.rank_gains(w)

    def active(self, w) -> ActiveGains:
        """Everything a request needs, built once: gains in the model's dtype and device."""
        g = self.rank_gains(w)
        nz = (g != 0).any(dim=0).nonzero().flatten()
        start, stop = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
        stop = None if stop == g.shape[1] else stop
        return ActiveGains(self.bank_id, g.to(self.device, self.dtype), start, stop)

    def preference(self, w):
        """``with bank.preference(w): model.generate(...)``: rows use their own w."""
        return use_gains(self.active(w))

    # ---------------------------------------------------------------- merging
    def merged_state_dict(self, w: Sequence[float]) -> dict[str, torch.Tensor]:
        """The plain model's state dict with W0 + B diag(g(w)) A written into adapted weights."""
        g = self.rank_gains(w)
        if g.shape[0] != 1:
            raise ValueError("merging needs exactly one preference vector")
        layers = bank_layers(self.model)
        out = dict(self.model.state_dict())
        for name, layer in layers.items():
            if self.bank_id in layer.banks:
                w0 = layer.weight
                delta = layer.delta(self.bank_id, g[0])
                out[f"{name}.weight"] = (w0.to(delta.dtype) + delta).to(w0.dtype)
        return out

    def merged_model(self, w: Sequence[float]) -> nn.Module:
        """A new plain model (no bank) holding the merged weights: for export and baselines."""
        cls = type(self.model)
        with torch.device("meta"):
            plain = cls(self.model.config)
        sd = self.merged_state_dict(w)
        plain.load_state_dict({k: v.clone() for k, v in sd.items()}, assign=True, strict=False)
        plain.tie_weights()
        missing = [n for n, p in plain.named_parameters() if p.is_meta]
        if missing:
            raise RuntimeError(f"merged model is missing weights for {missing[:3]}")
        for name, buf in self.model.named_buffers():
            if "." in name and name.rsplit(".", 1)[0] in bank_layers(self.model):
                continue
            try:
                target = plain.get_buffer(name)
            except AttributeError:
                continue
            if target.is_meta:
                parent_name, _, child = name.rpartition(".")
                parent = plain.get_submodule(parent_name) if parent_name else plain
                parent.register_buffer(child, buf.clone(), persistent=False)
        plain.generation_config = self.model.generation_config
        return plain.eval()


# ---------------------------------------------------------- building a family
def stack_lora_adapters(peft_model: nn.Module, adapter_names: Sequence[str]) -> tuple[dict[str, torch.Tensor], list[Block]]:
    """Stack k PEFT LoRA adapters along the rank axis, scaling folded into B.

    Reads each ``LoraLayer``'s own A, B and ``scaling`` (which already holds
    alpha / r, or alpha / sqrt(r) with rsLoRA, and any rank/alpha pattern). An
    adapter that has a smaller rank in some module, or none there, is padded
    with zeros, so every module has the same total rank and the result is
    exactly sum_i w_i * (B_i A_i * scaling_i).
    """
    from peft.tuners.lora import LoraLayer

    layers = {n: m for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)}
    if not layers:
        raise ValueError("this model has no LoRA layers: pass a PeftModel with the adapters loaded")
    for name in adapter_names:
        if not any(name in m.lora_A for m in layers.values()):
            raise ValueError(f"adapter {name!r} is not loaded in this PeftModel; loaded: {sorted(peft_model.peft_config)}")
        cfg = peft_model.peft_config[name]
        if getattr(cfg, "use_dora", False):
            raise ValueError(f"adapter {name!r} uses DoRA, whose update is not linear in its weight; use plain LoRA")
        if getattr(cfg, "lora_bias", False):
            raise ValueError(f"adapter {name!r} trains a bias (lora_bias), which the bank cannot represent")
    ranks = [max((m.lora_A[n].weight.shape[0] for m in layers.values() if n in m.lora_A), default=0)
             for n in adapter_names]
    tensors: dict[str, torch.Tensor] = {}
    for path, layer in layers.items():
        if not any(n in layer.lora_A for n in adapter_names):
            continue
        if layer.lora_embedding_A and any(n in layer.lora_embedding_A for n in adapter_names):
            raise ValueError(f"{path}: embedding LoRA is not supported by the bank; target linear layers only")
        base = layer.get_base_layer()
        w = base.weight
        transposed = Conv1D and isinstance(base, Conv1D)
        d_in, d_out = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
        a_parts, b_parts = [], []
        dtype = torch.promote_types(w.dtype, torch.float32)  # keep float64 tests exact
        for name, r in zip(adapter_names, ranks):
            a = torch.zeros(r, d_in, dtype=dtype)
            b = torch.zeros(d_out, r, dtype=dtype)
            if name in layer.lora_A:
                la = layer.lora_A[name].weight.detach().to(dtype)
                lb = layer.lora_B[name].weight.detach().to(dtype) * float(layer.scaling[name])
                a[: la.shape[0]] = la
                b[:, : lb.shape[1]] = lb
            a_parts.append(a)
            b_parts.append(b)
        module = _strip_peft_prefix(path)
        tensors[f"{module}.lora_A"] = torch.cat(a_parts, dim=0)
        tensors[f"{module}.lora_B"] = torch.cat(b_parts, dim=1)
    blocks = [Block(name=n, rank=r) for n, r in zip(adapter_names, ranks)]
    return tensors, blocks


def svd_lora_tensors(layers: dict[str, dict[str, torch.Tensor]], k: int) -> tuple[dict[str, torch.Tensor], list[Block], Gate]:
    """Panacea's SVD-LoRA as a bank: W = W0 + c U diag(sigma_1..r, s*w_1..k) V^T.

    ``layers`` maps module name -> {"U": [out, r+k], "V": [in, r+k],
    "sigma": [r], "s": scalar, "scaling": c}. The learned singular values and
    the per-layer scale s are folded into B, so the gains are [1 (r times),
    w_1, ..., w_k]: an affine gate with a constant block and one block per
    objective.
    """
    tensors: dict[str, torch.Tensor] = {}
    r = None
    for module, p in layers.items():
        u, v, sigma = p["U"].float(), p["V"].float(), p["sigma"].float().flatten()
        s, c = float(p["s"]), float(p.get("scaling", 1.0))
        r = sigma.numel()
        if u.shape[1] != r + k or v.shape[1] != r + k:
            raise ValueError(f"{module}: U and V need r + k = {r + k} columns, got {u.shape[1]} and {v.shape[1]}")
        diag = torch.cat([sigma, torch.full((k,), s)])
        tensors[f"{module}.lora_A"] = v.T.contiguous()
        tensors[f"{module}.lora_B"] = (u * diag * c).contiguous()
    blocks = [Block("singular_values", r)] + [Block(f"preference_{i}", 1) for i in range(k)]
    matrix = [[0.0] * k] + [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
    return tensors, blocks, Gate.affine(matrix, [1.0] + [0.0] * k)


def _strip_peft_prefix(path: str) -> str:
    """PEFT's module path -> the plain model's (``base_model.model.`` dropped)."""
    return path.removeprefix("base_model.model.")
