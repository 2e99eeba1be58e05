"""An experimental BankLinear forward with fewer kernels, for ``decode.py --fused``.

``paretoapp/bank.py`` computes ``out + F.linear(F.linear(x, A) * g, B)``: four
extra ops per adapted layer (A matmul, gain multiply, B matmul, add), each a
separate kernel launch on a GPU and a separate dispatch on a CPU. This one does
three, the last fused with the add, in place on the base output:

    h = x2 @ A^T            (mm)
    h *= g                  (mul_, per-row gains broadcast over positions)
    out2 += h @ B^T         (addmm_, writes into W0 x's buffer)

It is installed per layer and switched with a flag, so ``decode.py`` can
interleave it with the library's forward on the same model. If it measures
better it is a candidate for ``bank.py`` (inference only: the in-place add
on W0 x is safe there because F.linear's backward does not need its output).
"""

from __future__ import annotations

import contextlib
import types

import torch

from paretoapp import bank as bank_mod

_ENABLED = {"on": False}


@contextlib.contextmanager
def fused():
    _ENABLED["on"] = True
    try:
        yield
    finally:
        _ENABLED["on"] = False


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    if not _ENABLED["on"]:
        return type(self).forward(self, x)
    out = self.base_forward(x)
    active = bank_mod._ACTIVE.get()
    if active is None:
        return out
    bank = self.banks.get(active.bank_id)
    if bank is None:
        return out
    a, b = bank
    g = active.gains
    s, e = active.start, active.stop
    if s != 0 or e is not None:
        a, b, g = a[s:e], b[:, s:e], g[:, s:e]
    rows = x.shape[0]
    if g.shape[0] != rows and g.shape[0] != 1:
        g = g.repeat_interleave(rows // g.shape[0], dim=0)
    h = torch.mm(x.reshape(-1, self.in_features), a.t())
    if g.shape[0] == 1 or h.shape[0] == rows:
        h.mul_(g)
    else:
        h.view(rows, -1, h.shape[-1]).mul_(g.unsqueeze(1))
    out.view(-1, self.out_features).addmm_(h, b.t())
    return out


def install(model) -> int:
    """Give every BankLinear of ``model`` the switchable forward; returns how many."""
    layers = bank_mod.bank_layers(model)
    for layer in layers.values():
        layer.forward = types.MethodType(_forward, layer)
    return len(layers)
