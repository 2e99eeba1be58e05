"""What the HTTP API asks of an engine, and the in-process engine's answer to it.

A backend knows its families and turns one chat request at one preference into
a ``Generation``: the w it serves, the prompt's length, and every choice's
token ids as they grow. The HTTP layer (``openai_api.py``) makes text,
streams and usage from that, the same for every backend.

``EngineBackend`` answers with this package's engine (``paretoapp.engine``):
every request, at every w and from every family on the same base, is decoded
in one running batch. ``VllmBackend`` (``vllm_backend.py``) hands each w to a
vLLM server as one LoRA adapter.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ..errors import EngineBusy, FamilyError
from ..family import FamilyManifest
from ..generate import GenerationSettings, PromptFormat
from ..preferences import PreferenceSpace
from .protocol import ChatRequest


class UpstreamError(EngineBusy):
    """The serving engine behind this gateway failed or cannot be reached (HTTP 502, or 503 when none is left).

    Like ``EngineBusy`` it is not the caller's mistake (try again), so the app shows its one line too.
    """

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.status = status


@dataclass
class ServedFamily:
    """One family as the API shows it: its manifest, how its prompts are formatted, its default w."""
    name: str
    manifest: FamilyManifest
    format: PromptFormat

    @property
    def tokenizer(self):
        return self.format.tokenizer

    @property
    def eos(self) -> frozenset[int]:
        eos = self.tokenizer.eos_token_id
        return frozenset([eos] if eos is not None else [])

    def default_w(self) -> list[float]:
        return PreferenceSpace(self.manifest).default_w()

    def check_w(self, w: Sequence[float] | None) -> list[float]:
        """The request's w checked against the family (PreferenceError with the fix), or its default."""
        return self.manifest.check_w(self.default_w() if w is None else list(w))[0].tolist()

    def card(self) -> dict:
        """The ``/v1/models`` entry: OpenAI's fields plus what a client needs to choose w."""
        m = self.manifest
        return {"id": self.name, "object": "model", "created": 0, "owned_by": "paretoapp", "method": m.method,
                "objectives": [o.name for o in m.objectives], "w_low": m.w_low, "w_high": m.w_high,
                "in_sample_low": m.in_sample_low, "in_sample_high": m.in_sample_high, "on_simplex": m.on_simplex,
                "default_w": self.default_w()}


@dataclass
class Generation:
    """One request under way: the w it is answered at and every choice's tokens as they come."""
    w: list[float]
    prompt_tokens: int
    max_tokens: int
    snapshots: AsyncIterator[list[list[int]]]  # every choice's tokens so far, each time one grows
    cancel: Callable[[], None] = field(default=lambda: None)


def settings_for(req: ChatRequest, max_tokens: int) -> GenerationSettings:
    """The engine's settings for an OpenAI request: temperature 0 is greedy."""
    return GenerationSettings(max_new_tokens=max_tokens, do_sample=not req.greedy,
                              temperature=req.temperature if not req.greedy else 1.0, top_p=req.top_p,
                              seed=req.seed, stop=list(req.stop), overflow=req.overflow,
                              repetition_penalty=req.repetition_penalty, presence_penalty=req.presence_penalty,
                              frequency_penalty=req.frequency_penalty)


def answer_budget(req: ChatRequest, served: ServedFamily, w: list[float], context: int, cap: int) -> tuple[list[int], int]:
    """(prompt ids, max new tokens): the request's max_tokens, or, when it gives none, as many as fit (up to ``cap``).

    The prompt is checked against the context with the room its answer needs, so an
    over-long prompt fails here with the project's one line (``PromptTooLongError``).
    """
    if req.max_tokens is not None:
        ids = served.format.prompt_ids([req.messages], [w], settings_for(req, req.max_tokens), context)[0]
        return ids, req.max_tokens
    ids = served.format.prompt_ids([req.messages], [w], settings_for(req, 1), context)[0]
    return ids, max(1, min(cap, context - len(ids)))


class Backend:
    """The families one server answers for, and how it answers."""

    name = "?"

    def __init__(self, families: dict[str, ServedFamily]):
        self.families = families

    def family(self, name: str) -> ServedFamily:
        try:
            return self.families[name]
        except KeyError:
            raise FamilyError(f"no family named {name!r} is served here; use one of {', '.join(self.families)} "
                              "(GET /v1/models lists them)") from None

    async def start(self) -> None:
        """Connect to whatever the backend needs (called once, before the first request)."""

    async def close(self) -> None:
        """Release it (called once at shutdown)."""

    async def generate(self, req: ChatRequest) -> Generation:
        raise NotImplementedError

    def stats(self) -> dict:
        return {"backend": self.name}


class EngineBackend(Backend):
    """The in-process engine: all users and all w of every family in one running batch."""

    name = "engine"

    def __init__(self, policies: dict):
        super().__init__({name: ServedFamily(name, p.manifest, p.format) for name, p in policies.items()})
        self.policies = policies

    async def generate(self, req: ChatRequest) -> Generation:
        from ..validation import app_max_new_tokens

        served = self.family(req.model)
        policy = self.policies[req.model]
        w = served.check_w(req.w)

        def submit():
            ids, max_tokens = answer_budget(req, served, w, policy.context_length(), app_max_new_tokens())
            seeds = None if req.seed is None else [req.seed + i for i in range(req.n)]
            job = policy.submit([req.messages] * req.n, [w] * req.n, settings_for(req, max_tokens), block=False,
                                seeds=seeds)
            return job, len(ids), max_tokens

        job, prompt_tokens, max_tokens = await asyncio.to_thread(submit)
        return Generation(w, prompt_tokens, max_tokens, job_snapshots(job), job.cancel)


async def job_snapshots(job, min_interval: float = 0.0) -> AsyncIterator[list[list[int]]]:
    """An engine job's ``updates`` on the event loop: one reader thread per job feeds a queue.

    A thread per request (not the loop's small pool) so a job still waiting for a
    slot never holds a worker that another request's tokens need.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    end = object()

    def read():
        try:
            for snapshot in job.updates(min_interval):
                loop.call_soon_threadsafe(queue.put_nowait, snapshot)
        except BaseException as exc:  # the job failed: the reader re-raises it on the loop
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        loop.call_soon_threadsafe(queue.put_nowait, end)

    threading.Thread(target=read, name="paretoapp-serve-reader", daemon=True).start()
    try:
        while (item := await queue.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        job.cancel()  # a no-op once done; frees the rows of a client that went away
