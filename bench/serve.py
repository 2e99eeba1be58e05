"""Benchmark: `paretoapp serve` on the in-process engine vs on vLLM (one replica), 32 concurrent chats.

    python bench/serve.py --vllm-python ~/.cache/paretoapp/vllm-venv-<hash>/bin/python     # CPU (the venv of
                                                                  # scripts/vllm_check.sh), ~15 min on 2 cores
    python bench/serve.py --vllm-url http://127.0.0.1:8001 --family DIR --device cuda      # GPU: a running vLLM

Both gateways run as `paretoapp serve` processes on the same family (default: the demo's Rewarded Soups
on SmolLM2-135M-Instruct, float32) and get the same load from the official openai client: N chats sent
at once (threads), streamed, greedy, ``--new-tokens`` new tokens each, in two scenarios:

* ``N distinct w``: every chat at its own preference (on vLLM: N adapters);
* ``4 distinct w``: the N chats share 4 preferences (on vLLM: 4 adapters, the common case of presets);
* ``no adapter (base)``: a w where every gain is zero (``--base-w``, 0,0 for the demo), so both answer
  with the bare base: the two engines' own speed, without LoRA.

Each scenario runs once cold (on vLLM the adapters are made and loaded then: their creation time is
reported apart, from the gateway's ``/paretoapp/stats``) and ``--repeats`` times warm, the two backends
interleaved. Printed per backend and scenario: completion tokens per second over the wall time of the
N chats, p50/p95 of the per-chat latency and of the time to first token (medians over the warm repeats),
then the ratios vllm / engine. Without --vllm-url the vLLM gateway starts vLLM itself
(PARETOAPP_VLLM_COMMAND, set from --vllm-python), which also exercises that path.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["How do I bake bread at home?", "Tell me a joke about computers.", "Explain photosynthesis simply.",
           "What should I pack for a hiking trip?", "How can I sleep better?", "Write a haiku about the sea.",
           "Why is the sky blue?", "Give me three tips for learning a language."]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def start_gateway(args, backend: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "paretoapp", "serve", *args.family, "--backend", backend, "--port", str(port)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if backend == "engine" and args.device:
        cmd += ["--device", args.device]
    if backend == "vllm":
        cmd += ["--max-adapters", str(max(args.n, 4) + 4)]
        if args.vllm_url:
            cmd += ["--vllm-url", args.vllm_url]
        else:
            env["PARETOAPP_VLLM_COMMAND"] = f"{args.vllm_python} -m vllm.entrypoints.openai.api_server"
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            cmd += ["--vllm-args", args.vllm_args]
    with open(log, "wb") as out:  # the child keeps its own copy of the file
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the {backend} gateway exited ({process.returncode}); see {log}")
        try:
            get(f"{url}/health")
            return process, url
        except OSError:
            time.sleep(2)
    sys.exit(f"the {backend} gateway did not answer in {args.start_timeout} s; see {log}")


def chat(client, family: str, prompt: str, w: list[float], new_tokens: int) -> tuple[float, float, int]:
    """(latency, time to first token, completion tokens) of one streamed chat."""
    start, first, tokens = time.perf_counter(), None, 0
    stream = client.chat.completions.create(model=family, messages=[{"role": "user", "content": prompt}],
                                            max_tokens=new_tokens, temperature=0, stream=True,
                                            stream_options={"include_usage": True}, extra_body={"w": w})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    latency = time.perf_counter() - start
    return latency, first if first is not None else latency, tokens


def burst(url: str, family: str, ws: list[list[float]], new_tokens: int) -> dict:
    """N chats at once; tokens/s over the wall time, latency and TTFT percentiles."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=1800)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(ws)) as pool:
        results = list(pool.map(lambda i: chat(client, family, PROMPTS[i % len(PROMPTS)], ws[i], new_tokens),
                                range(len(ws))))
    wall = time.perf_counter() - start
    latencies, ttfts, tokens = zip(*results)
    pct = lambda xs, q: statistics.quantiles(xs, n=100, method="inclusive")[q - 1]  # noqa: E731
    return {"wall": wall, "tokens": sum(tokens), "tok_s": sum(tokens) / wall, "p50": pct(latencies, 50),
            "p95": pct(latencies, 95), "ttft50": pct(ttfts, 50), "ttft95": pct(ttfts, 95)}


def scenarios(n: int, base_w: list[float] | None) -> dict[str, list[list[float]]]:
    distinct = [[round(i / (n - 1), 2), round(1 - i / (n - 1), 2)] for i in range(n)]
    presets = [[0.0, 1.0], [0.33, 0.67], [0.67, 0.33], [1.0, 0.0]]
    out = {f"{n} distinct w": distinct, "4 distinct w": [presets[i % 4] for i in range(n)]}
    if base_w is not None:  # every gain zero: the base alone, no adapter on either side (the engines' own speed)
        out["no adapter (base)"] = [base_w] * n
    return out


def row(name: str, r: dict) -> str:
    return (f"{name:<28} {r['tok_s']:8.1f} tok/s  latency p50 {r['p50']:6.2f} s  p95 {r['p95']:6.2f} s  "
            f"TTFT p50 {r['ttft50']:6.2f} s  p95 {r['ttft95']:6.2f} s  ({r['tokens']} tokens in {r['wall']:.1f} s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", action="append", default=None, help="family folder (default: assets/demo-refusal-mix-rewarded-soups)")
    p.add_argument("--n", type=int, default=32, help="concurrent chats")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2, help="warm repeats after the cold one")
    p.add_argument("--threads", type=int, default=1, help="compute threads of the engine's torch (OMP_NUM_THREADS)")
    p.add_argument("--device", default=None, help="engine backend's device (cpu, cuda)")
    p.add_argument("--vllm-url", default=None, help="a running vLLM (else one is started with --vllm-python)")
    p.add_argument("--vllm-python", default=None, help="python of an environment with vLLM (e.g. vllm_check.sh's)")
    p.add_argument("--vllm-args", default="--dtype float32 --max-model-len 2048 --enforce-eager --max-num-seqs 64",
                   help="flags for the vLLM server this starts")
    p.add_argument("--base-w", default="0,0",
                   help="a w at which every gain is zero (the base alone), as a third scenario; 'none' skips it")
    p.add_argument("--start-timeout", type=int, default=900)
    p.add_argument("--logs", type=Path, default=ROOT / "build" / "bench-serve")
    args = p.parse_args()
    args.family = args.family or [str(ROOT / "assets" / "demo-refusal-mix-rewarded-soups")]
    base_w = None if args.base_w == "none" else [float(v) for v in args.base_w.split(",")]
    if not (args.vllm_url or args.vllm_python):
        sys.exit("give --vllm-url URL (a running vLLM) or --vllm-python PATH (an environment with vLLM)")
    args.logs.mkdir(parents=True, exist_ok=True)
    family = json.loads((Path(args.family[0]) / "family.json").read_text())["name"]
    print(f"bench/serve.py: {args.n} concurrent chats, {args.new_tokens} new tokens, greedy, family {family}; "
          f"engine with {args.threads} torch thread(s); {load()}", flush=True)
    gateways = {}
    try:
        for backend in ("engine", "vllm"):
            started = time.perf_counter()
            gateways[backend] = start_gateway(args, backend, args.logs / f"{backend}.log")
            print(f"{backend} gateway up in {time.perf_counter() - started:.0f} s", flush=True)
        results: dict[tuple[str, str], list[dict]] = {}
        for scenario, ws in scenarios(args.n, base_w).items():
            for backend in ("engine", "vllm"):  # cold: on vLLM the adapters are made and loaded now
                url = gateways[backend][1]
                before = get(f"{url}/paretoapp/stats") if backend == "vllm" else {}
                r = burst(url, family, ws, args.new_tokens)
                print(row(f"{backend} {scenario} (cold)", r), flush=True)
                if backend == "vllm":
                    after = get(f"{url}/paretoapp/stats")
                    made = after["adapters_made"] - before["adapters_made"]
                    seconds = after["adapter_seconds"] - before["adapter_seconds"]
                    loads = sum(x["load_seconds"] for x in after["replicas"]) - sum(
                        x["load_seconds"] for x in before["replicas"])
                    print(f"    vllm adapters: {made} made in {seconds:.2f} s ({seconds / max(made, 1) * 1000:.0f} ms "
                          f"each), loaded into vLLM in {loads:.2f} s", flush=True)
            for repeat in range(args.repeats):
                order = ("engine", "vllm") if repeat % 2 == 0 else ("vllm", "engine")
                for backend in order:
                    r = burst(gateways[backend][1], family, ws, args.new_tokens)
                    results.setdefault((backend, scenario), []).append(r)
                    print(row(f"{backend} {scenario} (warm {repeat + 1})", r), flush=True)
        print(f"\nmedians of {args.repeats} warm repeats; {load()}")
        for scenario in scenarios(args.n, base_w):
            med = {b: {k: statistics.median(r[k] for r in results[(b, scenario)]) for k in results[(b, scenario)][0]}
                   for b in ("engine", "vllm")}
            for b in ("engine", "vllm"):
                print(row(f"{b} {scenario}", med[b]))
            print(f"    vllm / engine: {med['vllm']['tok_s'] / med['engine']['tok_s']:.2f}x tokens/s, "
                  f"p50 latency {med['vllm']['p50'] / med['engine']['p50']:.2f}x, "
                  f"p95 {med['vllm']['p95'] / med['engine']['p95']:.2f}x")
    finally:
        for process, _ in gateways.values():
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
