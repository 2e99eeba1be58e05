"""Choosing every row's next token: greedy, or temperature and top-p with the row's own random generator.

Each sampled row draws from its own ``torch.Generator`` seeded from the
request, so a sampled answer depends on its seed alone, never on which other
requests share the batch or when they joined. The top-p rule is the one of
transformers' ``TopPLogitsWarper`` (keep the smallest set of tokens whose
probability reaches top_p, at least one). The repetition penalty is the one of
transformers' ``RepetitionPenaltyLogitsProcessor`` (CTRL's: a token already in the
row, prompt included, has a positive logit divided by the penalty and a negative
one multiplied), applied before the temperature, as transformers orders them.
The presence and frequency penalties are OpenAI's (and vLLM's): a token the answer
has already used c times loses ``frequency_penalty * c + presence_penalty`` from its
logit. They count the answer's tokens only, so, unlike the repetition penalty, they
never push the model off the words of the question or of a refusal's first token;
vLLM applies them after the repetition penalty, and so does this module.
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
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    counts: dict[int, int] | None = None      # the answer's token counts (kept only with either penalty)

    def see(self, token: int) -> None:
        if self.seen is not None:
            self.seen.add(token)
        if self.counts is not None:
            self.counts[token] = self.counts.get(token, 0) + 1


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


def penalise_answer_repeats(logits: torch.Tensor, samplers: Sequence[Sampler]) -> torch.Tensor:
    """``logits`` less each row's presence and frequency penalties on the tokens its answer used (a copy if any)."""
    rows = [i for i, s in enumerate(samplers) if s.counts]
    if not rows:
        return logits
    logits = logits.clone()
    for i in rows:
        s = samplers[i]
        ids = torch.tensor(list(s.counts), device=logits.device)
        counts = torch.tensor(list(s.counts.values()), device=logits.device, dtype=logits.dtype)
        logits[i, ids] -= s.frequency_penalty * counts + s.presence_penalty
    return logits


class AnswerRepeatPenalty:
    """The same presence and frequency penalties as a transformers logits processor, for plain ``generate()``:
    the answer is every column after ``prompt_len`` (prompts left-padded to one width)."""

    def __init__(self, prompt_len: int, presence_penalty: float, frequency_penalty: float):
        self.prompt_len, self.presence, self.frequency = prompt_len, presence_penalty, frequency_penalty

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        answer = input_ids[:, self.prompt_len:]
        if answer.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, answer, torch.ones_like(answer, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def next_tokens(logits: torch.Tensor, samplers: Sequence[Sampler]) -> list[int]:
    """One token per row of ``logits`` [batch, vocab] (float32)."""
    logits = penalise_answer_repeats(penalise_repetition(logits, samplers), samplers)
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
