"""How the demo trains a method: its YAML recipe, read by the loader of ``paretoapp train --config``.

``recipes/<recipe>/<method>.yaml`` (or the recipe's ``base.yaml`` for a method without a file of its own) is
a run config like any other: ``paretoapp train METHOD --config`` takes it. The demo fills in what only a
build knows, and nothing about a method by name:

* ``name``, ``output_dir``, ``adapters_dir`` (one shared folder, so the per-objective experts are trained
  once), ``family_dir``;
* each objective's pairs: the recipe's ``objectives`` (by name) or else the preset's, in that order;
* ``scorers`` (a config that has the field takes one scorer per objective): the demo's evaluation scorers;
* ``eval_prompts`` (a config that has the field searches over prompts): ``n_eval_prompts`` dev prompts, half
  harmful and half benign, neither trained on nor evaluated;
* the seed and progress bar of every optimisation in it (``train`` and any other ``TrainConfig`` it sets).

``--set key=value`` of ``paretoapp demo`` then applies to every method, as it does for ``paretoapp train``.
"""

from __future__ import annotations

import typing
from pathlib import Path

from paretoapp.methods import get_method
from paretoapp.trainers.config import TrainConfig, load_config, read_config

from .data import BENIGN, HARMFUL, DemoData, write_jsonl
from .presets import Preset

RECIPES = Path(__file__).with_name("recipes")


def recipe_file(recipe: str, method: str) -> Path:
    """``recipes/<recipe>/<method>.yaml``, or the recipe's ``base.yaml`` when the method has no file there."""
    folder = RECIPES / recipe
    if not (folder / "base.yaml").is_file():
        raise ValueError(f"no demo recipe {recipe!r}: {folder / 'base.yaml'} is missing; "
                         f"recipes: {', '.join(sorted(p.name for p in RECIPES.iterdir() if p.is_dir()))}")
    own = folder / f"{method}.yaml"
    return own if own.is_file() else folder / "base.yaml"


def _fields(cls) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def _is_train_config(tp) -> bool:
    return tp is TrainConfig or TrainConfig in typing.get_args(tp)


def search_prompts(path: Path, data: DemoData, n: int) -> Path:
    """Write ``n`` dev prompts (half harmful, then half benign; the training prompts if there are no dev prompts)
    to ``path``: what a method's post-training search scores its candidates on."""
    pool = data.dev_prompts or data.train_prompts
    harmful = (n + 1) // 2
    rows = ([r for r in pool if r["kind"] == HARMFUL][:harmful] + [r for r in pool if r["kind"] == BENIGN][:n - harmful])
    return write_jsonl(path, rows)


def demo_values(cls, recipe: dict, method: str, preset: Preset, args, data: DemoData) -> dict:
    """What the demo fills into ``method``'s recipe (see the module docstring)."""
    work, family = Path(args.work), preset.family_dir(method)
    hints = _fields(cls)
    names = [o["name"] for o in recipe.get("objectives") or []] or list(preset.objectives)
    given = {o["name"]: o for o in recipe.get("objectives") or []}
    values = {"name": family, "output_dir": str(work / family), "adapters_dir": str(work / "adapters"),
              "family_dir": str(Path(args.out) / family),
              "objectives": [{**given.get(o, {}), "name": o,
                              "data": {"source": str(data.pairs_path_for(o).resolve()), "objective": o,
                                       "layout": "trl", "chat": True}} for o in names]}
    for key, tp in hints.items():
        if _is_train_config(tp) and (key == "train" or key in recipe):
            values[key] = {"seed": args.seed, "progress": not args.quiet}
    if "scorers" in hints:
        scorer_of = dict(zip(preset.objectives, preset.scorers))
        values["scorers"] = [scorer_of[o] for o in names]
    if "eval_prompts" in hints:
        n = recipe.get("n_eval_prompts", getattr(cls, "n_eval_prompts", 16))
        path = Path(args.out) / "demo" / "data" / f"{method}_search_prompts.jsonl"
        values["eval_prompts"] = str(search_prompts(path, data, int(n)).resolve())
    return values


def method_config(method: str, preset: Preset, args, data: DemoData):
    """``method``'s run config for this build: its recipe, the demo's values, then ``args.set``; checked."""
    cls = get_method(method).config_class()
    path = recipe_file(preset.recipe, method)
    values = demo_values(cls, read_config(path), method, preset, args, data)
    return load_config(cls, str(path), list(getattr(args, "set", None) or []), values=values)
