"""Chat plumbing shared by the chat, side by side and the API.

Every answer in the chat ends with a small label naming the family and the w
that produced it (and a link that opens the app there); ``history_messages``
strips the labels again before the conversation goes back to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from .. import settings
from ..errors import InputError
from ..generate import PENALTY_NONE, GenerationSettings
from ..validation import app_max_new_tokens, max_new_tokens, real_number

LABEL_START = "\n\n<sub class='pa-w-label'>"
_LABEL = re.compile(r"\n\n<sub class='pa-w-label'>(?P<body>.*?)</sub>\s*$", re.S)
_LABEL_W = re.compile(r"^answered by (?P<family>.+?) at w = \((?P<w>[^)]*)\)")


def prompt_budget() -> int:
    """The most prompt tokens the app reads for one answer (``PARETOAPP_MAX_PROMPT_TOKENS``, default 2048):
    past that a CPU spends minutes reading before the first token."""
    return settings.MAX_PROMPT_TOKENS.get()


def share_query(family: str, w) -> str:
    """The query string that opens the app on ``family`` at ``w`` (``?family=...&w=a,b``)."""
    return f"?family={quote(family)}&w={','.join(f'{float(v):g}' for v in w)}"


def w_label(family: str, names, w, note: str = "") -> str:
    """The label under an answer: family, w (objective by objective), a link to open the app at that w."""
    ws = ", ".join(f"{float(v):g}" for v in w)
    parts = " · ".join(f"{n} {float(v):g}" for n, v in zip(names, w))
    extra = f" · {note}" if note else ""
    return (f"{LABEL_START}answered by {family} at w = ({ws}) · {parts}{extra} · "
            f"<a href='{share_query(family, w)}' target='_blank'>link</a> · click the answer to use this w again</sub>")


def parse_label(text: str) -> tuple[str, list[float]] | None:
    """(family, w) from an answer's label, or None for a message without one."""
    m = _LABEL.search(text or "")
    found = _LABEL_W.search(m.group("body")) if m else None
    if not found:
        return None
    try:
        return found.group("family"), [float(v) for v in found.group("w").split(",")]
    except ValueError:
        return None


def without_label(text: str) -> str:
    return _LABEL.sub("", text or "")


# a line that is only a list or heading marker ("1.", "-", "##") renders as an empty item: the bubble looks empty
_BARE_MARKER = re.compile(r"^([ \t]{0,3})(\d{1,9})?([.)]|[-*+]|#{1,6})[ \t]*$", re.M)
_ESCAPED_MARKER = re.compile(r"^([ \t]{0,3})(\d{1,9})?\\([.)]|[-*+]|#{1,6})[ \t]*$", re.M)


def as_shown(text: str) -> str:
    """An answer as the chat's Markdown shows it: a line that is only a list or heading marker ("1.", "-")
    gets its mark escaped, so it reads as itself instead of an empty list item."""
    return _BARE_MARKER.sub(lambda m: m[0] if m[2] is None and m[3] in ".)" else f"{m[1]}{m[2] or ''}\\{m[3]}", text)


def as_said(text: str) -> str:
    """The inverse of ``as_shown``: the answer as the model wrote it (for the conversation sent back)."""
    return _ESCAPED_MARKER.sub(lambda m: f"{m[1]}{m[2] or ''}{m[3]}", text)


def text_of(content) -> str:
    """Chatbot message content (a string, or a list of blocks through the API) -> text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(text_of(c) for c in content)
    return "" if content is None else str(content)


def history_messages(history) -> list[dict]:
    """The user and assistant turns of a Chatbot history, as plain chat messages (labels removed)."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = as_said(without_label(text_of(content))) if role == "assistant" else text_of(content)
        if role in ("user", "assistant") and text.strip():
            out.append({"role": role, "content": text})
    return out


def fit_conversation(count_tokens, convo: list[dict], budget: int) -> tuple[list[dict], int, int]:
    """Drop the oldest turns until the conversation fits ``budget`` tokens.

    Returns (the conversation that fits, its token count, how many earlier turns
    were dropped). The last message is never dropped: if it alone does not fit,
    the count returned is over the budget and the caller says so.
    """
    dropped = 0
    while True:
        n = count_tokens(convo)
        if n <= budget or len(convo) <= 1:
            return convo, n, dropped
        cut = 2 if len(convo) > 2 and convo[0]["role"] == "user" else 1
        convo, dropped = convo[cut:], dropped + cut


# the penalties the app's environment can set for every answer
APP_PENALTIES = {"repetition_penalty": settings.REPETITION_PENALTY, "presence_penalty": settings.PRESENCE_PENALTY}


def penalties(measured: Mapping[str, float] | None = None) -> dict[str, float]:
    """The decoding penalties an answer uses: the environment's where it sets one, else those the family's front
    was measured with (``FamilyEntry.measured_penalties``), else none; so the chat answers as the card says."""
    out = {**PENALTY_NONE, **(measured or {})}
    out.update({name: s.get() for name, s in APP_PENALTIES.items() if s.is_set()})
    return out


def settings_from(temperature, max_tokens, measured: Mapping[str, float] | None = None) -> GenerationSettings:
    """The app's generation controls -> settings (temperature 0 = greedy), with :func:`penalties`.

    ``max_tokens`` is capped by ``PARETOAPP_MAX_NEW_TOKENS``; an over-long prompt
    is refused with the library's message, never silently cut.
    """
    t = real_number(temperature or 0, "temperature")
    if t < 0:
        raise InputError(f"temperature {t:g} is negative; give 0 for greedy decoding or a positive number like 0.7")
    return GenerationSettings(max_new_tokens=max_new_tokens(max_tokens, cap=app_max_new_tokens()), do_sample=t > 0,
                              temperature=t if t > 0 else 0.7, **penalties(measured))
