"""Chat plumbing shared by the chat, side by side and the API: history -> messages, UI values -> settings."""

from __future__ import annotations

from ..generate import GenerationSettings
from ..validation import app_max_new_tokens, max_new_tokens, real_number


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
    """The user and assistant turns of a Chatbot history, as plain chat messages."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role in ("user", "assistant") and text_of(content).strip():
            out.append({"role": role, "content": text_of(content)})
    return out


def settings_from(temperature, max_tokens) -> GenerationSettings:
    """The app's generation controls -> settings (temperature 0 = greedy).

    ``max_tokens`` is capped by ``PARETOAPP_MAX_NEW_TOKENS``; an over-long prompt
    is refused with the library's message, never silently cut.
    """
    t = real_number(temperature or 0, "temperature")
    return GenerationSettings(max_new_tokens=max_new_tokens(max_tokens, cap=app_max_new_tokens()), do_sample=t > 0,
                              temperature=t if t > 0 else 0.7)
