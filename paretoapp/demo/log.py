"""The demo build's log lines: a timestamp and the step, flushed at once (workers share the terminal)."""

from __future__ import annotations

import time


def log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)
