"""Answer on vLLM: each distinct (family, snapped w) is one exact LoRA adapter on a vLLM server.

A request is answered in five steps:

1. w is checked against the family and snapped to the grid (``adapters.snap``);
2. the prompt is formatted here, exactly as the in-process engine formats it
   (``generate.PromptFormat``: the family's template and, for Rewards-in-Context,
   its conditioning c(w) at the snapped w) and checked against vLLM's context;
3. the adapter for (family, snapped w) is taken from the LRU, made on first use
   (``adapters.AdapterCache``);
4. a replica is chosen (affinity, else least loaded; ``replicas.ReplicaPool``)
   and loads the adapter if it does not hold it;
5. the token ids go to vLLM's ``/v1/completions`` (streamed, ``return_token_ids``)
   with the adapter's name as the model, so vLLM batches users at different w
   together, one LoRA per row.

A replica that fails before the answer is complete is marked down and the
request goes on elsewhere: from the start, or, for a single answer already
under way, from the tokens it has (they become part of the prompt, so a greedy
answer is the same as if nothing had happened). Nothing here imports vLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from ..errors import FamilyError
from ..family import Family, load_family
from ..generate import PromptFormat
from ..models import load_tokenizer
from ..validation import app_max_new_tokens
from . import DEFAULT_GRID, DEFAULT_MAX_ADAPTERS
from .adapters import Adapter, AdapterCache, check_grid, snap
from .backends import Backend, Generation, ServedFamily, UpstreamError, answer_budget
from .protocol import ChatRequest
from .replicas import AdapterMissing, Replica, ReplicaDown, ReplicaPool

log = logging.getLogger(__name__)


def one_base(families: list[Family]) -> str:
    """The base every family shares (one vLLM server serves one base model)."""
    bases = {f.manifest.base_model.name_or_path for f in families}
    if len(bases) != 1:
        raise FamilyError(f"these families are on {len(bases)} different base models ({', '.join(sorted(bases))}); "
                          "a vLLM server serves one base: run one paretoapp serve per base")
    return bases.pop()


def served_family(family: Family, name: str) -> ServedFamily:
    """A family with its tokenizer (no model weights: vLLM holds them)."""
    ref = family.manifest.base_model
    tokenizer = load_tokenizer(ref.tokenizer or ref.name_or_path, revision=ref.revision)
    return ServedFamily(name, family.manifest, PromptFormat(family.manifest, tokenizer))


class VllmBackend(Backend):
    """The vLLM gateway: families, the adapter LRU and the replica pool."""

    name = "vllm"

    def __init__(self, families: dict[str, Family], urls: list[str], grid: float = DEFAULT_GRID,
                 max_adapters: int = DEFAULT_MAX_ADAPTERS, adapter_dir: str | Path | None = None, retry_down_s: float = 15.0,
                 client_kw: dict | None = None):
        super().__init__({})
        self.raw: dict[str, Family] = {}
        for name, family in families.items():
            self.add(name, family)
        self.grid = check_grid(grid)
        self.pool = ReplicaPool(urls, retry_down_s, client_kw)
        self.own_dir = adapter_dir is None  # a temporary folder of ours (made with the first adapter): removed at close
        if adapter_dir is None:
            import tempfile
            import uuid
            adapter_dir = Path(tempfile.gettempdir()) / f"paretoapp-adapters-{uuid.uuid4().hex[:12]}"
        self.cache = AdapterCache(adapter_dir, max_adapters, on_evict=self.pool.unload)
        self.tasks: set[asyncio.Task] = set()  # evictions under way (a task nobody holds may be collected)

    @classmethod
    def from_folders(cls, folders: list[str | Path], urls: list[str], **kw) -> VllmBackend:
        families = {}
        for folder in folders:
            family = load_family(folder)
            families[family.manifest.name] = family
        return cls(families, urls, **kw)

    def add(self, name: str, family: Family, served: ServedFamily | None = None) -> None:
        """Serve one more family (on the same base as the others) under ``name``."""
        one_base([*self.raw.values(), family])
        self.families[name] = served or served_family(family, name)
        self.raw[name] = family

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.cache.close()  # unloads every adapter from the replicas, removes the files
        await self.pool.close()
        if self.own_dir:
            shutil.rmtree(self.cache.folder, ignore_errors=True)

    def snapped(self, name: str, w) -> list[float]:
        """The w this backend serves for a request's w: checked, snapped to the grid, checked again."""
        served = self.family(name)
        m = served.manifest
        return served.check_w(snap(served.check_w(w), self.grid, m.w_low, m.w_high, keep_sum=m.on_simplex))

    async def generate(self, req: ChatRequest) -> Generation:
        served = self.family(req.model)
        w = self.snapped(req.model, req.w)
        ids, max_tokens = await asyncio.to_thread(answer_budget, req, served, w, self.pool.context,
                                                  app_max_new_tokens())
        adapter = await self.cache.acquire(self.raw[req.model], w, self.grid)
        try:
            replica = await self._place(adapter)
        except BaseException:
            self.cache.release(adapter)
            raise
        body = {"prompt": ids, "max_tokens": max_tokens, "temperature": req.temperature, "top_p": req.top_p,
                "n": req.n, "stream": True, "return_token_ids": True, "skip_special_tokens": True}
        if req.seed is not None:
            body["seed"] = req.seed
        if req.stop:
            body["stop"] = list(req.stop)
        if req.repetition_penalty != 1.0:
            body["repetition_penalty"] = req.repetition_penalty
        for name in ("presence_penalty", "frequency_penalty"):  # vLLM's are OpenAI's, as the engine's
            if getattr(req, name):
                body[name] = getattr(req, name)
        run = _Run(self, adapter, replica, body, req.n)
        return Generation(w, len(ids), max_tokens, run.snapshots(), run.finish)

    async def _place(self, adapter: Adapter, tried: set[str] | None = None) -> Replica:
        """A replica that holds the adapter (loading it there if needed), skipping replicas that are down."""
        tried = set() if tried is None else tried
        while True:
            replica = await self.pool.choose(adapter, tried)
            try:
                await self.pool.ensure_loaded(replica, adapter)
                return replica
            except ReplicaDown as exc:
                replica.load -= 1
                self.pool.mark_down(replica, exc)
                tried.add(replica.url)
            except BaseException:
                replica.load -= 1
                raise

    def stats(self) -> dict:
        return {"backend": self.name, "grid": self.grid, "adapters": self.cache.summary(),
                "max_adapters": self.cache.capacity, "adapters_made": self.cache.made,
                "adapter_seconds": round(self.cache.make_seconds, 4), "evicted": self.cache.evicted,
                "replicas": self.pool.summary()}


class _Run:
    """One request on the replicas: streams vLLM's tokens, retries on another replica, releases at the end."""

    def __init__(self, backend: VllmBackend, adapter: Adapter, replica: Replica, body: dict, n: int):
        self.backend, self.adapter, self.replica, self.body, self.n = backend, adapter, replica, body, n
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.done = False

    def model(self, replica: Replica) -> str:
        return self.adapter.name if self.adapter.path is not None else replica.base_model

    async def snapshots(self) -> AsyncIterator[list[list[int]]]:
        pool, tried, reloaded = self.backend.pool, set(), False
        try:
            while True:
                try:
                    async for snapshot in self._stream(self.replica):
                        yield snapshot
                    return
                except ReplicaDown as exc:
                    pool.mark_down(self.replica, exc)
                    tried.add(self.replica.url)
                    if any(self.tokens) and self.n != 1:
                        raise UpstreamError(f"vLLM replica {self.replica.url} went away mid-answer ({exc}); "
                                            "ask again") from None
                except AdapterMissing:  # the replica restarted and forgot it: load it once more
                    self.replica.loaded.discard(self.adapter.name)
                    if reloaded:
                        raise UpstreamError(f"vLLM at {self.replica.url} does not keep adapter {self.adapter.name}") from None
                    reloaded = True
                    tried.discard(self.replica.url)
                self.replica.load -= 1
                self.replica = None
                self.replica = await self.backend._place(self.adapter, tried)
        finally:
            self.finish()

    async def _stream(self, replica: Replica) -> AsyncIterator[list[list[int]]]:
        body = dict(self.body, model=self.model(replica))
        if any(self.tokens):  # a single answer under way: go on from its tokens
            body["prompt"] = list(self.body["prompt"]) + self.tokens[0]
            body["max_tokens"] = self.body["max_tokens"] - len(self.tokens[0])
            if body["max_tokens"] < 1:
                return
        async for chunk in self.backend.pool.completion(replica, body):
            grew = False
            for choice in chunk.get("choices", []):
                ids = choice.get("token_ids") or []
                if ids:
                    self.tokens[choice.get("index", 0)].extend(ids)
                    grew = True
            if grew:
                yield [list(t) for t in self.tokens]

    def finish(self) -> None:
        """Give back the replica slot and the adapter (once; also when the stream was never read)."""
        if self.done:
            return
        self.done = True
        if self.replica is not None:
            self.replica.load -= 1
        self.backend.cache.release(self.adapter)
        with contextlib.suppress(RuntimeError):  # no loop (interpreter shutdown): nothing to trim for
            task = asyncio.get_running_loop().create_task(self.backend.cache.trim())  # evict what waited for this
            self.backend.tasks.add(task)
            task.add_done_callback(self.backend.tasks.discard)
