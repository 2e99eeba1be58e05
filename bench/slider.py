"""Benchmark 1, slider cost: preference change -> model ready to generate.

    python bench/slider.py                    # SmolLM2-135M, k=2 r=8 and k=4 r=16, CPU, 1 thread
    python bench/slider.py --quick            # fewer repeats
    python bench/slider.py --config qwen2-0.5b --device cuda --dtype bf16

Variants, interleaved in every repeat (median of --repeats), for each (k, r):

* ``bank``: what a request does with the preference-gated bank: build its
  per-row gains (``PreferenceBank.active``) and bind them (``preference(w)``
  context). No weight is touched.
* ``peft_cat``: PEFT's exact static mix: ``add_weighted_adapter(...,
  combination_type="cat")`` into a new adapter, ``set_adapter`` to it, and
  ``delete_adapter`` of the previous mix (a slider that did not delete would
  grow memory without bound).
* ``peft_set_scale``: all k adapters active, ``set_scale(name, w_i)`` on every
  LoRA layer (fast, but shared mutable state: two users cannot hold two w).
* ``rewrite_weights``: write W = W0 + B diag(g(w)) A into every adapted
  weight in place (what a merged-model server does per preference change).

The goal (issue 6) is bank >= 100x faster than the cat re-merge; the last
line prints that ratio for the larger bank.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from common import (
    add_common_args,
    family_from_peft,
    fmt_s,
    interleaved,
    load_model,
    machine_line,
    peft_model_with_adapters,
    setup,
)


def bench_one(model, k: int, r: int, args) -> dict[str, float]:
    from peft.tuners.lora import LoraLayer

    from paretoapp.bank import PreferenceBank, bank_layers

    peft_cat, names = peft_model_with_adapters(model, k, r, seed=args.seed)
    family = family_from_peft(model, peft_cat, names, name=f"slider-k{k}-r{r}")
    peft_scale, _ = peft_model_with_adapters(model, k, r, seed=args.seed)
    peft_scale.base_model.set_adapter(names)  # all k active at once
    lora_layers = [m for m in peft_scale.modules() if isinstance(m, LoraLayer)]

    bank_model = _fresh_copy(model)
    bank = PreferenceBank(bank_model, family)
    layers = list(bank_layers(bank_model).values())
    # the rewrite variant writes into copies of the adapted weights, leaving the bank model intact
    rewrite = [(layer.weight.detach().clone(), layer.weight.detach().clone(), *layer.banks[bank.bank_id])
               for layer in layers]
    ranks = torch.tensor([b.rank for b in family.manifest.blocks])

    ws = itertools.cycle([[0.2 + 0.6 * i / 9] + [(0.8 - 0.6 * i / 9) / (k - 1)] * (k - 1) for i in range(10)])
    state = {"mix": None, "n": 0}

    def bank_move():
        with bank.preference([next(ws)]):
            pass

    def cat_move():
        w = next(ws)
        state["n"] += 1
        new = f"mix{state['n']}"
        peft_cat.add_weighted_adapter(names, w, new, combination_type="cat")
        peft_cat.set_adapter(new)
        if state["mix"] is not None:
            peft_cat.delete_adapter(state["mix"])
        state["mix"] = new

    def set_scale_move():
        w = next(ws)
        for layer in lora_layers:
            for name, wi in zip(names, w):
                layer.set_scale(name, wi)

    def rewrite_move():
        w = next(ws)
        g = torch.tensor(w, dtype=torch.float64).repeat_interleave(ranks).to(model.device, model.dtype)
        for weight, w0, a, b in rewrite:
            torch.addmm(w0, b * g, a, out=weight)

    fast = interleaved({"bank": bank_move}, args.repeats, warmup=20, device=args.device, inner=500,
                       label=f"k={k} r={r} ", verbose=False)
    slow = interleaved({"peft_cat": cat_move, "peft_set_scale": set_scale_move, "rewrite_weights": rewrite_move},
                       args.repeats, warmup=2, device=args.device, label=f"k={k} r={r} ")
    # the bank again after the slow ones, so drift over the run cannot flatter it
    fast2 = interleaved({"bank": bank_move}, args.repeats, warmup=20, device=args.device, inner=500, verbose=False)
    out = {"bank": max(fast["bank"], fast2["bank"]), **slow}
    return out


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.0f}x"


def _fresh_copy(model):
    import copy
    return copy.deepcopy(model)


def main() -> None:
    ap = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), repeats=7)
    ap.add_argument("--sizes", default="2x8,4x16", help="comma-separated k x r banks")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 3
    setup(args)
    model, _ = load_model(args.config, args.device, args.dtype, args.seed)
    n_layers = sum(1 for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in
                   ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
    print(f"slider cost on {args.config} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, "
          f"{n_layers} adapted layers); {machine_line(args)}; median of {args.repeats} repeats", flush=True)
    results = {}
    for size in args.sizes.split(","):
        k, r = (int(v) for v in size.lower().split("x"))
        res = bench_one(model, k, r, args)
        results[(k, r)] = res
        b = res["bank"]
        print(f"k={k} r={r}: bank {fmt_s(b)} | peft_cat {fmt_s(res['peft_cat'])} ({_x(res['peft_cat'] / b)}) | "
              f"peft_set_scale {fmt_s(res['peft_set_scale'])} ({_x(res['peft_set_scale'] / b)}) | "
              f"rewrite_weights {fmt_s(res['rewrite_weights'])} ({_x(res['rewrite_weights'] / b)})", flush=True)
    worst = min(res["peft_cat"] / res["bank"] for res in results.values())
    print(f"ratio peft cat re-merge / bank slider move (smallest over sizes): {worst:,.0f}x (goal >= 100x)")


if __name__ == "__main__":
    main()
