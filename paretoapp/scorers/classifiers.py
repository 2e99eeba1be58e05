"""Offline text classifiers from wheels: profanity (alt-profanity-check) and sentiment (VADER)."""

from __future__ import annotations

from ..errors import ScorerError
from .base import Scorer


class ProfanityScorer(Scorer):
    """Probability that the response is rude or offensive (alt-profanity-check). Lower is better.

    Blind to *dangerous* content: a polite recipe for harm scores near 0.
    """

    name = "profanity"
    higher_is_better = False
    description = "probability of rude/offensive text (alt-profanity-check)"

    def _score(self, prompts, responses):
        try:
            from profanity_check import predict_prob
        except ImportError as e:  # pragma: no cover - dependency is in requirements.txt
            raise ScorerError("the profanity scorer needs `pip install alt-profanity-check==1.9.1`") from e
        return predict_prob([r if r.strip() else " " for r in responses])


class VaderScorer(Scorer):
    """VADER compound sentiment in [-1, 1]; a polite refusal scores very negative."""

    name = "vader"
    description = "sentiment (VADER compound)"

    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as e:  # pragma: no cover
            raise ScorerError("the vader scorer needs `pip install vaderSentiment==3.3.2`") from e
        self._analyzer = SentimentIntensityAnalyzer()

    def _score(self, prompts, responses):
        return [self._analyzer.polarity_scores(r)["compound"] for r in responses]
