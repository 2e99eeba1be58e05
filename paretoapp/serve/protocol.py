"""The OpenAI chat-completions wire format: a request body in, response and stream-chunk bodies out.

Parsing checks every field a client may send and turns a bad one into one line
(the same checks as the rest of the project, ``paretoapp.validation``), which
the server answers with HTTP 400 in OpenAI's error shape, so the official
``openai`` client raises ``BadRequestError`` with that line. The preference is
the extra body field ``"w"`` (``extra_body={"w": [0.3, 0.7]}`` in the client);
every response reports the w it was answered at (snapped to the grid on vLLM).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from ..errors import InputError, shown
from ..validation import (
    answer_penalty,
    app_max_new_tokens,
    max_new_tokens,
    parse_w,
    real_number,
    repetition_penalty,
    whole_number,
)

MAX_STOP = 4          # OpenAI's limit on stop sequences
MAX_CHOICES = 16      # n: answers per request
UNSUPPORTED = {       # fields whose non-default values this server cannot honour, and why
    "tools": "tool calls are not supported by paretoapp serve",
    "functions": "function calls are not supported by paretoapp serve",
    "logprobs": "logprobs are not supported by paretoapp serve",
    "response_format": "response formats (JSON mode) are not supported by paretoapp serve",
}


@dataclass
class ChatRequest:
    """One parsed ``POST /v1/chat/completions`` body."""
    model: str
    messages: list[dict]
    w: list[float] | None = None          # None: the family's default
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None         # None: as many as fit, up to the server's cap
    temperature: float = 1.0              # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    overflow: str = "error"               # or "truncate_left": keep the prompt's last tokens
    return_token_ids: bool = False        # each choice also carries its token ids (as vLLM's extension does)
    repetition_penalty: float = 1.0       # vLLM's extension (transformers' rule); 1 = none
    presence_penalty: float = 0.0         # OpenAI's, on the answer's tokens; 0 = none
    frequency_penalty: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def parse_chat_request(body) -> ChatRequest:
    """A checked ``ChatRequest``; raises ``InputError`` (``PreferenceError`` for w) with one line."""
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object with 'model' and 'messages'")
    for name, why in UNSUPPORTED.items():
        if body.get(name) not in (None, False, [], {}) and not (name == "response_format" and
                                                                 body[name] == {"type": "text"}):
            raise InputError(f"{why}; remove '{name}' from the request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("'model' must be the name of a family; GET /v1/models lists them")
    req = ChatRequest(model=model, messages=_messages(body.get("messages")))
    if body.get("w") is not None:
        req.w = parse_w(body["w"])
    req.stream = _flag(body, "stream")
    req.return_token_ids = _flag(body, "return_token_ids")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise InputError("'stream_options' must be an object like {\"include_usage\": true}")
    req.include_usage = _flag(options, "include_usage")
    _sampling(body, req)
    if body.get("n") is not None:
        req.n = whole_number(body["n"], "n")
        if not 1 <= req.n <= MAX_CHOICES:
            raise InputError(f"n must be between 1 and {MAX_CHOICES}, got {req.n}; ask for fewer answers per request")
    overflow = body.get("overflow", "error")
    if overflow not in ("error", "truncate_left"):
        raise InputError(f"overflow must be 'error' or 'truncate_left', got {shown(overflow)}")
    req.overflow = overflow
    return req


def _sampling(body: dict, req: ChatRequest) -> None:
    """max_tokens (or max_completion_tokens), temperature, top_p, seed, stop, presence_penalty and
    frequency_penalty, as OpenAI reads them, and vLLM's repetition_penalty."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        req.max_tokens = max_new_tokens(limit, app_max_new_tokens())
    if body.get("temperature") is not None:
        req.temperature = real_number(body["temperature"], "temperature")
        if not 0 <= req.temperature <= 2:
            raise InputError(f"temperature must be between 0 and 2, got {req.temperature:g}; use 0 for greedy answers")
    if body.get("top_p") is not None:
        req.top_p = real_number(body["top_p"], "top_p")
        if not 0 < req.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {req.top_p:g}; use e.g. 0.95 (1 keeps every token)")
    if body.get("seed") is not None:
        req.seed = whole_number(body["seed"], "seed")
    if body.get("repetition_penalty") is not None:
        req.repetition_penalty = repetition_penalty(body["repetition_penalty"])
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) is not None:
            setattr(req, name, answer_penalty(body[name], name))
    req.stop = _stop(body.get("stop"))


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"'{name}' must be true or false, got {shown(value)}")
    return value


def _messages(value) -> list[dict]:
    """OpenAI messages as the project's ``{"role", "content"}`` dicts (text parts joined; developer = system)."""
    if not isinstance(value, list) or not value:
        raise InputError("'messages' must be a non-empty list like [{\"role\": \"user\", \"content\": \"Hi\"}]")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise InputError(f"message {i} is {shown(m)}; give each message as an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        role = "system" if role == "developer" else role
        if isinstance(content, list):  # content parts: only text can be read here
            texts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise InputError(f"message {i} has a content part {shown(part)}; only text parts "
                                     "({\"type\": \"text\", \"text\": ...}) are supported")
                texts.append(part["text"])
            content = "".join(texts)
        out.append({"role": role, "content": content})
    return out


def _stop(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InputError(f"'stop' must be a string or a list of strings, got {shown(value)}")
    if len(stops) > MAX_STOP:
        raise InputError(f"'stop' holds {len(stops)} sequences; give at most {MAX_STOP}")
    return [s for s in stops if s]


# ------------------------------------------------------------------ responses
def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(rid: str, created: int, model: str, answers: list[tuple[str, str]], use: dict,
                    w: list[float]) -> dict:
    """A whole ``chat.completion``: one choice per (text, finish_reason); ``w`` is the preference served."""
    return {"id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": finish} for i, (text, finish) in enumerate(answers)],
            "usage": use, "system_fingerprint": None, "w": w}


def chunk_body(rid: str, created: int, model: str, index: int, delta: dict, finish: str | None,
               w: list[float]) -> dict:
    """One ``chat.completion.chunk`` of a stream, for one choice."""
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "system_fingerprint": None, "w": w}


def usage_chunk(rid: str, created: int, model: str, use: dict, w: list[float]) -> dict:
    """The last chunk when ``stream_options.include_usage``: no choices, the usage."""
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
            "usage": use, "system_fingerprint": None, "w": w}


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error shape: the client raises with ``message`` as the error's text."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
