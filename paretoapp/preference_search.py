"""Find a user's w from blind comparisons: "which of these two answers is better?", a few times.

Nobody knows their w; everybody can say which of two answers they prefer. The
family's evaluated front gives, for each evaluated w_i, its mean scores s_i
(normalised per objective to [0, 1], 0 = worst). A user with latent weights v
on the objectives is modelled as preferring the answer of w_a to that of w_b
with the Rao-Kupper (Bradley-Terry with ties) probabilities on the utility
difference d = v . (s_a - s_b):

    P(a) = sigmoid(kappa d - tau),  P(b) = sigmoid(-kappa d - tau),  P(tie) = 1 - P(a) - P(b)

A grid of hypotheses v over the simplex starts uniform and is updated by Bayes
after every answer. The next pair is the one whose outcome is most uncertain
under the posterior (largest expected information gain), and the proposal is
the evaluated w with the highest expected utility, so the app proposes a point
it has measured.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from . import pareto

CHOICES = ("a", "b", "tie")


@dataclass
class SearchState:
    """The search after some rounds: candidate w and scores, hypotheses, posterior, history."""

    ws: np.ndarray            # [n, k] evaluated preference vectors
    scores: np.ndarray        # [n, k] normalised mean scores (1 = best)
    hypotheses: np.ndarray    # [h, k] user weights on the simplex
    log_post: np.ndarray      # [h]
    kappa: float = 8.0
    tau: float = 0.6
    history: list = field(default_factory=list)  # (a, b, choice)

    @property
    def posterior(self) -> np.ndarray:
        p = np.exp(self.log_post - self.log_post.max())
        return p / p.sum()

    @property
    def rounds(self) -> int:
        return len(self.history)


def _simplex(k: int, resolution: int) -> np.ndarray:
    pts = [c for c in itertools.product(range(resolution + 1), repeat=k) if sum(c) == resolution]
    return np.asarray(pts, float) / resolution


def start(ws, means, maximise, kappa: float = 8.0, tau: float = 0.6) -> SearchState:
    """A fresh search over the evaluated points (``ws`` [n, k], ``means`` [n, k], directions ``maximise``)."""
    ws, means = np.asarray(ws, float), np.asarray(means, float)
    k = means.shape[1]
    if len(ws) < 2:
        raise ValueError("a blind comparison needs a front with at least two evaluated points")
    scores = pareto.normalise(means, maximise)
    hyp = _simplex(k, 100 if k == 2 else 20 if k == 3 else 8)
    return SearchState(ws, scores, hyp, np.zeros(len(hyp)), kappa, tau)


def _choice_probs(state: SearchState, a: int, b: int) -> np.ndarray:
    """[h, 3]: P(a), P(b), P(tie) under every hypothesis."""
    d = state.hypotheses @ (state.scores[a] - state.scores[b])
    pa = 1 / (1 + np.exp(-(state.kappa * d - state.tau)))
    pb = 1 / (1 + np.exp(-(-state.kappa * d - state.tau)))
    return np.stack([pa, pb, np.clip(1 - pa - pb, 1e-12, None)], axis=1)


def next_pair(state: SearchState) -> tuple[int, int]:
    """The two candidates whose comparison tells most about the user (expected information gain),
    never a pair already asked."""
    post = state.posterior
    asked = {frozenset((a, b)) for a, b, _ in state.history}
    best, pair = -1.0, (0, 1)
    for a, b in itertools.combinations(range(len(state.ws)), 2):
        if np.allclose(state.scores[a], state.scores[b]) or frozenset((a, b)) in asked:
            continue  # the same point on the front says nothing; the same question twice bores a person
        probs = _choice_probs(state, a, b)
        marginal = post @ probs
        info = -(marginal * np.log(marginal)).sum() + (post * (probs * np.log(probs)).sum(axis=1)).sum()
        if info > best:
            best, pair = info, (a, b)
    return pair


def update(state: SearchState, a: int, b: int, choice: str) -> SearchState:
    """Bayes' rule after the user said which of the answers at w_a and w_b is better ("a", "b" or "tie")."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    probs = _choice_probs(state, a, b)[:, CHOICES.index(choice)]
    state.log_post = state.log_post + np.log(probs)
    state.history.append((a, b, choice))
    return state


def proposal(state: SearchState) -> tuple[int, float]:
    """The evaluated w with the highest expected utility, and how sure (the posterior mass that agrees)."""
    utilities = state.hypotheses @ state.scores.T           # [h, n]
    expected = state.posterior @ utilities
    best = int(np.argmax(expected))
    agree = float(state.posterior[np.argmax(utilities, axis=1) == best].sum())
    return best, agree
