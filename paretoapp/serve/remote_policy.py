"""The app on vLLM: a policy whose answers come from the vLLM gateway (``paretoapp app --backend vllm``).

The app generates through ``FamilyEntry.policy()``; with ``--backend vllm`` the
catalog wraps each loaded ``Policy`` in a ``RemotePolicy`` (``catalog.wrap_policy``,
the one seam). ``generate`` and ``stream`` send every row (its prompt at its w)
to the gateway, which answers it on vLLM with the adapter of its snapped w;
everything else (the tokenizer, token counts, export, the live scorers) is the
local policy's, so the app process still loads the base for those. Rows are
sent as separate requests, each at its own w, and vLLM batches them.

The gateway runs on its own event-loop thread, shared by every family of the app.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

from ..generate import GenerationSettings, answer_text
from ..validation import chat_messages
from .backends import ServedFamily
from .protocol import ChatRequest
from .vllm_backend import VllmBackend

END = object()


class Gateway:
    """A ``VllmBackend`` on a background event loop, for synchronous callers (the Gradio app)."""

    def __init__(self, urls: list[str], **backend_kw):
        self.backend = VllmBackend({}, urls, **backend_kw)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="paretoapp-vllm-gateway", daemon=True).start()
        self.call(self.backend.start())

    def call(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wrap(self, policy, name: str | None = None) -> RemotePolicy:
        """The policy answered on vLLM (the catalog's ``wrap_policy``)."""
        name = name or policy.manifest.name
        self.backend.add(name, policy.family, ServedFamily(name, policy.manifest, policy.format))
        return RemotePolicy(policy, self, name)


class RemotePolicy:
    """A ``Policy`` that answers through the gateway; every other attribute is the local policy's."""

    def __init__(self, local, gateway: Gateway, name: str):
        self.local, self.gateway, self.name = local, gateway, name

    def __getattr__(self, attr):
        return getattr(self.local, attr)

    def context_length(self) -> int:
        return min(self.local.context_length(), self.gateway.backend.pool.context)

    def requests(self, prompts, ws, settings: GenerationSettings | None, system_prompt: str | None,
                 seeds: Sequence[int] | None = None) -> list[ChatRequest]:
        """One chat request per row, each at its own w, sampling as ``settings`` say."""
        prompts, w, settings = self.local._prepare(prompts, ws, settings)
        out = []
        for i, (prompt, row_w) in enumerate(zip(prompts, w.tolist())):
            messages = chat_messages(prompt)
            if system_prompt is not None and messages[0]["role"] != "system":
                messages.insert(0, {"role": "system", "content": system_prompt})
            seed = seeds[i] if seeds is not None else (None if settings.seed is None else settings.seed + i)
            out.append(ChatRequest(model=self.name, messages=messages, w=row_w, max_tokens=settings.max_new_tokens,
                                   temperature=settings.temperature if settings.do_sample else 0.0,
                                   top_p=settings.top_p, seed=seed, stop=list(settings.stop),
                                   overflow=settings.overflow, repetition_penalty=settings.repetition_penalty,
                                   presence_penalty=settings.presence_penalty,
                                   frequency_penalty=settings.frequency_penalty))
        return out

    def stream(self, prompts, ws, settings: GenerationSettings | None = None, system_prompt: str | None = None,
               cancel: threading.Event | None = None, block: bool = True, min_interval: float = 0.05,
               seeds: Sequence[int] | None = None) -> Iterator[list[str]]:
        """Every row's answer so far whenever one grows (as ``Policy.stream``); ``cancel`` stops them."""
        settings = settings or GenerationSettings()
        reqs = self.requests(prompts, ws, settings, system_prompt, seeds)
        updates: queue.Queue = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(_run_rows(self.gateway.backend, reqs, updates), self.gateway.loop)
        texts = [""] * len(reqs)
        last, shown_at = None, 0.0
        try:
            while not (cancel is not None and cancel.is_set()):
                try:
                    item = updates.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is END:
                    if texts != last:
                        yield list(texts)
                    return
                if isinstance(item, BaseException):
                    raise item
                i, tokens = item
                texts[i] = answer_text(self.local.tokenizer, tokens, settings.stop)
                if texts != last and updates.empty() and time.monotonic() - shown_at >= min_interval:
                    last, shown_at = list(texts), time.monotonic()
                    yield last
            if texts != last:  # cancelled: what was written so far is the answer
                yield list(texts)
        finally:
            future.cancel()  # a reader that stopped (or a cancel) stops the rows on vLLM

    def generate(self, prompts, ws, settings: GenerationSettings | None = None, system_prompt: str | None = None,
                 model=None, block: bool = True, batch_size: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[str]:
        """One answer per row, each at its own w, from vLLM (``model=`` goes to the local policy)."""
        if model is not None:
            return self.local.generate(prompts, ws, settings, system_prompt, model=model)
        last = deque(self.stream(prompts, ws, settings, system_prompt, min_interval=0.0, seeds=seeds), maxlen=1)
        return last[0] if last else []


async def _run_rows(backend: VllmBackend, reqs: list[ChatRequest], out: queue.Queue) -> None:
    """Answer every row concurrently; put (row, tokens) on ``out`` as they grow, then END (or the error)."""
    async def row(i: int, req: ChatRequest):
        gen = await backend.generate(req)
        try:
            async for snapshot in gen.snapshots:
                out.put((i, [t for t in snapshot[0] if t not in backend.family(req.model).eos]))
        finally:
            await gen.snapshots.aclose()
            gen.cancel()

    try:
        async with asyncio.TaskGroup() as group:  # one row failing stops the others
            for i, r in enumerate(reqs):
                group.create_task(row(i, r))
    except BaseExceptionGroup as group_error:  # handed to the caller's thread, which raises it
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        out.put(first)
        return
    out.put(END)
