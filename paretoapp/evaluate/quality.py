"""Text-quality checks on answers, independent of any reward model."""

from __future__ import annotations


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
