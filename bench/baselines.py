"""The ways of generating a front that the per-row bank replaces (what ``bench/front_eval.py`` measures)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def generate_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings, system_prompt: str | None = None,
                   batch_size: int = 64) -> list[list[str]]:
    """The same answers, one preference at a time (one engine job per w, ``batch_size`` rows at once): a reference."""
    return [policy.generate(list(prompts), [list(w)] * len(prompts), settings=settings, system_prompt=system_prompt,
                            batch_size=batch_size) for w in grid]


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


_PLAIN: dict[int, object] = {}


def generate_merged_engine_per_w(policy, prompts: Sequence[str], grid: np.ndarray, settings,
                                 system_prompt: str | None = None, batch_size: int = 64) -> list[list[str]]:
    """Merging per w, served as well as the bank is: the strongest "one model per w" baseline.

    One plain model per policy (made once); for each w its adapted weights are
    overwritten in place with W0 + B diag(g(w)) A, so its engine (and on CUDA
    the graphs it captured) stays valid, and the engine generates that w's
    prompts, at most ``batch_size`` at a time.
    """
    import torch

    from paretoapp.bank import bank_layers
    from paretoapp.engine import engine_for

    plain = _PLAIN.get(id(policy))
    if plain is None:
        plain = _PLAIN[id(policy)] = policy.bank.merged_model(list(grid[0])).to(policy.device)
    adapted = [f"{name}.weight" for name, layer in bank_layers(policy.model).items() if policy.bank.bank_id in layer.banks]
    out = []
    for w in grid:
        merged = policy.bank.merged_state_dict(list(w))
        with torch.no_grad():
            for key in adapted:
                plain.get_parameter(key).copy_(merged[key])
        rows = policy.rows(list(prompts), [list(w)] * len(prompts), settings, system_prompt)
        for row in rows:
            row.gains = None
        job = engine_for(plain).submit(rows, tokenizer=policy.tokenizer, max_active=batch_size)
        out.append(policy.texts(job.result(), settings))
    return out


def generate_front_hf(policy, prompts: Sequence[str], grid: np.ndarray, settings, system_prompt: str | None = None,
                      batch_size: int = 64) -> list[list[str]]:
    """The front as it was generated before the engine: transformers' ``generate`` on fixed batches of
    per-row-w rows (longest prompts first), each batch running until its longest answer ends."""
    import torch

    from paretoapp.evaluate.front import _generation_order

    order = _generation_order(policy, prompts, len(grid))
    answers = [[""] * len(prompts) for _ in grid]
    for s in range(0, len(order), batch_size):
        batch = order[s: s + batch_size]
        w = torch.tensor([list(grid[wi]) for wi, _ in batch], dtype=torch.float64)
        enc = policy.encode([prompts[pi] for _, pi in batch], w, settings, system_prompt)
        with torch.inference_mode(), policy.bank.preference(w):
            out = policy.model.generate(**enc, **policy._generate_kwargs(settings, enc["input_ids"].shape[1]))
        for (wi, pi), row in zip(batch, out[:, enc["input_ids"].shape[1]:]):
            answers[wi][pi] = policy.texts([row], settings)[0]
    return answers
