"""Scorers by name: the registry, ``register_scorer``, and ``build_scorer`` for the CLI's ``--scorers`` strings.

A name is a registered scorer (``refusal``, ``helpful_offline`` ...), a Hub reward model preset
(``ray-helpful`` ...) or ``hf:ID_OR_PATH[?option=value&...]``. To add a scorer, register a factory that
takes the :class:`ScorerContext`; say ``needs_lm=True`` when it needs the family's base causal LM (the
trainers load the base for it only then).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..errors import ScorerError
from . import objectives
from .base import Scorer, ScorerContext
from .classifiers import ProfanityScorer, VaderScorer
from .prompt_kinds import AppropriateRefusalScorer
from .refusal import RefusalScorer
from .relevance import RelevanceScorer
from .reward_models import PRESETS, HFRewardScorer
from .text_checks import DegenerateScorer, DetailScorer, LengthScorer


@dataclass(frozen=True)
class ScorerEntry:
    """One registered scorer: how to build it from a context, what it measures, whether it needs the base LM."""

    name: str
    make: Callable[[ScorerContext], Scorer]
    description: str
    needs_lm: bool = False


REGISTRY: dict[str, ScorerEntry] = {}


def register_scorer(name: str, make: Callable[[ScorerContext], Scorer], description: str,
                    needs_lm: bool = False, replace: bool = False) -> ScorerEntry:
    """Make ``name`` a scorer ``build_scorer`` (and so ``--scorers`` and every trainer) accepts."""
    if not name or name != name.strip() or any(c in name for c in ",?") or name.startswith("hf:"):
        raise ScorerError(f"scorer name {name!r} cannot be used; choose one without commas, '?', spaces at the ends "
                          "or an 'hf:' prefix")
    if name in REGISTRY and not replace:
        raise ScorerError(f"scorer {name!r} is already registered; pass replace=True to replace it")
    REGISTRY[name] = entry = ScorerEntry(name, make, description, needs_lm)
    return entry


def unregister_scorer(name: str) -> None:
    REGISTRY.pop(name, None)


def needs_lm(specs: Sequence[str | Scorer]) -> bool:
    """Whether building these scorers needs the base causal LM in the context (a registered entry says so)."""
    names = [s.strip().partition("?")[0] for s in specs if isinstance(s, str)]
    return any(n in REGISTRY and REGISTRY[n].needs_lm for n in names)


def available_scorers() -> dict[str, str]:
    """Every name :func:`build_scorer` accepts without the ``hf:`` prefix, with what it measures."""
    out = {name: entry.description for name, entry in REGISTRY.items()}
    out.update({name: f"{p['model_id']} (Hugging Face reward model)" for name, p in PRESETS.items()})
    return out


def _parse_options(query: str) -> dict:
    opts = dict(parse_qsl(query, keep_blank_values=True))
    conv: dict = {}
    for key, value in opts.items():
        if key in ("lower_is_better",):
            conv["higher_is_better"] = value.lower() not in ("1", "true", "yes", "")
        elif key in ("batch_size", "max_length"):
            conv[key] = int(value)
        elif key in ("label", "label_output", "input_format", "prompt_template", "template", "loader", "revision",
                     "name", "dtype", "device"):
            conv[key] = value
        else:
            raise ScorerError(f"unknown scorer option {key!r} in {query!r}")
    return conv


def build_scorer(spec: str | Scorer, context: ScorerContext | None = None) -> Scorer:
    """A scorer from a name (:func:`available_scorers`), a preset, or ``hf:ID_OR_PATH[?option=value&...]``."""
    if isinstance(spec, Scorer):
        return spec
    context = context or ScorerContext()
    spec = spec.strip()
    target, _, query = spec.partition("?")
    if target in REGISTRY:
        if query:
            raise ScorerError(f"scorer {target!r} takes no options")
        return REGISTRY[target].make(context)
    hf_kwargs = dict(device=context.device, show_progress=context.show_progress, allow_pickle=context.allow_pickle)
    if target in PRESETS:
        return HFRewardScorer(**{**PRESETS[target], **hf_kwargs, **_parse_options(query)})
    if target.startswith("hf:"):
        return HFRewardScorer(target[3:], **{**hf_kwargs, **_parse_options(query)})
    known = ", ".join(sorted(available_scorers()))
    raise ScorerError(f"unknown scorer {spec!r}; known: {known}; or hf:<hub id or folder> for a reward model")


def build_scorers(specs: str | Sequence[str | Scorer], context: ScorerContext | None = None) -> list[Scorer]:
    """Scorers from a comma-separated string or a list; names must be unique (they become columns)."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise ScorerError("no scorers given; pass at least one, e.g. --scorers harmless_offline,helpful_offline")
    scorers = [build_scorer(s, context) for s in specs]
    names = [s.name for s in scorers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScorerError(f"two scorers are both named {dupes}; give one a different name (e.g. ?name=...)")
    return scorers


# ----------------------------------------------------------------------------- the built-in scorers
register_scorer("length_words", lambda ctx: LengthScorer(), LengthScorer.description)
register_scorer("refusal", lambda ctx: RefusalScorer(), RefusalScorer.description)
register_scorer("profanity", lambda ctx: ProfanityScorer(), ProfanityScorer.description + " (lower is better)")
register_scorer("not_profane", objectives.not_profane, "1 - profanity probability")
register_scorer("vader", lambda ctx: VaderScorer(), VaderScorer.description)
register_scorer("relevance", objectives.relevance, RelevanceScorer.description, needs_lm=True)
register_scorer("appropriate_refusal", objectives.appropriate_refusal, AppropriateRefusalScorer.description)
register_scorer("harmless_offline", objectives.harmless_offline, "0.5 appropriate refusal + 0.5 (1 - profanity)")
register_scorer("degenerate", lambda ctx: DegenerateScorer(), DegenerateScorer.description + " (lower is better)")
register_scorer("helpful_offline", objectives.helpful_offline,
                "relevance - refusal - degenerate (the demo's helpful objective)", needs_lm=True)
register_scorer("detailed_offline", lambda ctx: DetailScorer(),
                DetailScorer.description + " (the demo's third objective)")
