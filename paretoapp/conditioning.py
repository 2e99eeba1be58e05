"""Prompt conditioning c(w): preference-dependent text added to the prompt.

Rewards-in-Context (arXiv 2402.10207) trains on prompts that carry the
response's reward scores, `{prompt} <rm1_score> {s1} <rm2_score> {s2}`, and at
inference asks for target scores derived from w. Training and inference share
this one renderer, so the text the model learned is exactly the text it gets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

MAPPINGS = ("linear", "max")


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
            raise ValueError(f"unknown conditioning mapping {self.mapping!r}; expected one of {MAPPINGS}")

    def targets(self, w: Sequence[float]) -> list[float]:
        """Map a preference to target scores.

        linear: target_i = low_i + w_i (high_i - low_i)   (RiC's default)
        max:    the same with w divided by max(w), so the preferred objective
                always asks for its best score (RiC's max-based mapping).
        """
        w = [float(v) for v in w]
        if self.mapping == "max":
            top = max(w) if max(w) > 0 else 1.0
            w = [v / top for v in w]
        return [lo + wi * (hi - lo) for wi, lo, hi in zip(w, self.low, self.high)]

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
