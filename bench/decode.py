"""Benchmark 2, per-token overhead: decoding with the bank (unmerged) vs a plain merged model.

    python bench/decode.py                    # SmolLM2-135M, batch 1 and 16, k=2 r=8 and k=4 r=16, CPU, 1 thread
    python bench/decode.py --quick
    python bench/decode.py --config qwen2-0.5b --device cuda --dtype bf16   # eager; bench/engine.py: CUDA graphs

Two ways to time a decoded token (prompts of --prompt-len random token ids,
no padding, KV cache on):

* ``--method steps`` (default): one decode step (the model's forward for one
  new token per row on a KV cache of --prompt-len + --context tokens, cropped
  back after every step so all steps cost the same), the variants alternating
  step by step, --repeats times. Each ratio is taken between steps timed a few
  milliseconds apart, then its median: on a shared machine this is far more
  stable than timing whole ``generate`` calls seconds apart.
* ``--method generate``: end-to-end ``generate`` (greedy): (time for N+1 new
  tokens - time for 1) / N, so prefill is excluded; ``min_new_tokens`` forces
  the length. Includes the sampling loop's own per-token cost, same for all.

Variants, interleaved (median of per-repeat ratios):

* ``merged``: a plain model holding W0 + B diag(g(w)) A (what export writes);
* ``bank``: the base model with the preference-gated bank, every row with its
  *own* w (the per-row path, the one the app serves; 3 extra kernels per
  adapted layer: mm, in-place gain, addmm_ into W0 x);
* ``peft``: PEFT LoRA with all k adapters active and ``set_scale`` weights
  (informative: the usual unmerged multi-adapter baseline).

Goal (issue 6): bank <= 1.3x the merged model's time per token on CPU,
<= 1.15x on GPU. The floor at batch 1 (memory-bound) is the extra bytes the
adapters add to every token's weight reads: printed as ``adapter bytes``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch
from common import (
    add_common_args,
    family_from_peft,
    fmt_s,
    load_model,
    machine_line,
    peft_model_with_adapters,
    preferences,
    setup,
    timed,
)


def decode_variants(model, k: int, r: int, batch: int, args):
    """{name: (model, context factory)} for one bank size; builds the merged and PEFT copies."""

    from paretoapp.bank import PreferenceBank

    peft_model, names = peft_model_with_adapters(model, k, r, seed=args.seed)
    family = family_from_peft(model, peft_model, names, name=f"decode-k{k}-r{r}")
    ws = preferences(batch, k, seed=args.seed)
    bank = PreferenceBank(model, family)
    merged = bank.merged_model(ws[0].tolist()).to(args.device)
    variants = {
        "merged": (merged, contextlib.nullcontext),
        "bank": (model, lambda: bank.preference(ws)),
    }
    if not args.no_peft:
        from peft.tuners.lora import LoraLayer
        peft_model.base_model.set_adapter(names)
        for layer in peft_model.modules():
            if isinstance(layer, LoraLayer):
                for name, wi in zip(names, ws[0].tolist()):
                    layer.set_scale(name, wi)
        variants["peft"] = (peft_model, contextlib.nullcontext)
    else:
        del peft_model
    adapter_bytes = sum(t.numel() for t in family.tensors.values())
    base_bytes = sum(p.numel() for n, p in model.named_parameters())
    return variants, bank, adapter_bytes / base_bytes


def run_size(model, k: int, r: int, batch: int, args) -> dict[str, float]:
    variants, bank, extra = decode_variants(model, k, r, batch, args)
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, 49152, (batch, args.prompt_len), generator=g).to(args.device)
    mask = torch.ones_like(ids)
    n = args.new_tokens

    def make(m, ctx, tokens):
        kw = dict(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=tokens, min_new_tokens=tokens,
                  pad_token_id=2, temperature=None, top_p=None, top_k=None)

        def call():
            with torch.inference_mode(), ctx():
                return m.generate(**kw)
        return call

    calls = {name: (make(m, ctx, n + 1), make(m, ctx, 1)) for name, (m, ctx) in variants.items()}
    # same greedy tokens as the merged model on row 0 (the row whose w it holds): a sanity check, not timed
    outs = {name: long()[0, ids.shape[1]:] for name, (long, _) in calls.items()}
    agree = {name: (o == outs["merged"]).float().mean().item() for name, o in outs.items()}
    if args.method == "steps":
        per_rep = single_steps(variants, ids, args)
    else:
        per_rep = decode_steps(calls, n, args)
    per_tok = {name: statistics.median(v) for name, v in per_rep.items()}
    # the ratio inside each repeat (variants timed back to back), then its median: robust to drift
    ratio = {name: statistics.median(a / b for a, b in zip(v, per_rep["merged"])) for name, v in per_rep.items()}
    line = ", ".join(f"{name} {fmt_s(t)}/step ({batch / t:.1f} tok/s, {ratio[name]:.3f}x, "
                     f"row-0 tokens same as merged {agree[name]:.0%})" for name, t in per_tok.items())
    print(f"batch {batch:2d}, k={k} r={r} (adapter bytes +{extra:.1%}): {line}", flush=True)
    bank.detach()
    del variants
    return ratio


def single_steps(variants, ids, args) -> dict[str, list[float]]:
    """Seconds of one decode step per variant, the variants alternating step by step."""
    from transformers import DynamicCache

    steps = {}
    for name, (m, ctx) in variants.items():
        with torch.inference_mode(), ctx():
            cache = DynamicCache(config=m.config)
            m(input_ids=ids, past_key_values=cache, use_cache=True)
            filler = ids[:, : args.context] if args.context else None
            if filler is not None and filler.shape[1]:
                m(input_ids=filler, past_key_values=cache, use_cache=True)
        length = cache.get_seq_length()
        token = ids[:, -1:]
        mask = torch.ones(ids.shape[0], length + 1, dtype=ids.dtype, device=ids.device)

        def step(m=m, ctx=ctx, cache=cache, length=length, mask=mask, token=token):
            with torch.inference_mode(), ctx():
                m(input_ids=token, attention_mask=mask, past_key_values=cache, use_cache=True)
            cache.crop(-1)  # back to `length` tokens: every step costs the same
        steps[name] = step
    names = list(steps)
    for _ in range(3):
        for name in names:
            steps[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.repeats):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            out[name].append(timed(steps[name], args.device))
        if args.verbose and (rep + 1) % 20 == 0:
            print(f"  step {rep + 1}/{args.repeats}: " + ", ".join(f"{k} {fmt_s(v[-1])}" for k, v in out.items()),
                  flush=True)
    return out


def decode_steps(calls, n: int, args) -> dict[str, list[float]]:
    """Seconds per decode step of every variant in every repeat: (t(n+1 tokens) - t(1 token)) / n."""
    names = list(calls)
    for long, short in calls.values():  # warm-up
        long(), short()
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.repeats):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            long, short = calls[name]
            t_short = timed(short, args.device)
            t_long = timed(long, args.device)
            out[name].append(max(t_long - t_short, 1e-9) / n)
        if args.verbose:
            print(f"  repeat {rep + 1}/{args.repeats}: " + ", ".join(f"{k} {fmt_s(v[-1])}/step" for k, v in out.items()),
                  flush=True)
    return out


def main() -> None:
    ap = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), repeats=None)
    ap.add_argument("--method", choices=["steps", "generate"], default="steps")
    ap.add_argument("--context", type=int, default=32, help="steps: extra cached tokens beyond the prompt")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--sizes", default="2x8,4x16", help="comma-separated k x r banks")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--no-peft", action="store_true", help="skip the informative PEFT unmerged variant")
    ap.add_argument("--verbose", action="store_true", help="print every repeat")
    args = ap.parse_args()
    if args.repeats is None:
        args.repeats = 60 if args.method == "steps" else 5
    if args.quick:
        args.repeats, args.new_tokens, args.sizes = (20 if args.method == "steps" else 3), 16, "2x8"
    setup(args)
    model, _ = load_model(args.config, args.device, args.dtype, args.seed)
    how = (f"single decode steps on a {args.prompt_len + args.context}-token KV cache, {args.repeats} alternating "
           f"steps per variant" if args.method == "steps" else
           f"generate, {args.new_tokens} timed new tokens after a {args.prompt_len}-token prompt, {args.repeats} repeats")
    print(f"decode on {args.config}; {machine_line(args)}; {how}; median of per-repeat ratios", flush=True)
    ratios = {}
    for batch in (int(b) for b in args.batches.split(",")):
        for size in args.sizes.split(","):
            k, r = (int(v) for v in size.lower().split("x"))
            ratio = run_size(model, k, r, batch, args)
            ratios[(batch, k, r)] = ratio["bank"]
    goal = 1.3 if args.device == "cpu" else 1.15
    summary = ", ".join(f"b{b} k{k}r{r} {v:.3f}x" for (b, k, r), v in ratios.items())
    print(f"ratio bank / merged time per token (median of per-repeat ratios): {summary}; worst {max(ratios.values()):.3f}x (goal <= {goal}x)")


if __name__ == "__main__":
    main()
