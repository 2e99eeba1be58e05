"""The relevance scorer: is the answer specific to *this* prompt, by the base causal LM's likelihoods."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ScorerError
from .base import Scorer
from .batching import device_of, length_sorted_batches, progress, right_pad


class RelevanceScorer(Scorer):
    """Mean over answer tokens of log p(y_t | chat(prompt)) - log p(y_t | chat(generic prompt)).

    How much more the (base) causal LM expects this answer after *this* prompt
    than after a generic request: an answer that addresses the prompt scores
    high (~0.6 on SmolLM2), a refusal low (~-0.4), an answer to another question
    near -0.1.  The model is run with no preference bound, so a policy model
    with a bank attached scores as its base model.  Empty answers score 0.
    Both sequences of a row go in one right-padded batch; logits are computed
    only at answer positions (the vocabulary is large).
    """

    name = "relevance"
    description = "answer is specific to the prompt (base-LM log-likelihood ratio)"

    def __init__(
        self,
        model,
        tokenizer,
        generic_prompt: str = "Write a response.",
        system_prompt: str | None = None,
        batch_size: int = 8,
        max_answer_tokens: int = 256,
        max_context_tokens: int = 512,
        model_id: str = "",
        show_progress: bool = True,
    ):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ScorerError("the relevance scorer needs a chat model whose tokenizer has a chat template")
        self.model, self.tokenizer = model, tokenizer
        self.generic_prompt, self.system_prompt = generic_prompt, system_prompt
        self.batch_size, self.max_answer_tokens, self.max_context_tokens = batch_size, max_answer_tokens, max_context_tokens
        self.model_id = model_id or getattr(getattr(model, "config", None), "_name_or_path", "")
        self.show_progress = show_progress

    def spec(self) -> dict:
        return {
            **super().spec(),
            "model": self.model_id,
            "generic_prompt": self.generic_prompt,
            "system_prompt": self.system_prompt,
            "max_answer_tokens": self.max_answer_tokens,
        }

    def _context_ids(self, prompt: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-self.max_context_tokens :]

    @torch.no_grad()
    def answer_logprobs(self, contexts: list[list[int]], answers: list[list[int]]) -> np.ndarray:
        """Mean log p(answer token | context, earlier answer tokens) per row (0 for empty answers)."""
        model = self.model
        device = device_of(model)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lm_head = model.get_output_embeddings()
        out = np.zeros(len(contexts))
        rows = [c + a for c, a in zip(contexts, answers)]
        for batch in length_sorted_batches([len(r) for r in rows], self.batch_size * 2):
            batch = [i for i in batch if answers[i]]
            if not batch:
                continue
            ids, mask = right_pad([rows[i] for i in batch], pad, device)
            hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            # position p predicts token p + 1: answer tokens sit at [len(ctx), len(ctx) + len(ans))
            pos_r, pos_t, targets = [], [], []
            for r, i in enumerate(batch):
                start = len(contexts[i])
                for j in range(len(answers[i])):
                    pos_r.append(r)
                    pos_t.append(start + j - 1)
                    targets.append(answers[i][j])
            logits = lm_head(hidden[torch.tensor(pos_r, device=device), torch.tensor(pos_t, device=device)]).float()
            token_lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]
            sums = torch.zeros(len(batch), dtype=torch.float64, device=device)
            sums.index_add_(0, torch.tensor(pos_r, device=device), token_lp.double())
            for r, i in enumerate(batch):
                out[i] = float(sums[r]) / len(answers[i])
        return out

    def _score(self, prompts, responses):
        # a front repeats many answers (neighbouring preferences often answer alike): score each
        # distinct (prompt, response) once
        keys = list(zip(prompts, responses))
        unique = list(dict.fromkeys(keys))
        if len(unique) < len(keys):
            values = dict(zip(unique, self._score_unique([p for p, _ in unique], [r for _, r in unique])))
            return np.array([values[k] for k in keys])
        return self._score_unique(prompts, responses)

    def _score_unique(self, prompts, responses):
        generic = self._context_ids(self.generic_prompt)
        answers = [self.tokenizer(r, add_special_tokens=False)["input_ids"][: self.max_answer_tokens] for r in responses]
        contexts = [self._context_ids(p) for p in prompts]
        n = len(prompts)
        chunk = max(1, self.batch_size * 8)
        out = np.zeros(n)
        for s in progress(range(0, n, chunk), f"scoring {self.name}", self.show_progress and n > chunk):
            e = min(n, s + chunk)
            lp = self.answer_logprobs(contexts[s:e] + [generic] * (e - s), answers[s:e] * 2)
            out[s:e] = lp[: e - s] - lp[e - s :]
        return out
