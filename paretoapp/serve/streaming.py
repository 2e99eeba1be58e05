"""Token ids as they come -> the text a client may already see, and why an answer ended.

Both backends hand back token ids (the engine's rows, vLLM's ``token_ids``),
and both are turned into text by ``generate.answer_text``, so an answer reads
the same whichever engine wrote it. While an answer grows, text that might
still change is held back: a trailing partial UTF-8 character (decoded as
U+FFFD) and any tail that could be the start of a stop string, so a streamed
answer never shows text that its final form drops.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..generate import answer_text

REPLACEMENT = "\ufffd"


class AnswerText:
    """One choice: its tokens so far -> the next delta of text to send."""

    def __init__(self, tokenizer, stop: Sequence[str], eos: frozenset[int], max_tokens: int):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.eos = eos
        self.max_tokens = max_tokens
        self.sent = ""
        self.tokens: list[int] = []

    def update(self, tokens: Sequence[int], final: bool = False) -> str:
        """The text to add after ``tokens`` (every token of this answer so far)."""
        self.tokens = [t for t in tokens if t not in self.eos]
        text = answer_text(self.tokenizer, self.tokens, self.stop)
        if not final:
            text = self._settled(text)
        if not text.startswith(self.sent):  # a decoding that rewrote its past: wait until it settles
            return ""
        delta, self.sent = text[len(self.sent):], text
        return delta

    def _settled(self, text: str) -> str:
        text = text.rstrip(REPLACEMENT)
        hold = max((n for s in self.stop for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        return text[: len(text) - hold]

    @property
    def finish_reason(self) -> str:
        """"length" when it used every token it was allowed (and no stop string ended it), else "stop"."""
        if len(self.tokens) < self.max_tokens:
            return "stop"
        full = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        return "stop" if any(s in full for s in self.stop) else "length"
