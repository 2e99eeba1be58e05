"""Choosing every row's next token: greedy, or temperature and top-p with the row's own random generator.

Each sampled row draws from its own ``torch.Generator`` seeded from the
request, so a sampled answer depends on its seed alone, never on which other
requests share the batch or when they joined. The top-p rule is the one of
transformers' ``TopPLogitsWarper`` (keep the smallest set of tokens whose
probability reaches top_p, at least one). The repetition penalty is the one of
transformers' ``RepetitionPenaltyLogitsProcessor`` (CTRL's: a token already in the
row, prompt included, has a positive logit divided by the penalty and a negative
one multiplied), applied before the temperature, as transformers orders them.
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
    repetition_penalty: float = 1.0
    seen: set[int] | None = None              # the row's token ids so far (kept only with a penalty)

    def see(self, token: int) -> None:
        if self.seen is not None:
            self.seen.add(token)


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed) % (2**63))


def top_p_filter(scores: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """``scores`` [n, V] with the tokens outside each row's nucleus set to -inf; ``top_p`` [n, 1]."""
    sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


def penalise_repetition(logits: torch.Tensor, samplers: Sequence[Sampler]) -> torch.Tensor:
    """``logits`` with each row's already-seen tokens penalised by its ``repetition_penalty`` (a copy if any)."""
    rows = [i for i, s in enumerate(samplers) if s.repetition_penalty != 1.0 and s.seen]
    if not rows:
        return logits
    logits = logits.clone()
    for i in rows:
        ids = torch.tensor(sorted(samplers[i].seen), device=logits.device)
        score = logits[i, ids]
        p = samplers[i].repetition_penalty
        logits[i, ids] = torch.where(score < 0, score * p, score / p)
    return logits


def next_tokens(logits: torch.Tensor, samplers: Sequence[Sampler]) -> list[int]:
    """One token per row of ``logits`` [batch, vocab] (float32)."""
    logits = penalise_repetition(logits, samplers)
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
