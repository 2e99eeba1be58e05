"""The scorer interface and sums of scorers (the objectives built from parts)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScorerError


class Scorer:
    """Maps (prompt, response) pairs to one float per row."""

    name: str = "scorer"
    higher_is_better: bool = True
    description: str = ""

    def spec(self) -> dict:
        """What determines the scores (for cache keys); subclasses add their settings."""
        return {"type": type(self).__name__, "name": self.name, "higher_is_better": self.higher_is_better}

    def _score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        prompts, responses = list(prompts), list(responses)
        if len(prompts) != len(responses):
            raise ScorerError(
                f"scorer {self.name!r} got {len(prompts)} prompts but {len(responses)} responses; pass one prompt per response"
            )
        if not prompts:
            return np.zeros(0, dtype=np.float64)
        out = np.asarray(self._score(prompts, responses), dtype=np.float64).reshape(-1)
        if out.shape[0] != len(prompts):  # a bug in a scorer, not in the input
            raise RuntimeError(f"scorer {self.name!r} returned {out.shape[0]} scores for {len(prompts)} rows")
        return out

    def __repr__(self) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return f"<{type(self).__name__} {self.name!r} ({arrow})>"


class Combination(Scorer):
    """offset + sum_i weight_i * scorer_i(prompt, response): for objectives built from parts.

    ``Combination("harmless_offline", [(0.5, refusal), (-0.5, profanity)], offset=0.5)``
    is 0.5 * refusal + 0.5 * (1 - profanity).
    """

    def __init__(self, name: str, terms: list[tuple[float, Scorer]], offset: float = 0.0,
                 higher_is_better: bool = True, description: str = ""):
        self.name, self.terms, self.offset = name, list(terms), float(offset)
        self.higher_is_better, self.description = higher_is_better, description

    def spec(self) -> dict:
        return {**super().spec(), "offset": self.offset, "terms": [(w, s.spec()) for w, s in self.terms]}

    def _score(self, prompts, responses):
        total = np.full(len(prompts), float(self.offset))
        for weight, scorer in self.terms:
            total += weight * scorer(prompts, responses)
        return total


def hash_strings(items: Sequence[str]) -> str:
    """A short digest of a list of strings, for a scorer's spec (a changed phrase list re-scores the cache)."""
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


@dataclass
class ScorerContext:
    """What some scorers need from the evaluation: the base causal LM for ``relevance``, a device."""

    causal_lm: object | None = None
    tokenizer: object | None = None
    model_id: str = ""
    system_prompt: str | None = None
    device: str | None = None
    show_progress: bool = True
    cache: dict = field(default_factory=dict)
    allow_pickle: bool | None = None  # reward models with only pickle weights (--allow-pickle); None: the setting
    # {normalised prompt: kind} for prompts whose kind is known (a prompts file's "kind" column): the
    # appropriate_refusal scorer uses these labels and guesses only the others (scorers.prompt_kinds)
    prompt_kinds: dict = field(default_factory=dict)
