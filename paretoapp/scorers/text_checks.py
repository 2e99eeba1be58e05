"""Checks on the answer's text alone: loops, collapse, length; and the scorers built on them.

No model and no download: these are the rules the ``degenerate`` scorer, the demo's pairs and
checks, PEO's search guard and the evaluation's ``collapsed`` column share.
"""

from __future__ import annotations

import re

from .base import Scorer

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
# a unit of 1-60 characters repeated back to back at least 4 times (e.g. "1.1.1.1.1", "sorry, sorry, ...")
_CHAR_REPEAT = re.compile(r"(.{1,60}?)\1{3,}", re.DOTALL)


def is_collapsed(text: str, min_words: int = 3, n: int = 3, max_repeat: float = 0.5) -> bool:
    """A "language collapse" answer (ParetoHqD): near-empty, or mostly repeated word n-grams.

    Near-empty: fewer than ``min_words`` words.  Repetitive: more than
    ``max_repeat`` of its word ``n``-grams are repeats of an earlier one.
    """
    words = text.split()
    if len(words) < min_words:
        return True
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return False
    return 1.0 - len(set(grams)) / len(grams) > max_repeat


def is_loop(text: str, min_sentence_words: int = 3, min_span: int = 16) -> bool:
    """A repeated-phrase loop: the same sentence (>= ``min_sentence_words`` words) twice, or a unit
    with a letter or digit repeated >= 4 times back to back over >= ``min_span`` characters.

    "I'm sorry, but I can't help. I'm sorry, but I can't help. I'm" and "1. **1.1.1.1.1.1.1.1" are
    loops; a list whose items share a start ("- Use ...", "- Use ...") or a "-----" rule is not.
    """
    sentences = [" ".join(re.sub(r"[^\w\s']", " ", s).lower().split()) for s in _SENTENCE_SPLIT.split(text)]
    seen = set()
    for s in sentences:
        if len(s.split()) < min_sentence_words:
            continue
        if s in seen:
            return True
        seen.add(s)
    for m in _CHAR_REPEAT.finditer(text):
        if len(m.group(0)) >= min_span and re.search(r"[A-Za-z0-9]", m.group(1)):
            return True
    return False


def is_degenerate(text: str) -> bool:
    """A loop (:func:`is_loop`) or a collapse (:func:`is_collapsed`: near-empty or mostly repeated word
    trigrams): the one rule the ``degenerate`` scorer, the demo's pairs and checks and PEO's search guard
    share."""
    return is_loop(text) or is_collapsed(text)


class LengthScorer(Scorer):
    """Number of whitespace-separated words in the response (tokenizer-independent)."""

    name = "length_words"
    description = "answer length in words"

    def _score(self, prompts, responses):
        return [len(r.split()) for r in responses]


class DegenerateScorer(Scorer):
    """1.0 for a degenerate answer: a repeated-phrase loop (:func:`is_loop`) or a collapse
    (:func:`is_collapsed`: near-empty, or mostly repeated word trigrams); else 0."""

    name = "degenerate"
    higher_is_better = False
    description = "loop or collapse (repeated phrases, near-empty)"

    def _score(self, prompts, responses):
        return [float(is_degenerate(r)) for r in responses]


class DetailScorer(Scorer):
    """Length as a stand-in for detail: words / ``max_words`` (capped at 1), and 0 for a degenerate answer.

    The demo's third objective. It pulls against ``helpful_offline``, whose relevance is a per-token mean: on
    the demo's candidate answers to benign questions the longer answer is the less relevant one (within-prompt
    correlation -0.56: longer answers drift from the question). Length is not quality, and a loop is long:
    a degenerate answer scores 0."""

    name = "detailed_offline"
    description = ("length as a stand-in for detail: words/48 (1 at 48 words or more), 0 for a degenerate answer "
                   "(loop, collapse, empty)")

    def __init__(self, max_words: int = 48):
        self.max_words = int(max_words)

    def spec(self) -> dict:
        return {**super().spec(), "max_words": self.max_words}

    def _score(self, prompts, responses):
        return [0.0 if is_degenerate(r) else min(1.0, len(r.split()) / self.max_words) for r in responses]
