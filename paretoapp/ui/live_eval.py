""""Evaluate this w": measure the current w the way the family's front was measured, on demand.

The same held-out prompts, generation settings, system prompt and scorers as
the family's results table, so the new point is comparable with the plotted
ones; it stays in the visitor's session (it is not written to the table).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .. import settings
from ..evaluate import EvaluationError
from ..generate import GenerationSettings
from .catalog import FamilyEntry

BATCH = 32


def evaluable(entry: FamilyEntry) -> bool:
    """Whether every scorer of the family's table can run here (offline ones; Hub models only when allowed)."""
    from ..scorers import PRESETS, REGISTRY

    r = entry.results
    if r is None or r.meta.get("synthetic") or len(r.w_columns) != entry.k:
        return False
    allow_hf = settings.APP_REWARD_MODELS.get()
    return all(n in REGISTRY or (allow_hf and n in PRESETS) for n in r.objectives)


def _answer(entry: FamilyEntry, prompts: list[str], ws: list[list[float]], progress, desc: str) -> list[str]:
    """Answers as the family's results were generated (same settings and system prompt), at most ``BATCH`` rows
    at once. ``progress`` moves with the tokens written (up to 0.9; scoring follows), not once per batch: one
    batch of a few prompts took half a minute at 0 %."""
    r = entry.results
    settings = GenerationSettings(**{k: v for k, v in r.meta["settings"].items()
                                     if k in GenerationSettings.__dataclass_fields__})
    policy = entry.policy()
    job = policy.submit(prompts, ws, settings, system_prompt=r.meta.get("system_prompt"), batch_size=BATCH)
    if progress is not None:
        progress(0.0, desc=desc)
        budget = len(prompts) * settings.max_new_tokens
        for tokens in job.updates(min_interval=0.5):
            progress(0.9 * sum(len(t) for t in tokens) / budget, desc=desc)
        progress(0.95, desc="scoring")
    return policy.texts(job.result(), settings)


def evaluate_at(entry: FamilyEntry, w, progress=None) -> dict:
    """Mean and 95 % interval of every scorer at ``w`` over the table's prompts: one plot point."""
    if not evaluable(entry):
        raise EvaluationError(f"{entry.key}'s scorers cannot run in this app, so this w cannot be measured "
                              "comparably; run `paretoapp evaluate` with your reward models instead")
    r = entry.results
    prompts = r.rows.sort_values("prompt_id").drop_duplicates("prompt_id")["prompt"].tolist()
    answers = _answer(entry, prompts, [list(w)] * len(prompts), progress,
                      f"answering {len(prompts)} held-out prompts at this w")
    scorers = {s.name: s for s in entry.live_scorers()}
    means, lo, hi = {}, {}, {}
    for name in r.objectives:
        x = np.asarray(scorers[name](prompts, answers), dtype=float)
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
        means[name], lo[name], hi[name] = float(x.mean()), float(x.mean() - half), float(x.mean() + half)
    return {"w": [float(v) for v in w], "means": means, "lo": lo, "hi": hi, "n": len(prompts)}


def prompt_front(entry: FamilyEntry, prompt: str):
    """One held-out prompt across the evaluated w, read from the results table: w, scores, answer per row."""
    r = entry.results
    rows = r.rows[r.rows["prompt"] == prompt]
    if rows.empty:
        raise EvaluationError(f"{prompt[:60]!r} is not one of {entry.key}'s held-out prompts; pick one from the list")
    return rows.sort_values("w_idx")[[*r.w_columns, *r.objectives, "response"]].reset_index(drop=True)


def evaluate_prompt(entry: FamilyEntry, prompt: str, progress=None):
    """A prompt the visitor typed, answered at every evaluated w in one batch and scored by the live scorers."""
    import pandas as pd

    if not evaluable(entry):
        raise EvaluationError(f"{entry.key}'s scorers cannot run in this app; pick a held-out prompt instead")
    prompt = (prompt or "").strip()
    if not prompt:
        raise EvaluationError("type a prompt to evaluate across the front")
    r = entry.results
    W = r.means[r.w_columns].to_numpy(float)
    answers = _answer(entry, [prompt] * len(W), W.tolist(), progress, f"answering at {len(W)} evaluated w")
    scorers = {s.name: s for s in entry.live_scorers()}
    table = pd.DataFrame(W, columns=r.w_columns)
    for name in r.objectives:
        table[name] = np.asarray(scorers[name]([prompt] * len(answers), answers), dtype=float)
    table["response"] = answers
    guess = prompt_kind(scorers.values(), prompt)
    table.attrs["kind"] = guess.text() if guess else None
    return table


def prompt_kind(scorers, prompt: str):
    """The kind a family's scorers take a typed prompt to be (a :class:`~paretoapp.scorers.KindGuess`), when one
    of them is prompt-aware (``appropriate_refusal``, alone or inside ``harmless_offline``); else None."""
    from ..scorers import AppropriateRefusalScorer

    for scorer in scorers:
        for part in [scorer, *(term for _, term in getattr(scorer, "terms", ()))]:
            if isinstance(part, AppropriateRefusalScorer):
                return part.kinds([prompt])[0]
    return None
