"""A correctness check for the engine's decoders on a device (run it first on a GPU, before the benchmarks).

    python bench/engine_check.py --device cuda      # CUDA graphs: static decoder vs dynamic, exact in fp32
    python bench/engine_check.py                    # the same on CPU (no graphs)

Two tiny families (k=2 and k=3) on one tiny Llama (fp32, sharpened weights so
greedy decoding is not a coin toss), 16 requests at 16 w, submitted together
through each decoder: ``dynamic``, ``static`` without graphs and ``static``
with CUDA graphs (on CUDA). Every answer must equal the dynamic decoder's
answer for the request alone. Exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from helpers import make_family, peft_with_adapters, tiny_model

    from paretoapp.engine import EngineConfig, set_engine
    from paretoapp.generate import GenerationSettings, Policy
    from paretoapp.models import smollm2_tokenizer_dir

    tok_dir = smollm2_tokenizer_dir()
    plain, tok = tiny_model("llama", tok_dir, seed=5)
    plain.to(args.device)
    policies = []
    for name, k, seed in [("a", 2, 11), ("b", 3, 12)]:
        model, _ = tiny_model("llama", tok_dir, seed=5)
        peft_model, names = peft_with_adapters(model, "llama", k=k, seed=seed)
        policies.append(Policy(make_family(model, peft_model, names, name=name), plain, tok))
    prompts = ["Tell me about cats.", "How do I bake bread?", "Write a poem about the sea.", "Hi",
               "Why is the sky blue?", "List three fruits.", "What is a prime number?", "Say something kind."]
    requests = []
    for i in range(16):
        p = policies[i % 2]
        w = [1 - i / 15, i / 15] if i % 2 == 0 else [i / 15, 0.5 - i / 30, 0.5 - i / 30]
        requests.append((p, prompts[i % 8], w, GenerationSettings(max_new_tokens=4 + i % 5 * 3)))
    configs = {"dynamic": EngineConfig(decoder="dynamic"),
               "static": EngineConfig(decoder="static", graphs=False, max_batch=6, cache_len=80)}
    if args.device.startswith("cuda"):
        configs["static+graphs"] = EngineConfig(decoder="static", graphs=True, max_batch=6, cache_len=80)
    set_engine(plain, configs["dynamic"])
    solo = [p.generate([q], [w], s)[0] for p, q, w, s in requests]
    failed = False
    for name, cfg in configs.items():
        set_engine(plain, cfg)
        got = [None] * len(requests)

        def one(i, p, q, w, s, got=got):
            got[i] = p.generate([q], [w], s)[0]

        threads = [threading.Thread(target=one, args=(i, *r)) for i, r in enumerate(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        same = sum(a == b for a, b in zip(got, solo))
        failed |= same != len(solo)
        print(f"{name:14s} on {args.device}: {same}/{len(solo)} answers equal to the solo answers", flush=True)
    print("engine check: " + ("FAILED" if failed else "all decoders exact"))
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
