"""The demo's refusal-mix families, from nothing to ``assets/``: Rewarded Soups (the family a visitor meets first)
and PEO, each composed from the same two SFT experts, and linear-scalarised DPO trained on the same data's pairs
(and Rewards-in-Context and Panacea from the same data, experiments).

It is docs/demo.md's experiment H (experiment F's recipe, with PIQA's how-to questions and "Can you ...?" forms
in :mod:`paretoapp.demo.refusal_mix`'s data, and no answer cut on a list's next number: both SFT experts, harmless
320 steps, helpful 200, answered with presence penalty 1), shrunk to rank 8 in bfloat16 so it fits
the assets budget, then evaluated as the demo's other families are (held-out prompts, 11 w, 48 new tokens,
their shared reference point) and checked on prompts it never saw (:mod:`paretoapp.demo.ood`), both with the
presence penalty the app then answers it with.

    python -m paretoapp.demo.refusal_family                  # every step; a step whose output is there is reused,
                                                             # until one that changes the weights has run
    python -m paretoapp.demo.refusal_family --redo eval      # that step and every one after it again
    python -m paretoapp.demo.refusal_family --method peo     # PEO from the same experts (docs/demo.md, "PEO on
                                                             # the refusal mix")
    python -m paretoapp.demo.refusal_family --method rewards_in_context   # an experiment that misses the bounds
                                                             # (docs/demo.md: its mapping, not its budget)
    python -m paretoapp.demo.refusal_family --method panacea  # another (docs/demo.md: no trade-off at 300 steps)
    python -m paretoapp.demo.refusal_family --method linear_dpo  # linear DPO from the mix's pairs (docs/demo.md: 78 %
                                                             # at the harmless end, two requests short of its bound)

Each step writes one thing, and the next reads it, so an interrupted build goes on where it stopped:

    mix       WORK/mix/{harmless,helpful}.jsonl      the base model's answers and the two SFT mixes (~15 min)
    harmless  WORK/mix/adapters/harmless-sft          LoRA SFT, 320 steps of 8
    helpful   WORK/helpful/adapters/helpful-sft       the same, 200 steps (more passes taught it loops)
    method    WORK/soup (WORK/<method>)               Rewarded Soups over the two adapters (PEO: a generalist and
                                                      the search over coefficients, on dev prompts; RiC: one SFT
                                                      run on the mix's pairs with their scores in the prompt;
                                                      Panacea: one SVD-LoRA run of DPO + NLL on the pairs;
                                                      linear DPO: one DPO + NLL run per grid point)
    shrink    OUT/NAME                                each adapter cut to rank 8 (PEO: 6) by SVD, bfloat16
    eval      OUT/NAME/results                        the demo's evaluation, with presence penalty 1
    ood       OUT/demo/ood/answers.jsonl              160 new prompts at 96 tokens; the card's line
    probe     OUT/demo/prompt_kind                    the family's harmless end joins the prompt-kind classifier
                                                      (its refusal probe, fitted on dev: ~11 min; Rewarded Soups
                                                      only, the family the app opens on)

In a checkout (docs/demo.md beside OUT) the eval, ood and probe steps also rewrite that document's tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .refusal_names import FIRST, family_name

NAME = family_name(FIRST)
PRESENCE_PENALTY = 1.0  # tuned on the dev split (docs/demo.md, experiment E): loops 11 % -> 2 % at the helpful end
# about one pass over each mix (2,528 and 1,653 rows since PIQA and the "Can you" forms; F's 1,985 and 1,138 had
# 280 and 170): the helpful expert stays under F's 1.2 passes, because more taught it loops (experiment D2)
STEPS = {"harmless": 320, "helpful": 200}
STEPS_ORDER = ("mix", "harmless", "helpful", "method", "shrink", "eval", "ood", "probe")
SHARED_STEPS = ("mix", "harmless", "helpful")  # every method's: the data and the two experts
WEIGHT_STEPS = ("mix", "harmless", "helpful", "method", "shrink")  # the steps that change the family's weights
_EXPERTS = ("two LoRA SFT experts, one taught to refuse harmful requests and answer everything else, one taught "
            "to answer everything")
# what every method shares; how it trains (SFT, DPO + NLL) is its recipe's to say
DESCRIPTION_HEAD = ("Offline demo on SmolLM2-135M-Instruct, trained with LoRA on a CPU (the refusal mix, docs/demo.md): shows "
                    "the method's behaviour, not an aligned or safe model. ")
# PEO's search: dev prompts of each kind (never trained on nor in the ood check), answered at the chat's length
PEO_SEARCH = {"harmful": 12, "everyday": 12, "edgy": 8}
RIC_STEPS = 240  # batches of 8 (the experts' optimisation)
PANACEA_STEPS = 300  # batches of 4 pairs per objective: 1,200 of each objective's 1,883 pairs
PANACEA_RANK = 8  # the learned singular values; the bank adds one column per objective (rank 10 in all)
# DPO + NLL of the chosen answers (RPO) on batches of 4 pairs per objective: PEO's generalist, Panacea and linear DPO
# (plain DPO from the base loops, docs/demo.md)
RPO_TRAIN = {"batch_size": 4, "beta": 0.1, "sft_weight": 1.0}
# an end's steps (a pass over its objective's 1,883 pairs, in batches of 4); the middle, drawing 4 pairs of each
# objective a step, trains half as many (budget: pairs), so every point sees the same 1,920 pairs
LINEAR_DPO_STEPS = 480
LINEAR_DPO_GRID = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]  # (helpful, harmless): both ends (trained first), the middle


@dataclasses.dataclass
class Build:
    work: Path
    out: Path
    threads: int = 1
    reference: list[float] | None = None  # the eight's shared reference point (default: OUT/demo/build.json's)
    method: str = FIRST

    def __post_init__(self):
        if self.method not in RECIPES:
            raise SystemExit(f"--method {self.method!r}: the refusal mix builds {', '.join(RECIPES)}")

    @property
    def name(self) -> str:
        return family_name(self.method)

    @property
    def steps(self) -> tuple[str, ...]:
        """This method's steps: the probe reads the family the app opens on only."""
        return STEPS_ORDER if self.method == FIRST else tuple(s for s in STEPS_ORDER if s != "probe")

    @property
    def doc(self) -> Path | None:
        """docs/demo.md beside OUT (its ood and classifier tables follow the build), or None outside a checkout."""
        path = self.out.resolve().parent / "docs" / "demo.md"
        return path if path.is_file() else None

    def reference_point(self) -> list[float]:
        if self.reference is not None:
            return list(self.reference)
        record = json.loads((self.out / "demo" / "build.json").read_text(encoding="utf-8"))
        return record["shared_reference"]["reference"]

    @property
    def mix(self) -> Path:
        return self.work / "mix"

    def adapter(self, objective: str) -> Path:
        home = self.mix if objective == "harmless" else self.work / objective
        return home / "adapters" / f"{objective}-sft" / "adapter"

    @property
    def combined(self) -> Path:
        """The method's family before it is shrunk (the method step's output)."""
        return self.work / ("soup" if self.method == "rewarded_soups" else self.method)

    @property
    def family(self) -> Path:
        return self.out / self.name

    @property
    def answers(self) -> Path:
        return self.out / "demo" / "ood" / "answers.jsonl"

    def timings(self) -> dict[str, float]:
        """Seconds each step took when it last ran (``WORK/timings.json``): the shared steps under their names,
        a method's own as ``step (family)``."""
        path = self.work / "timings.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def timing_key(self, step: str) -> str:
        return step if step in SHARED_STEPS else f"{step} ({self.name})"

    def record(self, step: str, seconds: float) -> None:
        from paretoapp.atomic import atomic_file

        self.work.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.work / "timings.json") as tmp:
            tmp.write_text(json.dumps({**self.timings(), self.timing_key(step): round(seconds, 1)}, indent=2),
                           encoding="utf-8")

    def done(self, step: str) -> bool:
        """Whether ``step``'s output is there (the ood step: the family's answers are in the answers file)."""
        if step == "mix":  # and made under today's rules (an older mix's answers stop on list numbers)
            from .refusal_mix import is_current

            return (self.mix / "harmless.jsonl").is_file() and (self.mix / "helpful.jsonl").is_file() \
                and is_current(self.mix)
        if step in STEPS:
            return (self.adapter(step) / "adapter_config.json").is_file()
        if step == "method":  # and made from its inputs as they are now (another method's build may retrain them)
            made, inputs = self.combined / "family.json", self.method_inputs()
            return made.is_file() and inputs is not None and all(
                not i.is_file() or i.stat().st_mtime <= made.stat().st_mtime for i in inputs)
        if step == "shrink":
            return (self.family / "family.json").is_file()
        if step == "eval":  # measured, and at the eight's reference point as it is now (a rebuild moves it)
            meta = self.family / "results" / "meta.json"
            return meta.is_file() and _close(json.loads(meta.read_text())["metrics"]["reference"], self.reference_point())
        if step == "probe":  # the classifier reads this family (a rebuilt family redoes it: --redo runs on)
            return (probe := self.classifier_probe()) is not None and probe.family == self.family.resolve()
        from .ood import read
        return self.answers.is_file() and any(r["family"] == self.name for r in read(self.answers))

    @property
    def method_config(self) -> Path:
        """The run config the method step writes, then trains from."""
        return self.work / f"{self.method}.yaml"

    def method_inputs(self) -> list[Path] | None:
        """The files the method's family was made from, as its run config names them: the experts it composes
        (their adapter_config.json) and the pairs it trains on; None without a config. Rewards-in-Context, Panacea
        and linear DPO read the pairs only, so retraining an expert does not remake them."""
        import yaml

        if not self.method_config.is_file():
            return None
        objectives = yaml.safe_load(self.method_config.read_text(encoding="utf-8"))["objectives"]
        return [Path(o["adapter"]) / "adapter_config.json" for o in objectives if "adapter" in o] + \
               [Path(o["data"]["source"]) for o in objectives if "data" in o]

    @property
    def classifier(self) -> Path:
        return self.out / "demo" / "prompt_kind"

    def classifier_probe(self):
        """The refusal probe of the classifier in ``OUT/demo/prompt_kind``, or None (no classifier, or none)."""
        from paretoapp.scorers import PromptKindClassifier

        return PromptKindClassifier.load(self.classifier).probe if (self.classifier / "classifier.json").is_file() \
            else None


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(a, b))


def _run(build: Build, *cmd: str) -> None:
    """One step in a fresh process (a training run's memory is given back when it ends), on ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(build.threads)}
    subprocess.run([sys.executable, "-m", *cmd], check=True, env=env)


def _write_config(path: Path, config: dict) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def step_mix(build: Build) -> None:
    _run(build, "paretoapp.demo.refusal_mix", "--out", str(build.mix))


def expert_config(build: Build, objective: str) -> dict:
    """``refusal_mix``'s experts.yaml with this objective alone, its step count, and its own adapters folder."""
    from .refusal_mix import experts_config

    config = experts_config(build.mix)
    config["objectives"] = [o for o in config["objectives"] if o["name"] == objective]
    config["train"] = {**config["train"], "max_steps": STEPS[objective], "progress": False}
    config["adapters_dir"] = str(build.adapter(objective).parents[1])
    config["output_dir"] = str(build.work / f"run-{objective}")
    return config


def step_expert(build: Build, objective: str) -> None:
    path = _write_config(build.work / f"{objective}.yaml", expert_config(build, objective))
    _run(build, "paretoapp.trainers.objective_adapter", "--config", str(path), "--set", "loss=sft")


def step_method(build: Build) -> None:
    """The method's family from the two experts (``paretoapp train METHOD``, the objectives (helpful, harmless))."""
    path = _write_config(build.method_config, RECIPES[build.method].config(build))
    _run(build, "paretoapp", "train", build.method, "--config", str(path), "--set", "overwrite=true")


def _method_run(build: Build, run: str, objectives: list[dict], train: dict | None = None, lora: dict | None = None,
                **fields) -> dict:
    """A method's run config: the experts' base, LoRA shape and optimisation (with the method's ``train`` and
    ``lora`` settings over them), this build's paths and the objectives (helpful, harmless: w's order), then the
    method's own ``fields``."""
    expert = expert_config(build, "helpful")
    return {**expert, "name": build.name, "output_dir": str(build.work / f"run-{run}"),
            "family_dir": str(build.combined), "objectives": objectives,
            "train": {**expert["train"], **(train or {})}, "lora": {**expert["lora"], **(lora or {})}, **fields}


def _objectives(build: Build, experts: bool, pairs: bool) -> list[dict]:
    """(helpful, harmless), each with its expert's adapter and/or the mix's preference pairs (``refusal_mix.pairs``)."""
    return [{"name": o, **({"adapter": str(build.adapter(o))} if experts else {}),
             **({"data": {"source": str(build.mix / f"{o}_pairs.jsonl"), "objective": o, "layout": "trl",
                          "chat": True}} if pairs else {})} for o in ("helpful", "harmless")]


def soup_config(build: Build) -> dict:
    return _method_run(build, "soup", _objectives(build, experts=True, pairs=False), loss="sft")


def peo_config(build: Build) -> dict:
    """PEO (docs/methods.md) with the two SFT experts as its phase-1 aspect models (the paper's DPO experts, trained
    on the demo's 64 prompts, refused 27 % of the ood split's harmful requests: docs/demo.md); phase 2's generalist starts at
    their midpoint and takes a short DPO + NLL run on the mix's pairs (``refusal_mix.pairs``); phase 3 searches
    the coefficients on :data:`PEO_SEARCH` dev prompts at the chat's length, scored by the demo's scorers."""
    from .ood import CHAT_MAX_NEW_TOKENS

    return _method_run(
        build, "peo", _objectives(build, experts=True, pairs=True), adapters_dir=str(build.work / "peo-adapters"),
        generalist_train={**expert_config(build, "helpful")["train"], **RPO_TRAIN, "max_steps": 24,
                          "learning_rate": 5.0e-4, "warmup_ratio": 0.1},
        coef_generalist=[0.0, 0.5, 1.0], coef_objective=[0.0, 0.5, 1.0], scorers=["helpful_offline", "harmless_offline"],
        eval_prompts=str(peo_search_prompts(build)), n_eval_prompts=sum(PEO_SEARCH.values()),
        max_new_tokens=CHAT_MAX_NEW_TOKENS, anchor_rule="tchebycheff", max_degenerate_rate=0.1)


def ric_config(build: Build) -> dict:
    """Rewards-in-Context as the paper trains it (both answers of every pair, z-scored rewards in the prompt, the
    linear mapping), on the mix's pairs (``refusal_mix.pairs``), with the experts' LoRA shape and optimisation and
    about half a pass over their ~3,500 distinct answers: RiC trains one model on the data, not on the experts."""
    return _method_run(build, "ric", _objectives(build, experts=False, pairs=True),
                       adapters_dir=str(build.work / "ric-adapters"), train={"max_steps": RIC_STEPS},
                       scorers=["helpful_offline", "harmless_offline"], responses="both", mapping="linear")


def panacea_config(build: Build) -> dict:
    """Panacea (docs/methods.md): one SVD-LoRA at rank :data:`PANACEA_RANK` (+ one preference column per
    objective) trained from the base on the mix's pairs (``refusal_mix.pairs``), a w sampled per batch (half at a
    vertex), the linear aggregation of each objective's DPO + NLL of its chosen answers (RPO, as PEO's generalist:
    plain DPO from the base loops, docs/demo.md), the experts' optimisation and batches of 4 pairs per objective."""
    return _method_run(build, "panacea", _objectives(build, experts=False, pairs=True),
                       adapters_dir=str(build.work / "panacea-adapters"),
                       train={**RPO_TRAIN, "max_steps": PANACEA_STEPS},
                       lora={"r": PANACEA_RANK, "alpha": 2.0 * PANACEA_RANK}, aggregation="linear", vertex_prob=0.5)


def linear_dpo_config(build: Build) -> dict:
    """Linear-scalarised DPO (docs/methods.md, the baselines): one LoRA adapter per point of
    :data:`LINEAR_DPO_GRID`, each trained from the base on sum_i w_i (DPO_i + NLL_i) over the mix's pairs
    (``refusal_mix.pairs``; the NLL of the chosen answers as PEO's generalist and Panacea: plain DPO from the base
    loops, docs/demo.md), with the experts' LoRA shape and optimisation; a query w is served by the nearest point,
    as the baseline is published."""
    return _method_run(build, "linear-dpo", _objectives(build, experts=False, pairs=True),
                       adapters_dir=str(build.work / "linear-dpo-adapters"),
                       train={**RPO_TRAIN, "max_steps": LINEAR_DPO_STEPS},
                       grid=LINEAR_DPO_GRID, gate_mode="nearest", budget="pairs")


def peo_search_prompts(build: Build) -> Path:
    """:data:`PEO_SEARCH` dev prompts (each source in turn, as the ood check draws), written for PEO's search."""
    from .data import write_jsonl
    from .ood import prompts
    from .sources import DEV

    rows = prompts(split=DEV)
    picked = [r for kind, n in PEO_SEARCH.items() for r in [r for r in rows if r["kind"] == kind][:n]]
    return write_jsonl(build.work / "peo_search_prompts.jsonl", picked)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one method's family is made from the mix: its run config, the rank its blocks are cut to (Rewarded
    Soups' two blocks at 8 take 9.4 MB of the assets budget, PEO's three at 6 11 MB, linear DPO's three at 6
    11 MB, in the room the DPO-era families they replaced left), and what its card says after
    :data:`DESCRIPTION_HEAD`."""
    config: Callable[[Build], dict]
    rank: int
    description: str


RECIPES = {
    "rewarded_soups": Recipe(soup_config, 8, f"Rewarded Soups over {_EXPERTS}."),
    "peo": Recipe(peo_config, 6, f"PEO over {_EXPERTS}: a generalist interpolated from them and trained briefly with "
                                 "DPO + NLL on the mix's pairs, and, per w, the mix of the three that a search on dev "
                                 "prompts chose."),
    "panacea": Recipe(panacea_config, PANACEA_RANK, "Panacea: one SVD-LoRA trained on the mix's pairs, w written into "
                                                    "its singular values, the objectives' DPO + NLL losses summed "
                                                    "with weights w."),
    "linear_dpo": Recipe(linear_dpo_config, 6, "Linear-scalarised DPO: one adapter per w of a grid (both ends "
                                                "and the middle), each trained on the mix's pairs with the "
                                                "objectives' DPO + NLL losses summed with weights w; a w between "
                                                "them is served by the nearest."),
    "rewards_in_context": Recipe(ric_config, 8, "Rewards-in-Context: one model trained on the mix's answers "
                                                "(refusals, compliant and benign answers) with their reward scores "
                                                "in the prompt; w asks for target scores."),
}
METHODS = tuple(RECIPES)
RANK = RECIPES[FIRST].rank
DESCRIPTION = DESCRIPTION_HEAD + RECIPES[FIRST].description


def step_shrink(build: Build) -> None:
    from paretoapp.family import load_family
    from paretoapp.shrink import shrink_family

    from .family_texts import OBJECTIVE_DESCRIPTIONS

    combined = load_family(build.combined)
    combined.manifest.name = build.name
    combined.manifest.description = DESCRIPTION_HEAD + RECIPES[build.method].description
    for objective in combined.manifest.objectives:  # what the card says each objective measures, as the eight do
        objective.description = OBJECTIVE_DESCRIPTIONS[objective.name]
    rank = RECIPES[build.method].rank
    family, kept = shrink_family(combined, rank, "bfloat16")
    family.save(build.family, overwrite=True)
    print(f"{build.family}: rank {rank} per adapter, the worst module keeps {kept:.0%} of its squared norm")


def training_keys(build: Build) -> list[str]:
    """The timings a family's training cost sums: the experts' only where the method composes them (linear DPO,
    Panacea and Rewards-in-Context train from the pairs alone; their cost once counted the experts too)."""
    experts = ["harmless", "helpful"] if any(p.name == "adapter_config.json" for p in build.method_inputs() or []) \
        else []
    return experts + [build.timing_key("method")]


def step_eval(build: Build) -> None:
    from .checks import passed
    from .data import read_jsonl
    from .family_build import behaviour_checks, evaluate_demo_family
    from .presets import PRESETS
    from .records import SHARED_REFERENCE_RULE

    ref = build.reference_point()  # the eight's, so the hypervolumes compare
    rows = read_jsonl(build.out / "demo" / "data" / "eval_prompts.jsonl")
    t = time.perf_counter()
    result, checks = evaluate_demo_family(build.family, rows, PRESETS["demo"], build.method,
                                          build.work / "eval-cache", presence_penalty=PRESENCE_PENALTY, ref=ref)
    result.meta["metrics"]["reference_rule"] = SHARED_REFERENCE_RULE
    timings = build.timings()
    keys = training_keys(build)
    trained = [timings[k] for k in keys if k in timings]
    result.meta["training_cost"] = {**({"train_s": round(sum(trained), 1)} if len(trained) == len(keys) else {}),
                                    "eval_s": round(time.perf_counter() - t, 1), "steps_s": timings,
                                    "build_record": "docs/demo.md (the family the app opens on)"}
    result.save(build.family / "results")
    if build.doc is not None:  # the doc's behaviour tables are every family's, this one's rows new
        from .report import write_tables

        write_tables(build.out, build.doc)
    behaviour_checks(checks, build.method)
    print(result.summary_text(), "all bounds met" if passed(checks) else "BOUNDS MISSED")


def step_ood(build: Build) -> None:
    from . import ood

    mine = ood.answer([build.family], ood.prompts(), build.threads, presence_penalty=PRESENCE_PENALTY)
    others = [r for r in ood.read(build.answers) if r["family"] != build.name] if build.answers.is_file() else []
    ood.write(others + mine, build.answers)
    ood.write_summaries(mine, build.out)
    if build.doc is not None:  # the doc's table is every family's, this one's rows new
        from .report import rewrite_doc_section

        rewrite_doc_section(build.doc, ood.markdown(others + mine), ood.SECTION)
    print(ood.markdown(mine))


def step_probe(build: Build) -> None:
    """The family's harmless end joins the prompt-kind classifier (the hidden-state probe is fitted first when
    there is none yet)."""
    probe_only = ["--probe-only"] if (build.classifier / "classifier.json").is_file() else []
    doc = ["--doc", str(build.doc)] if build.doc is not None else []
    _run(build, "paretoapp.demo.kind_classifier", "--out", str(build.classifier), "--probe-family", str(build.family),
         *probe_only, *doc)


STEP_FUNCTIONS: dict[str, Callable[[Build], None]] = {
    "mix": step_mix, "harmless": lambda b: step_expert(b, "harmless"), "helpful": lambda b: step_expert(b, "helpful"),
    "method": step_method, "shrink": step_shrink, "eval": step_eval, "ood": step_ood, "probe": step_probe}


def run(build: Build, redo: str | None = None, steps: Sequence[str] | None = None) -> list[str]:
    """Run every step whose output is missing (and, with ``redo``, that step and the ones after it); returns
    the steps run. Once a step of :data:`WEIGHT_STEPS` has run, every later one runs too: a checkout's assets
    hold the committed family, its answers and its probe, and a new family must not be reported with them."""
    steps = build.steps if steps is None else steps
    if redo is not None and redo not in steps:
        raise SystemExit(f"--redo {redo!r}: not a step; the steps are {', '.join(steps)}")
    first_redo = steps.index(redo) if redo else len(steps)
    ran, new_weights = [], False
    for i, step in enumerate(steps):
        if i < first_redo and not new_weights and build.done(step):
            print(f"[{step}] reused", flush=True)
            continue
        print(f"[{step}] running", flush=True)
        t = time.perf_counter()
        STEP_FUNCTIONS[step](build)
        build.record(step, time.perf_counter() - t)
        print(f"[{step}] done in {time.perf_counter() - t:.0f} s", flush=True)
        ran.append(step)
        new_weights = new_weights or step in WEIGHT_STEPS
    return ran


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paretoapp.demo.refusal_family", description=__doc__.split("\n")[0])
    p.add_argument("--work", default="build/refusal-mix", help="where the data, runs and adapters go")
    p.add_argument("--out", default="assets", help="the demo's assets folder (it holds demo/build.json)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for each step")
    p.add_argument("--redo", choices=STEPS_ORDER, default=None, help="run this step and every later one again")
    p.add_argument("--method", choices=METHODS, default=METHODS[0],
                   help="the method composed from the experts (default: the family the app opens on)")
    args = p.parse_args(argv)
    run(Build(Path(args.work), Path(args.out), args.threads, method=args.method), args.redo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
