""""Evaluate this w": measure the current w the way the family's front was measured, on demand.

The same held-out prompts, generation settings, system prompt and scorers as
the family's results table, so the new point is comparable with the plotted
ones; it stays in the visitor's session (it is not written to the table).
"""

from __future__ import annotations

import os

import numpy as np
from scipy import stats

from ..evaluate import EvaluationError
from ..generate import GenerationSettings
from .catalog import FamilyEntry

BATCH = 32


def evaluable(entry: FamilyEntry) -> bool:
    """Whether every scorer of the family's table can run here (offline ones; Hub models only when allowed)."""
    from ..rewards import PRESETS, REGISTRY

    r = entry.results
    if r is None or r.meta.get("synthetic") or len(r.w_columns) != entry.k:
        return False
    allow_hf = os.environ.get("PARETOAPP_APP_REWARD_MODELS") == "1"
    return all(n in REGISTRY or (allow_hf and n in PRESETS) for n in r.objectives)


def evaluate_at(entry: FamilyEntry, w, progress=None) -> dict:
    """Mean and 95 % interval of every scorer at ``w`` over the table's prompts: one plot point."""
    if not evaluable(entry):
        raise EvaluationError(f"{entry.key}'s scorers cannot run in this app, so this w cannot be measured "
                              "comparably; run `paretoapp evaluate` with your reward models instead")
    r = entry.results
    first = r.rows.sort_values("prompt_id").drop_duplicates("prompt_id")
    prompts = first["prompt"].tolist()
    settings = GenerationSettings(**{k: v for k, v in r.meta["settings"].items()
                                     if k in GenerationSettings.__dataclass_fields__})
    policy = entry.policy()
    answers: list[str] = []
    for start in range(0, len(prompts), BATCH):
        if progress is not None:
            progress(start / len(prompts), desc=f"answering {len(prompts)} held-out prompts at this w")
        chunk = prompts[start:start + BATCH]
        answers += policy.generate(chunk, [list(w)] * len(chunk), settings, system_prompt=r.meta.get("system_prompt"))
    if progress is not None:
        progress(0.95, desc="scoring")
    scorers = {s.name: s for s in entry.live_scorers()}
    means, lo, hi = {}, {}, {}
    for name in r.objectives:
        x = np.asarray(scorers[name](prompts, answers), dtype=float)
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
        means[name], lo[name], hi[name] = float(x.mean()), float(x.mean() - half), float(x.mean() + half)
    return {"w": [float(v) for v in w], "means": means, "lo": lo, "hi": hi, "n": len(prompts)}
