"""Choosing every row's next token: greedy, or temperature and top-p with the row's own random generator.

Each sampled row draws from its own ``torch.Generator`` seeded from the
request, so a sampled answer depends on its seed alone, never on which other
requests share the batch or when they joined. The top-p rule is the one of
transformers' ``TopPLogitsWarper`` (keep the smallest set of tokens whose
probability reaches top_p, at least one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Sampler:
    """How one row picks its tokens."""
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    generator: torch.Generator | None = None  # on the logits' device; required when sampling


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed) % (2**63))


def top_p_filter(scores: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """``scores`` [n, V] with the tokens outside each row's nucleus set to -inf; ``top_p`` [n, 1]."""
    sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


def next_tokens(logits: torch.Tensor, samplers: Sequence[Sampler]) -> list[int]:
    """One token per row of ``logits`` [batch, vocab] (float32)."""
    tokens = logits.argmax(dim=-1)
    sampled = [i for i, s in enumerate(samplers) if s.do_sample]
    if sampled:
        idx = torch.tensor(sampled, device=logits.device)
        temps = torch.tensor([[samplers[i].temperature] for i in sampled], device=logits.device, dtype=logits.dtype)
        top_p = torch.tensor([[samplers[i].top_p] for i in sampled], device=logits.device, dtype=logits.dtype)
        probs = top_p_filter(logits.index_select(0, idx) / temps, top_p).softmax(dim=-1)
        for j, i in enumerate(sampled):
            tokens[i] = torch.multinomial(probs[j], 1, generator=samplers[i].generator)[0]
    return tokens.tolist()
