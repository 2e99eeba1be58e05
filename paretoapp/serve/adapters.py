"""One exact LoRA adapter per (family, w), made on first use and kept in an LRU.

For a fixed w the family's update B diag(g(w)) A is one LoRA of rank at most
the family's total rank, so a serving engine that batches one LoRA per request
(vLLM) serves every w exactly with one adapter per distinct w. To keep the
number of adapters finite, w is snapped to a grid (default 0.01 per
coordinate) and the snapped w is what is served and reported.

Adapters are written by ``export.lora_adapter`` (the code path of
``paretoapp export --lora``) into a folder the serving engine can read, through
``atomic.atomic_folder`` (a half-written adapter is never loaded). The cache
holds at most ``capacity`` of them; the least recently used one that no request
is using is evicted: ``on_evict`` unloads it from the engine, then its folder
is removed. An adapter in use is never evicted, so the cache may hold more
than ``capacity`` for as long as that many distinct w are being answered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_folder
from ..errors import ExportError, InputError
from ..export import lora_adapter, write_lora_weights
from ..family import Family
from . import DEFAULT_GRID as DEFAULT_GRID  # re-exported
from . import DEFAULT_MAX_ADAPTERS

log = logging.getLogger(__name__)



def check_grid(step: float) -> float:
    """A grid step in (0, 1]; finer steps mean more distinct adapters."""
    step = float(step)
    if not (math.isfinite(step) and 0 < step <= 1):
        raise InputError(f"the w grid step must be in (0, 1], got {step:g}; use e.g. 0.01 (one adapter per 0.01 of w)")
    return step


def grid_decimals(step: float) -> int:
    """Decimals that write every point of the grid exactly (0.01 -> 2, 0.25 -> 2, 0.5 -> 1, 1 -> 0)."""
    text = f"{step:.12f}".rstrip("0")
    return len(text.split(".")[1])


def _half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5 + 1e-9), x))


def snap(w: Sequence[float], step: float, low: Sequence[float] | None = None,
         high: Sequence[float] | None = None, keep_sum: bool = False) -> list[float]:
    """w rounded to the nearest grid point per coordinate, kept inside the family's range.

    ``keep_sum`` (families on the simplex): the snapped weights keep w's sum, rounded
    to the grid, by moving the coordinates that rounding moved most (largest
    remainder; ties to the first), so (0.35, 0.65) snaps to (0.3, 0.7) at step 0.1, not (0.4, 0.7).
    """
    q = [float(v) / step for v in w]
    points = [_half_away(x) for x in q]
    if keep_sum:
        for _ in range(len(points)):
            diff = _half_away(sum(q)) - sum(points)
            if diff == 0:
                break
            residual = [x - p for x, p in zip(q, points)]
            i = max(range(len(q)), key=residual.__getitem__) if diff > 0 else min(range(len(q)), key=residual.__getitem__)
            points[i] += 1 if diff > 0 else -1
    decimals = grid_decimals(step)
    out = []
    for i, p in enumerate(points):
        s = round(p * step, decimals)
        if low is not None and high is not None:
            s = min(max(s, float(low[i])), float(high[i]))
        out.append(s + 0.0)  # no "-0.0"
    return out


def adapter_stem(family: Family) -> str:
    """The family's part of its adapters' names: its name (folder-safe) and fingerprint (hashes every tensor)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", family.manifest.name)[:48] + "-" + family.fingerprint()[:8]


def adapter_name(stem: str, w: Sequence[float], step: float) -> str:
    """A name that is also a folder name: the family's stem and the snapped w."""
    decimals = grid_decimals(step)
    return f"{stem}-w" + "_".join(f"{float(v):.{decimals}f}" for v in w)


@dataclass
class Adapter:
    """One adapter on disk; ``path`` is None when w has no update at all (every gain zero: the base answers)."""
    name: str
    path: Path | None
    family: str = ""
    w: list[float] = field(default_factory=list)
    rank: int = 0
    users: int = 0                                   # requests using it now (never evicted while > 0)
    replicas: set = field(default_factory=set)       # replicas it is placed on (loaded or loading; see replicas.py)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


class AdapterCache:
    """(family, snapped w) -> an adapter folder; LRU with ``capacity`` entries, in-use ones pinned."""

    def __init__(self, folder: str | Path, capacity: int = DEFAULT_MAX_ADAPTERS, dtype: torch.dtype = torch.float32,
                 on_evict: Callable[[Adapter], Awaitable[None]] | None = None):
        if capacity < 1:
            raise InputError(f"the adapter cache must hold at least 1 adapter, got {capacity}")
        self.folder = Path(folder).expanduser()
        self.capacity = capacity
        self.dtype = dtype
        self.on_evict = on_evict
        self._entries: OrderedDict[str, Adapter] = OrderedDict()
        self._making: dict[str, asyncio.Future] = {}
        self._stems: dict[int, str] = {}  # id(family) -> adapter_stem, computed once
        self.made = 0
        self.make_seconds = 0.0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Adapter names, least recently used first."""
        return list(self._entries)

    def summary(self) -> list[dict]:
        """Every adapter held, least recently used first: name, family, w, rank, requests using it."""
        return [{"name": a.name, "family": a.family, "w": a.w, "rank": a.rank, "users": a.users}
                for a in self._entries.values()]

    async def acquire(self, family: Family, w: Sequence[float], step: float) -> Adapter:
        """The adapter for (family, snapped w), made if new, marked used; ``release`` it when done."""
        if id(family) not in self._stems:
            self._stems[id(family)] = adapter_stem(family)
        name = adapter_name(self._stems[id(family)], w, step)
        while name not in self._entries:
            if name in self._making:  # another request is writing it: wait for that one
                await asyncio.shield(self._making[name])
                continue
            self._making[name] = asyncio.get_running_loop().create_future()
            try:
                adapter = await asyncio.to_thread(self._make, family, w, name)
                self._entries[name] = adapter
            finally:
                self._making.pop(name).set_result(None)
        adapter = self._entries[name]
        self._entries.move_to_end(name)
        adapter.users += 1
        await self._evict()
        return adapter

    def release(self, adapter: Adapter) -> None:
        adapter.users -= 1

    async def trim(self) -> None:
        """Evict down to capacity now (after requests ended)."""
        await self._evict()

    def _make(self, family: Family, w: Sequence[float], name: str) -> Adapter:
        start = time.perf_counter()
        try:
            tensors, config = lora_adapter(family, w, self.dtype)
        except ExportError:  # every gain zero at this w: no update, the base model answers
            return Adapter(name, None, family.manifest.name, list(w))
        target = self.folder / name
        if target.exists():  # left by an earlier run: the name fixes the content (fingerprint + w)
            shutil.rmtree(target)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_folder(target) as tmp:
            write_lora_weights(tmp, tensors, config)
        self.made += 1
        self.make_seconds += time.perf_counter() - start
        return Adapter(name, target, family.manifest.name, list(w), rank=config.r)

    async def _evict(self) -> None:
        while len(self._entries) > self.capacity:
            victim = next((a for a in self._entries.values() if a.users == 0), None)
            if victim is None:  # every adapter is answering someone: evict when they finish
                return
            del self._entries[victim.name]
            try:
                if self.on_evict is not None:
                    await self.on_evict(victim)
            finally:
                if victim.path is not None:
                    shutil.rmtree(victim.path, ignore_errors=True)
                self.evicted += 1
                log.info("adapter %s evicted (cache holds %d of %d)", victim.name, len(self._entries), self.capacity)

    async def close(self) -> None:
        """Evict everything: unloaded from the engine (``on_evict``), folders removed."""
        for adapter in list(self._entries.values()):
            try:
                if self.on_evict is not None:
                    await self.on_evict(adapter)
            except Exception as exc:  # shutting down: a replica that is gone has forgotten it anyway
                log.warning("could not unload adapter %s at shutdown: %s", adapter.name, exc)
            if adapter.path is not None:
                shutil.rmtree(adapter.path, ignore_errors=True)
        self._entries.clear()
