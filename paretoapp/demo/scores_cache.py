"""The demo's scorers, served from the scores its data already hold.

The candidates' scores were computed once, when the data were made; a trainer that scores the pairs'
answers again reads them here instead of recomputing them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from .data import SCORERS, TEXT_SCORERS, DemoData


class CandidateScores:
    """One of the demo's scorers that reads the scores ``candidates.jsonl`` already holds for the data's answers
    (the same scorer, run once when the data were made) and runs the scorer itself only on answers not there.

    ParetoHqD and RiC score every answer of the pairs before training; with relevance on a CPU that is minutes
    spent recomputing numbers the data already have."""

    higher_is_better = True

    def __init__(self, name: str, objective: str, candidates: list[dict], make_scorer):
        self.name, self._make, self._scorer = name, make_scorer, None
        self._known = {(r["prompt"], r["response"]): float(r[objective]) for r in candidates if objective in r}

    def __call__(self, prompts, responses):
        import numpy as np

        out = [self._known.get((p, r)) for p, r in zip(prompts, responses)]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            self._scorer = self._scorer or self._make()
            fresh = self._scorer([prompts[i] for i in missing], [responses[i] for i in missing])
            for i, v in zip(missing, np.asarray(fresh, dtype=float)):
                out[i] = float(v)
        return np.asarray(out, dtype=float)


def cached_scorers(cfg, data: DemoData, scorers: Sequence[str]) -> list[CandidateScores]:
    """The demo's scorers ``scorers``, reading the data's scores first: what a trainer that scores the data's
    answers (``train(cfg, scorers=...)``: ParetoHqD, RiC) is handed."""
    from paretoapp.trainers.multi_objective import build_objective_scorers

    by_scorer = {v: k for k, v in {**SCORERS, **TEXT_SCORERS}.items()}  # a text scorer's column is not cached
    return [CandidateScores(name, by_scorer[name], data.candidates,
                            lambda name=name: build_objective_scorers([name], cfg, 1, "the demo")[0])
            for name in scorers]


def takes_scorers(cfg, train_fn) -> bool:
    """Whether a method scores with one scorer per objective (its config's ``scorers``) and its ``train`` takes
    them ready-made (``train(cfg, scorers=...)``): then the demo hands it cached ones. (UPO's ``scorers`` are
    its auxiliary objectives' and are computed, not cached.)"""
    return hasattr(cfg, "scorers") and "scorers" in inspect.signature(train_fn).parameters
