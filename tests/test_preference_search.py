"""The blind A/B search finds a simulated user's w on a known front."""

from __future__ import annotations

import numpy as np
import pytest

from paretoapp.preference_search import next_pair, proposal, start, update

A = np.linspace(0, 1, 11)
WS = np.stack([A, 1 - A], axis=1)
MEANS = np.stack([np.sqrt(A), np.sqrt(1 - A)], axis=1)  # a concave front: every point is somebody's best


def simulated_user(v, rng):
    """Answers like the model: prefers the higher utility v . s, with some noise."""
    def choose(state, a, b):
        d = float(np.asarray(v) @ (state.scores[a] - state.scores[b]))
        if abs(d) < 0.02:
            return "tie"
        return ("a" if d > 0 else "b") if rng.random() > 0.1 else ("b" if d > 0 else "a")
    return choose


@pytest.mark.parametrize("true_w1", [0.1, 0.5, 0.85])
def test_a_handful_of_rounds_finds_the_users_w(true_w1):
    rng = np.random.default_rng(0)
    v = [true_w1, 1 - true_w1]
    choose = simulated_user(v, rng)
    state = start(WS, MEANS, [True, True])
    for _ in range(8):
        a, b = next_pair(state)
        update(state, a, b, choose(state, a, b))
    best, agree = proposal(state)
    utilities = state.scores @ np.asarray(v)
    regret = utilities.max() - utilities[best]
    # near the user's best w: a noisy user (one answer in ten flipped) loses at most a few % of the utility range
    assert regret < 0.06, (WS[best], WS[int(np.argmax(utilities))])
    assert 0 < agree <= 1


@pytest.mark.parametrize("true_w1", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_a_consistent_user_gets_their_best_evaluated_w_in_eight_rounds(true_w1):
    v = np.array([true_w1, 1 - true_w1])
    state = start(WS, MEANS, [True, True])
    for _ in range(8):
        a, b = next_pair(state)
        d = v @ (state.scores[a] - state.scores[b])
        update(state, a, b, "tie" if abs(d) < 0.02 else "a" if d > 0 else "b")
    utilities = state.scores @ v
    assert utilities.max() - utilities[proposal(state)[0]] < 0.005
    assert len({frozenset(h[:2]) for h in state.history}) == 8  # never the same question twice


def test_pairs_never_repeat_a_point_and_each_answer_moves_the_belief_its_way():
    same = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    state = start(np.eye(3)[:, :2], same, [True, True])
    a, b = next_pair(state)
    assert not np.allclose(state.scores[a], state.scores[b])
    # the all-harmless end (index 0) against the all-helpful end (index 10)
    first, tie = start(WS, MEANS, [True, True]), start(WS, MEANS, [True, True])
    update(first, 0, 10, "a")
    update(tie, 0, 10, "tie")
    mean_v1 = [float(s.posterior @ s.hypotheses[:, 0]) for s in (first, tie)]
    assert mean_v1[0] < 0.35                      # preferring the w_1 = 0 answer: the user weighs objective 2
    assert mean_v1[1] == pytest.approx(0.5, abs=0.02)  # a tie between the two ends: balanced
    with pytest.raises(ValueError, match="choice must be"):
        update(first, 0, 1, "left")


def test_it_works_for_three_objectives():
    pts = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]])
    means = np.sqrt(pts)
    state = start(pts, means, [True, True, True])
    v = np.array([0.1, 0.1, 0.8])
    for _ in range(6):
        a, b = next_pair(state)
        d = v @ (state.scores[a] - state.scores[b])
        update(state, a, b, "a" if d > 0 else "b")
    assert proposal(state)[0] == 2
