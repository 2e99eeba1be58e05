"""The OpenAI-compatible HTTP API: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``.

``model`` is a family name and the preference the extra body field ``"w"``.
Whatever backend writes the tokens, this layer makes the text (``streaming.py``),
the Server-Sent Events of a stream (one ``chat.completion.chunk`` per delta,
``data: [DONE]`` last), the usage and the errors: a request a user can fix is
HTTP 400 with the project's one-line message in OpenAI's error shape, a full
engine or no live replica is 503, a failing upstream server is 502. A client
that goes away cancels its generation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import EngineBusy, ParetoappError, one_line
from .backends import Backend, Generation, UpstreamError
from .protocol import (
    ChatRequest,
    chunk_body,
    completion_body,
    error_body,
    new_id,
    now,
    parse_chat_request,
    usage,
    usage_chunk,
)
from .streaming import AnswerText

log = logging.getLogger(__name__)


def error_status(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, OpenAI error type) for an error a client should see; None for a bug."""
    if isinstance(exc, ParetoappError):
        return 400, "invalid_request_error"
    if isinstance(exc, UpstreamError):
        return exc.status, "upstream_error"
    if isinstance(exc, EngineBusy):
        return 503, "server_busy"
    return None


def error_response(exc: BaseException):
    """An error as OpenAI sends it; a bug is logged and shown as a 500 without its details."""
    status = error_status(exc)
    if status is None:
        log.error("chat completion failed", exc_info=exc)
        return JSONResponse(error_body(f"internal error ({type(exc).__name__}); see the server's log", "server_error"),
                            status_code=500)
    return JSONResponse(error_body(one_line(exc), status[1]), status_code=status[0])


def build_app(backend: Backend):
    """The FastAPI app serving ``backend``'s families."""
    @asynccontextmanager
    async def lifespan(app):
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    app = FastAPI(title="paretoapp serve", lifespan=lifespan)

    @app.get("/health")
    async def health():
        return {"status": "ok", "backend": backend.name}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [f.card() for f in backend.families.values()]}

    @app.get("/v1/models/{name}")
    async def model(name: str):
        try:
            return backend.family(name).card()
        except ParetoappError as exc:
            return JSONResponse(error_body(one_line(exc), code="model_not_found"), status_code=404)

    @app.get("/paretoapp/stats")
    async def stats():
        return backend.stats()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse(error_body(f"the request body is not JSON ({one_line(exc)[:120]}); send a JSON object"),
                                status_code=400)
        return await answer(backend, body)

    return app


async def answer(backend: Backend, body):
    """One chat completion: parsed, generated, returned whole or as a stream."""
    try:
        req = parse_chat_request(body)
        gen = await backend.generate(req)
    except Exception as exc:
        return error_response(exc)
    served = backend.family(req.model)
    answers = [AnswerText(served.tokenizer, req.stop, served.eos, gen.max_tokens) for _ in range(req.n)]
    if req.stream:
        return StreamingResponse(_events(req, gen, answers), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    last = None
    try:
        async for snapshot in gen.snapshots:
            last = snapshot
    except Exception as exc:
        return error_response(exc)
    finally:
        await _close(gen)
    for a, tokens in zip(answers, last or [[] for _ in answers]):
        a.update(tokens, final=True)
    use = usage(gen.prompt_tokens, sum(len(a.tokens) for a in answers))
    body = completion_body(new_id(), now(), req.model, [(a.sent, a.finish_reason) for a in answers], use, gen.w)
    if req.return_token_ids:
        for choice, a in zip(body["choices"], answers):
            choice["token_ids"] = a.tokens
    return body


async def _close(gen: Generation) -> None:
    """Stop what is left of a generation (a client that went away) and give back what it held."""
    await gen.snapshots.aclose()
    gen.cancel()


def _sse(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body)}\n\n"


async def _events(req: ChatRequest, gen: Generation, answers: list[AnswerText]) -> AsyncIterator[str]:
    """The stream: a role chunk per choice, content deltas, a finish chunk per choice, usage, [DONE]."""
    rid, created = new_id(), now()
    for i in range(req.n):
        yield _sse(chunk_body(rid, created, req.model, i, {"role": "assistant", "content": ""}, None, gen.w))
    last = [[] for _ in answers]
    try:
        async for snapshot in gen.snapshots:
            last = snapshot
            for i, (a, tokens) in enumerate(zip(answers, snapshot)):
                if delta := a.update(tokens):
                    yield _sse(chunk_body(rid, created, req.model, i, {"content": delta}, None, gen.w))
    except Exception as exc:  # the client already has a 200: the error goes in the stream, as OpenAI sends it
        status = error_status(exc)
        if status is None:
            log.error("streamed chat completion failed", exc_info=exc)
        message = one_line(exc) if status else f"internal error ({type(exc).__name__}); see the server's log"
        yield _sse(error_body(message, status[1] if status else "server_error"))
        return
    finally:
        await _close(gen)
    for i, (a, tokens) in enumerate(zip(answers, last)):
        delta = a.update(tokens, final=True)
        yield _sse(chunk_body(rid, created, req.model, i, {"content": delta} if delta else {}, a.finish_reason, gen.w))
    if req.include_usage:
        yield _sse(usage_chunk(rid, created, req.model, usage(gen.prompt_tokens, sum(len(a.tokens) for a in answers)),
                               gen.w))
    yield _sse("[DONE]")
