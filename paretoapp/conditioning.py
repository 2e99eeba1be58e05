"""Prompt conditioning c(w): preference-dependent text added to the prompt.

Rewards-in-Context (arXiv 2402.10207) trains on prompts that carry the
response's reward scores, `{prompt} <rm1_score> {s1} <rm2_score> {s2}`, and at
inference asks for target scores derived from w. Training and inference share
this one renderer, so the text the model learned is exactly the text it gets.

The preference-to-target mappings are those of the released code
(``map_rewards_from_preference`` in ``YangRui2015/RiC``, ``ric/utils.py``), with
low_i/high_i the min/max of a reference sample of objective i and every target
rounded to 0.1 (``np.round``):

    linear: t_i = low_i + w_i (high_i - low_i)
    l2:     t_i = low_i + (w_i / ||w||_2) (high_i - low_i)      (the released evaluation's choice)
    linf:   the largest w_j (first on ties) asks for high_j; every other
            t_i = low_i + min(k w_i, 1) (high_i - low_i)        (the function's default)

The reference sample is the training data's normalised scores, or, as the
released evaluation does, 50,000 standard-normal draws per objective
(``normal_bounds``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAPPINGS = ("linear", "l2", "linf")
NORMAL_SEED = 8888      # the released evaluation's set_seed(8888) before drawing its reference rewards
NORMAL_DRAWS = 50_000   # np.random.randn(50000) per objective


def normal_bounds(k: int, seed: int = NORMAL_SEED, draws: int = NORMAL_DRAWS) -> tuple[list[float], list[float]]:
    """low/high as RiC's released evaluation takes them: min/max of ``draws`` standard-normal samples per objective.

    The samples come one objective after the other from numpy's legacy generator
    seeded with ``seed``, as ``np.random.seed(8888); [np.random.randn(50000) for _ in objectives]``
    draws them; with the defaults, about (-3.87, 4.06) and (-4.04, 4.17) for k = 2.
    """
    rng = np.random.RandomState(seed)
    samples = [rng.randn(draws) for _ in range(k)]
    return [float(x.min()) for x in samples], [float(x.max()) for x in samples]


@dataclass
class Conditioning:
    """Reward tags appended to the user prompt; targets are mapped from w."""

    tags: list[str]
    low: list[float]
    high: list[float]
    mapping: str = "linear"
    decimals: int = 1
    kind: str = "reward_tags"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind != "reward_tags":
            raise ValueError(f"unknown conditioning kind {self.kind!r}; only 'reward_tags' is supported")
        if not (len(self.tags) == len(self.low) == len(self.high)):
            raise ValueError("conditioning needs one tag, one low and one high value per objective")
        if self.mapping not in MAPPINGS:
            hint = "; 'max' was replaced by the released code's 'linf'" if self.mapping == "max" else ""
            raise ValueError(f"unknown conditioning mapping {self.mapping!r}; expected one of {MAPPINGS}{hint}")

    def targets(self, w: Sequence[float]) -> list[float]:
        """Target scores for preference w, as the released ``map_rewards_from_preference`` computes them."""
        w = np.array([float(v) for v in w])
        low, high = np.array(self.low, dtype=np.float64), np.array(self.high, dtype=np.float64)
        if self.mapping == "l2":
            norm = np.sqrt(np.sum(w ** 2))
            share = w / norm if norm > 0 else np.zeros_like(w)
        elif self.mapping == "linf":
            share = np.minimum(len(w) * w, 1.0)
        else:
            share = w
        t = share * (high - low) + low
        if self.mapping == "linf":
            top = int(np.argmax(w))
            t[top] = high[top]
        return [float(v) for v in np.round(t, self.decimals)]

    def render(self, prompt: str, scores: Sequence[float]) -> str:
        """`{prompt} <tag1> s1 <tag2> s2`, scores rounded as in training."""
        parts = [f"{tag} {self._round(s):.{self.decimals}f}" for tag, s in zip(self.tags, scores)]
        return f"{prompt} {' '.join(parts)}"

    def _round(self, score: float) -> float:
        """Half away from zero, robust to float noise: -0.75 in float32 is -0.7500000298 or -0.7499999702."""
        scale = 10 ** self.decimals
        v = abs(float(score)) * scale
        return math.copysign(math.floor(v + 0.5 + 1e-6) / scale, float(score)) + 0.0  # no "-0.0"

    def apply(self, prompt: str, w: Sequence[float]) -> str:
        return self.render(prompt, self.targets(w))

    def parse(self, text: str) -> tuple[str, list[float]]:
        """Inverse of ``render``: recover the prompt and the scores."""
        pattern = r"\s" + r"\s".join(re.escape(t) + r" (-?\d+(?:\.\d+)?)" for t in self.tags) + r"$"
        m = re.search(pattern, text)
        if not m:
            raise ValueError("text carries no reward tags of this conditioning")
        return text[: m.start()], [float(g) for g in m.groups()]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tags": self.tags, "low": self.low, "high": self.high,
                "mapping": self.mapping, "decimals": self.decimals, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> Conditioning:
        return cls(**d)
