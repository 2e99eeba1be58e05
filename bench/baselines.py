"""The ways of generating a front that the per-row bank replaces (what ``bench/front_eval.py`` measures)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def generate_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings, system_prompt: str | None = None,
                   batch_size: int = 64) -> list[list[str]]:
    """The same answers, one preference at a time (every row of a batch has the same w): a reference."""
    out = []
    for w in grid:
        texts: list[str] = []
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            texts += policy.generate(chunk, [list(w)] * len(chunk), settings=settings, system_prompt=system_prompt)
        out.append(texts)
    return out


def generate_merged_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings,
                          system_prompt: str | None = None, batch_size: int = 64) -> list[list[str]]:
    """The "one model per w" baseline: merge W0 + B diag(g(w)) A into a plain model for each w, then generate.

    What evaluating a front costs without a per-row bank (Rewarded Soups' way);
    used by ``bench/front_eval.py``.
    """
    out = []
    for w in grid:
        merged = policy.bank.merged_model(list(w)).to(policy.device)
        texts: list[str] = []
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            texts += policy.generate(chunk, [list(w)] * len(chunk), settings=settings, system_prompt=system_prompt,
                                     model=merged)
        out.append(texts)
        del merged
    return out
