"""Benchmark: transformers' own continuous batching (a persistent ``ContinuousBatchingManager``) vs the engine.

    python bench/cb_manager.py                         # SmolLM2 (real weights), CPU, 8 prompts x 32 tokens
    python bench/cb_manager.py --config qwen2-0.5b --device cuda --dtype bf16 --n 32 --new-tokens 64

Why: the engine was meant to build on the field's engine where it serves. The
manager (paged attention, its own scheduler and background thread) packs all
requests' tokens into one flat sequence per step, so per-row gains would have
to become per-*token* gains mapped from its internal batch layout (not public
API). First question: is it faster here at all? Variants, interleaved, greedy,
the same N prompts at N different w:

* ``cb_manager``: one persistent manager (made, started and warmed up before
  timing) on a plain copy of the base model (no bank: its best case);
* ``engine_plain``: the engine on the base model with no gains (like for like);
* ``engine_bank``: the engine with every row at its own w (what the app runs);
* ``hf_generate``: one left-padded batched ``generate`` on the plain model.

Printed: each variant's wall time and tokens/s, the answers' agreement with
``hf_generate`` (plain variants), and the ratio cb_manager / engine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import add_common_args, load_model, machine_line, preferences, random_family, setup, sync

PROMPTS = ["How do I bake bread at home?", "Tell me a joke about computers.", "Explain photosynthesis simply.",
           "What should I pack for a hiking trip?", "How can I sleep better?", "Write a haiku about the sea.",
           "Why is the sky blue?", "Give me three tips for learning a language.", "What is a prime number?",
           "How do vaccines work?", "Suggest a name for a cat.", "What causes tides?"]


def main() -> None:
    ap = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), repeats=3)
    ap.add_argument("--n", type=int, default=8, help="prompts (requests)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--num-blocks", type=int, default=None, help="manager's cache blocks (default: its own choice)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.n, args.new_tokens = 1, 4, 8
    setup(args)
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    from paretoapp.engine import Row, engine_for
    from paretoapp.generate import GenerationSettings, Policy

    model, tok = load_model(args.config, args.device, args.dtype, args.seed)
    plain, _ = load_model(args.config, args.device, args.dtype, args.seed)  # the manager switches its attention
    policy = Policy(random_family(model, k=2, r=8, seed=args.seed), model, tok)
    settings = GenerationSettings(max_new_tokens=args.new_tokens)
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" ({i})") for i in range(args.n)]
    ws = preferences(args.n, 2, seed=args.seed).tolist()
    bank_rows = policy.rows(prompts, ws, settings)
    plain_rows = [Row(ids=r.ids, max_new_tokens=r.max_new_tokens, eos=r.eos) for r in bank_rows]
    ids = [r.ids for r in bank_rows]

    gen_cfg = GenerationConfig(max_new_tokens=args.new_tokens, do_sample=False, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id)
    manager = plain.init_continuous_batching(generation_config=gen_cfg, continuous_batching_config=(
        ContinuousBatchingConfig(num_blocks=args.num_blocks) if args.num_blocks else None))
    manager.start()

    def cb() -> list[list[int]]:
        rids = manager.add_requests(ids, max_new_tokens=args.new_tokens)
        got = {}
        while len(got) < len(rids):
            out = manager.get_result(timeout=600)
            if out is None:
                raise RuntimeError("the manager stopped before answering")
            got[out.request_id] = out
        return [[t for t in got[i].generated_tokens if t != tok.eos_token_id] for i in rids]

    def hf() -> list[list[int]]:
        width = max(map(len, ids))
        x = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in ids], device=args.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids], device=args.device)
        with torch.inference_mode():
            out = plain.generate(input_ids=x, attention_mask=mask, generation_config=gen_cfg)
        return [[t for t in row if t not in (tok.eos_token_id, tok.pad_token_id)] for row in out[:, width:].tolist()]

    engine = engine_for(model)
    variants = {
        "cb_manager": cb,
        "engine_plain": lambda: engine.submit(plain_rows).result(),
        "engine_bank": lambda: engine.submit(bank_rows).result(),
        "hf_generate": hf,
    }
    print(f"{args.config}; {machine_line(args)}; {args.n} prompts x {args.new_tokens} new tokens, greedy; "
          f"manager attention {plain.config._attn_implementation}", flush=True)
    outs = {name: fn() for name, fn in variants.items()}  # warm-up
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for rep in range(args.repeats):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            sync(args.device)
            t0 = time.perf_counter()
            outs[name] = variants[name]()
            sync(args.device)
            times[name].append(time.perf_counter() - t0)
        print(f"  repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    manager.stop(block=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = outs["hf_generate"]
    for name in names:
        tokens = sum(map(len, outs[name]))
        agree = sum(a == b for a, b in zip(outs[name], ref))
        print(f"{name:13s} median {med[name]:7.2f} s ({tokens / med[name]:7.1f} tok/s); "
              f"answers equal to hf_generate {agree}/{len(ref)}" + (" (own w per row)" if name == "engine_bank" else ""))
    print(f"ratio cb_manager / engine_plain: {med['cb_manager'] / med['engine_plain']:.2f}x; "
          f"cb_manager / engine_bank: {med['cb_manager'] / med['engine_bank']:.2f}x (above 1: the engine is faster)")


if __name__ == "__main__":
    main()
