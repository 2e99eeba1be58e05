"""Soak the app: many concurrent sessions for a while, over HTTP on the loopback address.

    python tests/soak.py                                   # 32 sessions x 120 s (the full run)
    python tests/soak.py --sessions 8 --seconds 20         # what tests/test_soak.py runs
    python tests/soak.py --family assets/demo-refusal-mix-rewarded-soups --max-new-tokens 32

Starts ``paretoapp app`` in a subprocess (one torch thread, no demo assets; by
default on the tiny stand-in family, so it runs offline in seconds), then every
session, a ``gradio_client.Client`` of its own, loops over a mix of what users
do: chat at a preference it sets, side by side, ``/generate``, an over-long
prompt, a bad w and a chat it cancels. Every good request must be answered and
every bad one must get its one-line message; anything else is an unexpected
error. The server's resident memory is sampled every second and reported when
it is ready, half way through the run, at the end and at its peak, with a
timeline: a leak shows as growth that does not level off. (Gradio keeps some
state per session, and glibc's allocator keeps freed memory in per-thread
pools; ``MALLOC_ARENA_MAX=2`` in the server's environment keeps those small.)

Prints one JSON summary; exits 1 on an unexpected error or an unanswered request.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CONTROLS = 6
LONG = "Tell me everything about the sea and the ships on it. " * 2000  # far past any context
EXPECTED = {
    "long_prompt": re.compile(r"the prompt has (at least )?\d+ tokens but at most \d+ fit .*shorten it"),
    "long_chat": re.compile(r"the prompt has (at least )?\d+ tokens but at most \d+ fit .*shorten it"),
    "bad_w": re.compile(r"(is not a list of numbers|outside this family's allowed range|NaN or infinity|"
                        r"values but this family has)"),
}
CLIENT_TIMEOUT_S = 120.0
PROMPTS = ["Tell me a story.", "What is the capital of France?", "How do I pick a lock?", "Give me a haiku.",
           "Summarise the idea of a Pareto front.", "Is it safe to eat raw eggs?"]


@dataclass
class Tally:
    """What the sessions saw, shared by all of them."""
    ok: Counter = field(default_factory=Counter)
    seconds: list = field(default_factory=list)  # how long each answered request took
    expected: Counter = field(default_factory=Counter)
    unexpected: list = field(default_factory=list)
    unanswered: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, outcome: str, detail: str = "") -> None:
        with self.lock:
            if outcome == "ok":
                self.ok[kind] += 1
            elif outcome == "expected":
                self.expected[kind] += 1
            elif outcome == "unanswered":
                self.unanswered.append(f"{kind}: {detail}"[:300])
            else:
                self.unexpected.append(f"{kind}: {detail}"[:300])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(family: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "paretoapp", "app", "--family", str(family), "--no-assets", "--device", "cpu",
           "--host", "127.0.0.1", "--port", str(port), "--threads", "1"]
    log = open(log_path, "w")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with code {server.returncode} before it was up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not come up within {timeout:.0f} s")


class Session:
    """One user: its own client (its own Gradio session) and a random mix of requests."""

    def __init__(self, url: str, family: str, k_low: float, k_high: float, seed: int, max_new: int, tally: Tally,
                 ops: tuple[str, ...] | None = None):
        from gradio_client import Client

        # a browser waits for the queue; the default 5 s HTTP timeout would count a busy 2-core server as a failure
        self.client = Client(url, verbose=False, httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
        self.ops = ops or self.OPS
        self.family, self.low, self.high = family, k_low, k_high
        self.rng = random.Random(seed)
        self.max_new, self.tally = max_new, tally

    def _result(self, job, timeout: float = 300.0):
        return job.result(timeout=timeout)

    def _controls(self) -> list[float]:
        return [round(self.rng.uniform(self.low, self.high), 2)] + [0.0] * (MAX_CONTROLS - 1)

    def chat(self):
        self._result(self.client.submit(self.family, *self._controls(), [], None, None,  # the family's own axes
                                        api_name="/set_preference"))
        history, cleared = self._result(self.client.submit(self.rng.choice(PROMPTS), [], self.family, "", 0.0,
                                                            self.max_new, api_name="/chat"))
        assert history and history[-1]["role"] == "assistant" and cleared == "", history

    def compare(self):
        out = self._result(self.client.submit(self.rng.choice(PROMPTS), self.family, *self._controls(),
                                              *self._controls(), "", 0.0, self.max_new, api_name="/compare"))
        assert len(out) == 6 and all(isinstance(o, str) for o in out[:2]), out

    def generate(self):
        a = self.rng.uniform(0, 1)
        out = self._result(self.client.submit(self.rng.choice(PROMPTS), [a, 1 - a], self.family, self.max_new,
                                              0.0, "", api_name="/generate"))
        assert isinstance(out, str), out

    def long_prompt(self):
        self._result(self.client.submit(LONG, [0.5, 0.5], self.family, self.max_new, 0.0, "", api_name="/generate"))

    def long_chat(self):
        self._result(self.client.submit(LONG, [], self.family, "", 0.0, self.max_new, api_name="/chat"))

    def bad_w(self):
        w = self.rng.choice(["abc", [5.0, -4.0], [0.5], "nan,0.5", "0.5;0.5"])
        self._result(self.client.submit("Hi", w, self.family, self.max_new, 0.0, "", api_name="/generate"))

    def cancel(self):
        job = self.client.submit(self.rng.choice(PROMPTS), [], self.family, "", 0.0, 4 * self.max_new,
                                 api_name="/chat")
        time.sleep(self.rng.uniform(0.0, 0.3))
        job.cancel()

    OPS = ("chat", "chat", "compare", "generate", "generate", "long_prompt", "long_chat", "bad_w", "cancel")

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            kind = self.rng.choice(self.ops)
            self.do(kind)

    def do(self, kind: str) -> None:
        started = time.monotonic()
        try:
            getattr(self, kind)()
        except TimeoutError as exc:
            self.tally.add(kind, "unanswered", repr(exc))
            return
        except Exception as exc:  # the app's error, as gradio_client raises it
            message = str(exc)
            pattern = EXPECTED.get(kind)
            if pattern is not None and pattern.search(message) and "\n" not in message.strip():
                self.tally.add(kind, "expected")
            else:
                self.tally.add(kind, "unexpected", f"{type(exc).__name__}: {message}")
            return
        if kind in EXPECTED:
            self.tally.add(kind, "unexpected", "a bad request was answered instead of refused")
        else:
            self.tally.add(kind, "ok")
            with self.tally.lock:
                self.tally.seconds.append(time.monotonic() - started)


class MemorySampler(threading.Thread):
    """The server's resident set size, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 1.0):
        super().__init__(daemon=True)
        import psutil

        self.process, self.every = psutil.Process(pid), every
        self.samples: list[int] = []
        self.stop = threading.Event()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def run(self):
        while not self.stop.is_set():
            self.samples.append(self.rss())
            self.stop.wait(self.every)


def default_family() -> Path:
    from paretoapp.demo.fallback import fallback_family_dir
    return fallback_family_dir()


def run_soak(sessions: int = 32, seconds: float = 120.0, family: Path | None = None, max_new: int = 16,
             seed: int = 0, log_dir: Path | None = None, ops: tuple[str, ...] | None = None,
             warmup: float = 0.5) -> dict:
    """Run the soak and return its summary (see the module docstring)."""
    family = Path(family or default_family()).resolve()
    manifest = json.loads((family / "family.json").read_text())
    low = (manifest.get("w_low") or [0.0])[0]
    high = (manifest.get("w_high") or [1.0])[0]
    low, high = max(low, 0.0), min(high, 1.0)  # a line family's slider: stay inside [0, 1] and its range
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="paretoapp-soak-"))
    server = start_server(family, port, log_dir / "server.log")
    tally = Tally()
    try:
        wait_until_up(url, server)
        sampler = MemorySampler(server.pid)
        warm = Session(url, manifest["name"], low, high, seed, max_new, tally)
        for kind in set(Session.OPS):  # every path once, so the start figure counts loaded code and caches
            warm.do(kind)
        rss_ready = sampler.rss()
        sampler.start()
        clients = [Session(url, manifest["name"], low, high, seed + 1 + i, max_new, tally, ops)
                   for i in range(sessions)]
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        rss_end = sampler.rss()
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log = (log_dir / "server.log").read_text(errors="replace")
    mib = 2 ** 20
    samples = sampler.samples + [rss_end]
    rss_start = samples[int(len(samples) * warmup)]  # steady state: after the first sessions filled their caches
    return {
        "sessions": sessions, "seconds": seconds, "elapsed_s": round(elapsed, 1), "family": str(family),
        "requests": sum(tally.ok.values()) + sum(tally.expected.values()) + len(tally.unexpected)
        + len(tally.unanswered),
        "answered": dict(tally.ok), "refused_as_expected": dict(tally.expected),
        "unexpected": tally.unexpected, "unanswered": tally.unanswered,
        "server_alive": alive, "server_tracebacks": log.count("Traceback"),
        "answer_seconds_p50_p95_max": _percentiles(tally.seconds),
        "rss_ready_mib": round(rss_ready / mib, 1),
        f"rss_after_{warmup:.0%}_mib": round(rss_start / mib, 1), "rss_end_mib": round(rss_end / mib, 1),
        "rss_peak_mib": round(max(samples) / mib, 1),
        "rss_growth_after_warmup_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "rss_timeline_mib": [round(v / mib) for v in samples[:: max(1, len(samples) // 12)]],
        "server_log": str(log_dir / "server.log"),
    }


def _percentiles(values: list[float]) -> list[float]:
    if not values:
        return []
    v = sorted(values)
    return [round(v[len(v) // 2], 2), round(v[min(len(v) - 1, int(len(v) * 0.95))], 2), round(v[-1], 2)]


def passed(summary: dict) -> bool:
    return (not summary["unexpected"] and not summary["unanswered"] and summary["server_alive"]
            and sum(summary["answered"].values()) > 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--family", default=None, help="family folder (default: the tiny stand-in family)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", default=None, help=f"comma-separated subset of {','.join(sorted(set(Session.OPS)))}")
    args = p.parse_args(argv)
    ops = tuple(args.ops.split(",")) if args.ops else None
    summary = run_soak(args.sessions, args.seconds, args.family and Path(args.family), args.max_new_tokens, args.seed,
                       ops=ops)
    print(json.dumps(summary, indent=2))
    return 0 if passed(summary) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
