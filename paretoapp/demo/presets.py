"""The demo's presets: what is the same for every family of one build.

A preset says which data the families are trained on (prompt counts, sampling, pairs), how they are
evaluated, on which objectives, which methods it builds and which recipe folder trains them. How one
method trains (steps, learning rate, its own knobs) is not here: it is that method's YAML recipe,
``recipes/<preset.recipe>/<method>.yaml`` (:mod:`paretoapp.demo.recipes`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from paretoapp.methods import trainable_names

from .data import BENIGN, HARMFUL, SCORERS, TEXT_SCORERS, PairSettings, SampleSettings
from .refusal_names import COMMITTED

# the families' objective order = the order of w and of the results' scorer columns
OBJECTIVES = ("helpful", "harmless")
# the k = 3 family set: three methods that take any number of objectives (the set's choice, for the CPU budget),
# with a third objective that pulls against helpfulness (length as a stand-in for detail, scored from the text:
# longer answers drift off the question)
OBJECTIVES_K3 = ("helpful", "harmless", "detailed")
METHODS_K3 = ("rewarded_soups", "preference_vector", "panacea")
# the methods whose demo family is trained on the refusal mix only (paretoapp.demo.refusal_family, built after the
# DPO-era families: assets/demo-refusal-mix-<method>), so the "demo" preset no longer builds it (docs/demo.md)
REFUSAL_MIX_ONLY = COMMITTED


@dataclass
class Preset:
    """One demo build's shared settings (all CPU-friendly)."""
    n_train: int                      # training prompts per kind (harmful, benign)
    n_eval: int                       # held-out prompts per kind
    sample: SampleSettings
    recipe: str                       # how each method trains: recipes/<recipe>/<method>.yaml (or base.yaml)
    n_dev: int = 0                    # per kind, neither trained on nor evaluated: search prompts (PEO's)
    pair_settings: PairSettings = field(default_factory=PairSettings)
    eval_grid: str = "sweep:6"
    eval_max_new_tokens: int = 40
    eval_batch_size: int = 64
    objectives: tuple[str, ...] = OBJECTIVES  # the families' objective order = the order of w
    methods: tuple[str, ...] | None = None    # what `paretoapp demo --preset P` builds (None: every trainable
                                              # method of the registry, in its order)
    family_prefix: str = "demo"               # family folders are <prefix>-<method>
    work_name: str | None = None              # default work folder build/demo-<work_name or preset name>: a set
                                              # that shares another's work folder reuses its adapters

    @property
    def scorers(self) -> tuple[str, ...]:
        """The evaluation scorer of each objective (the same scorers made the training pairs)."""
        return tuple({**SCORERS, **TEXT_SCORERS}[o] for o in self.objectives)

    def method_names(self) -> tuple[str, ...]:
        """The methods this preset builds by default."""
        return self.methods if self.methods is not None else tuple(trainable_names())

    def family_dir(self, method: str) -> str:
        return f"{self.family_prefix}-{method.replace('_', '-')}"

    def family_dirs(self) -> dict[str, str]:
        """The family folder of every method this preset builds (built or not)."""
        return {m: self.family_dir(m) for m in self.method_names()}


PRESETS: dict[str, Preset] = {
    # sized for a shared 2-core CPU: one DPO step on 2 pairs is ~5-10 s there. Prompt-aware harmless pairs on
    # both prompt kinds (so the harmless end learns when *not* to refuse), greedy candidates (what the app
    # decodes) with degenerate answers rejected, and an evaluation as large as the behaviour bounds ask
    # (checks.Bounds: 16 + 16 held-out prompts, 48 new tokens, 11 w)
    "demo": Preset(n_train=64, n_eval=16, n_dev=16, recipe="demo",
                   sample=SampleSettings(max_new_tokens=48, batch_size=64, seed=0, trim=True, greedy=True),
                   pair_settings=PairSettings(margins=(0.25, 0.1), rejected_per_prompt=2,
                                              harmless_kinds=(HARMFUL, BENIGN), skip_degenerate_chosen=True,
                                              tie=0.05, balance_kinds=True, reject_degenerate=True),
                   eval_grid="sweep:11", eval_max_new_tokens=48,
                   methods=tuple(m for m in trainable_names() if m not in REFUSAL_MIX_ONLY)),
    "tiny": Preset(n_train=3, n_eval=2, recipe="tiny", sample=SampleSettings(max_new_tokens=16, batch_size=32, seed=0),
                   eval_grid="sweep:3", eval_max_new_tokens=8,
                   pair_settings=PairSettings(margins=(0.05, 0.0), detail_margin=0.0)),
}
# the k = 3 set: the "demo" recipe with detail as a third objective, on a 15-point simplex grid; it shares the
# "demo" work folder, so Rewarded Soups and Preference Vector reuse the two-objective experts and train one more
PRESETS["demo-k3"] = dataclasses.replace(PRESETS["demo"], objectives=OBJECTIVES_K3, methods=METHODS_K3,
                                         family_prefix="demo-k3", eval_grid="simplex:4", work_name="demo")
PRESETS["tiny-k3"] = dataclasses.replace(PRESETS["tiny"], objectives=OBJECTIVES_K3, methods=METHODS_K3,
                                         family_prefix="demo-k3", eval_grid="simplex:1", work_name="tiny")

# what `--preset` can name beyond one preset: sets built in one go, on one data folder and one work folder
SETS = {"all": ("demo", "demo-k3"), "tiny-all": ("tiny", "tiny-k3")}


def set_presets(name: str) -> tuple[str, ...]:
    """The presets ``--preset name`` builds (a set's, or the one named)."""
    return SETS.get(name, (name,))


def chosen_methods(names: tuple[str, ...], chosen: list[str]) -> dict[str, list[str]]:
    """Per preset, the methods to build: its own (:meth:`Preset.method_names`), or with ``--methods`` those of
    them chosen; a chosen method that no preset of the set lists is built in every one of them."""
    own = {n: PRESETS[n].method_names() for n in names}
    if not chosen:
        return {n: list(methods) for n, methods in own.items()}
    listed = {m for methods in own.values() for m in methods}
    return {n: [m for m in methods if m in chosen] + [m for m in chosen if m not in listed]
            for n, methods in own.items()}
