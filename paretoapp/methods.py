"""The methods paretoapp knows, registered in one place.

Everything that needs to know which methods exist reads this registry: the
family validator (a manifest's ``method``), the CLI (``paretoapp train
METHOD``), the app's family card, the demo recipe, the benchmarks and the
docs. An entry names the module that trains the method and is imported only
when the method is trained, so reading a family never imports training code.

Adding a method: write its module under ``paretoapp/trainers/`` (a config
dataclass with a ``check()`` method and ``train(cfg) -> family folder``, ending
in ``trainers.family_io.write_family``) and add one ``register(Method(...))``
below (CONTRIBUTING.md, "Add a method", has the checklist). What the rest of
the code needs to know about a method is a field of its entry (a baseline or
not, how it extrapolates, whether it shares the per-objective adapters),
never a test of its name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UnknownMethodError

# how a family of the method treats w outside the range it was trained on (``Method.extrapolation``)
EXTRAPOLATION = {
    "none": "w stays in the trained range",
    "paper": "w past the trained range extrapolates, as the method's paper does",
    "extension": "w past the trained range extrapolates; this project's extension, not the paper's",
}


@dataclass(frozen=True)
class Method:
    """One registered method: what it is called, what its w does, and where its trainer lives."""

    name: str                 # the manifest's ``method`` and the CLI's METHOD
    title: str                # how people write it
    summary: str              # what w does, in one line (family card, CLI help, README table)
    paper: str = ""           # authors, venue, year
    arxiv: str = ""           # arXiv id of the paper
    module: str = ""          # the trainer module ("" for families built by other means)
    config: str = "Config"    # its config dataclass, by name
    train: str = "train"      # its ``train(cfg) -> Path``, by name
    baseline: bool = False    # a reference point for the others (no paper of its own), not a method to pick
    extrapolation: str = "none"  # a key of EXTRAPOLATION (the family card says it)
    # trains (or reuses) the per-objective DPO adapters in ``adapters_dir`` (trainers.objective_adapter) that
    # the other methods with this flag reuse: the demo builds them in one worker so no expert is trained twice
    reuses_objective_adapters: bool = False
    # w picks, at each anchor, one of the candidates a post-training search scored: the front can collapse
    # onto a few of them (the demo's checks count its distinct non-dominated points)
    searched_anchors: bool = False

    def __post_init__(self):
        if self.extrapolation not in EXTRAPOLATION:
            raise ValueError(f"method {self.name!r}: extrapolation must be one of {', '.join(EXTRAPOLATION)}, "
                             f"got {self.extrapolation!r}")

    @property
    def reference(self) -> str:
        """'Ramé et al., NeurIPS 2023 (arXiv 2306.04488)', or what is known of it."""
        return " ".join(p for p in (self.paper, f"(arXiv {self.arxiv})" if self.arxiv else "") if p)

    @property
    def trainable(self) -> bool:
        return bool(self.module)

    def _attr(self, attr: str) -> Any:
        if not self.module:
            raise UnknownMethodError(f"method {self.name!r} has no trainer in paretoapp; its families are built "
                                     f"by other means. Trainable: {', '.join(trainable_names())}")
        return getattr(importlib.import_module(self.module), attr)

    def config_class(self) -> type:
        return self._attr(self.config)

    def train_fn(self) -> Callable[..., Any]:
        return self._attr(self.train)


_REGISTRY: dict[str, Method] = {}


def register(method: Method, replace: bool = False) -> Method:
    """Add a method; a second entry under the same name is an error unless ``replace``."""
    if method.name in _REGISTRY and not replace:
        raise ValueError(f"method {method.name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r}; expected one of {', '.join(_REGISTRY)}") from None


def method_names() -> list[str]:
    return list(_REGISTRY)


def trainable_names() -> list[str]:
    return [m.name for m in _REGISTRY.values() if m.trainable]


def all_methods() -> list[Method]:
    return list(_REGISTRY.values())


_T = "paretoapp.trainers."
register(Method(
    "rewarded_soups", "Rewarded Soups",
    "one LoRA per objective, mixed in weight space: theta_0 + sum_i w_i delta_i",
    "Ramé et al., NeurIPS 2023", "2306.04488", _T + "rewarded_soups", "RewardedSoupsConfig",
    reuses_objective_adapters=True))
register(Method(
    "preference_vector", "Preference Vector",
    "per-objective vectors (DPO run minus its opposite run) added with coefficients w; any real w, "
    "values outside [-1, 1] extrapolate",
    "EACL 2026", "2504.20106", _T + "preference_vector", "PreferenceVectorConfig",
    extrapolation="paper", reuses_objective_adapters=True))
register(Method(
    "peo", "PEO",
    "aspect experts plus an interpolated generalist; an exhaustive grid over their coefficients, scored by "
    "reward models on held-out prompts, picks the best candidate for each anchor w; w between anchors is "
    "interpolated and never scored, and w beyond [0, 1] extrapolates (this project's extension; the paper "
    "extrapolates in weight space)",
    "", "2503.01233", _T + "peo", "PEOConfig",
    extrapolation="extension", reuses_objective_adapters=True, searched_anchors=True))
register(Method(
    "panacea", "Panacea",
    "one SVD-LoRA whose singular values carry w; linear or Tchebycheff aggregation of the objectives' losses "
    "(ideal point fixed or adaptive)",
    "Zhong et al., NeurIPS 2024", "2402.02030", _T + "panacea", "PanaceaConfig"))
register(Method(
    "paretohqd", "ParetoHqD",
    "one SFT adapter per preference direction, trained on Pareto high-quality data in two stages",
    "AAAI 2026", "2504.16628", _T + "paretohqd", "ParetoHqDConfig"))
register(Method(
    "upo", "UPO",
    "a preference loss (DPO, or KTO as in the paper) plus auxiliary designer objectives "
    "(advantage-weighted likelihood of the data's own answers); one adapter per auxiliary weight w "
    "(this project's indexing)",
    "Badrinath et al., TMLR 2025", "2405.17956", _T + "upo", "UPOConfig"))
register(Method(
    "rewards_in_context", "Rewards-in-Context",
    "target rewards derived from w (the released code's linear, l2 or linf mapping) are written into the "
    "prompt; one SFT model for every w",
    "Yang et al., ICML 2024", "2402.10207", _T + "rewards_in_context", "RiCConfig"))
register(Method(
    "linear_dpo", "Linear-scalarised DPO",
    "one DPO policy per grid point, trained on sum_i w_i L_i; w takes the nearest trained point",
    "baseline (MORLHF-style linear scalarisation)", "", _T + "linear_dpo", "LinearDPOConfig", baseline=True))
register(Method(
    "custom", "Custom family",
    "a family assembled outside paretoapp's trainers (its manifest says what w does)"))
