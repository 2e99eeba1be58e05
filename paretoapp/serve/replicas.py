"""Several vLLM servers behind one gateway: adapter affinity, least loaded otherwise, dead ones skipped.

Each replica is a running ``vllm serve BASE --enable-lora`` (with
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) that this gateway talks to over
HTTP only: ``GET /v1/models`` (its base and context), ``POST
/v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` (runtime LoRA loading)
and ``POST /v1/completions`` with the prompt as token ids and
``return_token_ids`` (so the gateway decodes the answer exactly as the
in-process engine does).

A request for an adapter goes to the least loaded replica that already holds
it (affinity: no load, and vLLM's cache of that adapter stays warm); an adapter
no replica holds goes to the least loaded one, which loads it. A replica that
cannot be reached is marked down with one log line and skipped; its requests
are retried elsewhere (``VllmBackend``); it is probed again every
``retry_down_s`` seconds and comes back with no adapters (a restarted vLLM
has forgotten them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..errors import one_line
from .adapters import Adapter
from .backends import UpstreamError

log = logging.getLogger(__name__)


class ReplicaDown(Exception):
    """A replica could not be reached or dropped the connection."""


class AdapterMissing(Exception):
    """The replica does not know the adapter (it restarted since it was loaded)."""


@dataclass
class Replica:
    url: str
    alive: bool = False
    load: int = 0                                  # requests in flight here
    loaded: set[str] = field(default_factory=set)  # adapter names loaded here
    base_model: str | None = None                  # the model id vLLM serves its base under
    max_model_len: int | None = None
    answered: int = 0
    adapter_loads: int = 0
    load_seconds: float = 0.0                      # spent in load_lora_adapter
    checked_at: float = 0.0

    def summary(self) -> dict:
        return {"url": self.url, "alive": self.alive, "load": self.load, "adapters": sorted(self.loaded),
                "answered": self.answered, "adapter_loads": self.adapter_loads,
                "load_seconds": round(self.load_seconds, 4), "max_model_len": self.max_model_len}


def _message(response_text: str) -> str:
    try:
        body = json.loads(response_text)
        return one_line(body.get("error", {}).get("message") or body.get("message") or response_text)[:300]
    except (ValueError, AttributeError):
        return one_line(response_text)[:300]


class ReplicaPool:
    """The vLLM replicas and which adapters each holds."""

    def __init__(self, urls: list[str], retry_down_s: float = 15.0, client_kw: dict | None = None):
        if not urls:
            raise UpstreamError("no vLLM server given; pass --vllm-url URL (repeat it for replicas)", 503)
        self.replicas = [Replica(u.rstrip("/")) for u in dict.fromkeys(urls)]
        self.retry_down_s = retry_down_s
        self.client_kw = client_kw or {}  # for httpx.AsyncClient (tests mount fake replicas here)
        self.client = None

    async def start(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(timeout=httpx.Timeout(connect=5.0, read=600.0, write=60.0, pool=None),
                                        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                                        **self.client_kw)
        await asyncio.gather(*(self._probe(r) for r in self.replicas))
        if not any(r.alive for r in self.replicas):
            raise UpstreamError(f"no vLLM server answers at {', '.join(r.url for r in self.replicas)}; start "
                                "`vllm serve BASE --enable-lora` there (with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)", 503)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    @property
    def context(self) -> int:
        """Tokens one answer may hold: the smallest ``max_model_len`` among the replicas that answered."""
        lengths = [r.max_model_len for r in self.replicas if r.max_model_len]
        return min(lengths) if lengths else 2048

    # ---------------------------------------------------------------- health
    async def _probe(self, replica: Replica) -> bool:
        """Ask the replica for its model; mark it alive (with its base and context) or down."""
        import httpx

        first, replica.checked_at = replica.checked_at == 0, time.monotonic()
        try:
            r = await self.client.get(f"{replica.url}/v1/models", timeout=5.0)
            r.raise_for_status()
            base = next(m for m in r.json()["data"] if not m.get("parent"))
        except (httpx.HTTPError, ValueError, KeyError, StopIteration) as exc:
            if replica.alive or first:
                log.warning("vLLM replica %s is not answering (%s)", replica.url, one_line(exc)[:120] or type(exc).__name__)
            replica.alive = False
            return False
        if not replica.alive:
            log.info("vLLM replica %s answers (base %s, context %s)", replica.url, base["id"], base.get("max_model_len"))
        replica.alive, replica.base_model, replica.max_model_len = True, base["id"], base.get("max_model_len")
        return True

    def mark_down(self, replica: Replica, why: BaseException) -> None:
        if replica.alive:
            log.warning("vLLM replica %s is down (%s: %s); skipping it and retrying its requests on another replica",
                        replica.url, type(why).__name__, one_line(why)[:120])
        replica.alive = False
        replica.loaded.clear()  # a restarted vLLM has none of them
        replica.checked_at = time.monotonic()

    async def _revive(self) -> None:
        due = [r for r in self.replicas if not r.alive and time.monotonic() - r.checked_at >= self.retry_down_s]
        if due:
            await asyncio.gather(*(self._probe(r) for r in due))

    # ---------------------------------------------------------------- routing
    async def choose(self, adapter: Adapter | None, exclude: set[str] = frozenset()) -> Replica:
        """The replica for this adapter: the least loaded one holding it, else the least loaded alive one
        (on a tie, the one holding fewer adapters, so new adapters spread over the replicas)."""
        await self._revive()
        alive = [r for r in self.replicas if r.alive and r.url not in exclude]
        if not alive:
            raise UpstreamError("no vLLM replica is answering (" + ", ".join(r.url for r in self.replicas) +
                                "); start them again, the gateway probes them every "
                                f"{self.retry_down_s:g} s", 503)
        sticky = adapter is not None and adapter.path is not None  # the base (no adapter) goes anywhere
        holders = [r for r in alive if sticky and (adapter.name in r.loaded or r.url in adapter.replicas)]
        replica = min(holders or alive, key=lambda r: (r.load, len(r.loaded)))
        replica.load += 1  # counted now, so requests choosing at the same moment spread out
        if sticky:  # placed now, so a request for it arriving while it loads goes to the same replica
            adapter.replicas.add(replica.url)
        return replica

    async def ensure_loaded(self, replica: Replica, adapter: Adapter) -> None:
        """Load the adapter into the replica unless it is there (runtime LoRA loading)."""
        import httpx

        if adapter.path is None:
            return
        async with adapter.lock:
            if adapter.name in replica.loaded:
                return
            start = time.perf_counter()
            try:
                # in place: a name left registered by an earlier gateway now points at this file (same content)
                r = await self.client.post(f"{replica.url}/v1/load_lora_adapter",
                                           json={"lora_name": adapter.name, "lora_path": str(adapter.path),
                                                 "load_inplace": True})
            except httpx.TransportError as exc:
                adapter.replicas.discard(replica.url)
                raise ReplicaDown(one_line(exc) or type(exc).__name__) from exc
            if r.status_code != 200:
                adapter.replicas.discard(replica.url)
                why = _message(r.text)
                hint = (" (start vllm serve with a larger --max-lora-rank: this adapter has rank "
                        f"{adapter.rank})") if "rank" in why.lower() else ""
                raise UpstreamError(f"vLLM at {replica.url} could not load adapter {adapter.name}: {why}{hint}")
            replica.loaded.add(adapter.name)
            replica.adapter_loads += 1
            replica.load_seconds += time.perf_counter() - start

    async def unload(self, adapter: Adapter) -> None:
        """Unload an evicted adapter from every replica holding it (a replica that is gone has forgotten it)."""
        import httpx

        for replica in self.replicas:
            if adapter.name not in replica.loaded:
                continue
            replica.loaded.discard(adapter.name)
            try:
                await self.client.post(f"{replica.url}/v1/unload_lora_adapter", json={"lora_name": adapter.name})
            except httpx.TransportError as exc:
                self.mark_down(replica, exc)
        adapter.replicas.clear()

    # ---------------------------------------------------------------- answering
    async def completion(self, replica: Replica, body: dict) -> AsyncIterator[dict]:
        """vLLM's streamed ``/v1/completions`` chunks (parsed JSON), until ``[DONE]``."""
        import httpx

        try:
            async with self.client.stream("POST", f"{replica.url}/v1/completions", json=body) as r:
                if r.status_code != 200:
                    text = (await r.aread()).decode("utf-8", "replace")
                    if r.status_code == 404 and "does not exist" in text:
                        raise AdapterMissing(body["model"])
                    raise UpstreamError(f"vLLM at {replica.url} answered HTTP {r.status_code}: {_message(text)}")
                async for line in r.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[len("data: "):]
                    if data.strip() == "[DONE]":
                        replica.answered += 1
                        return
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        raise UpstreamError(f"vLLM at {replica.url} failed mid-answer: {_message(data)}")
                    yield chunk
            raise ReplicaDown("the stream ended before [DONE]")
        except httpx.TransportError as exc:
            raise ReplicaDown(one_line(exc) or type(exc).__name__) from exc

    def summary(self) -> list[dict]:
        return [r.summary() for r in self.replicas]
