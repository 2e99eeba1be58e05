"""One demo family, end to end: train it from its recipe, finish it, evaluate it, check its behaviour."""

from __future__ import annotations

import json
import time
from pathlib import Path

from paretoapp.methods import get_method
from paretoapp.trainers.config import ConfigError

from .data import DemoData
from .family_texts import finish_family
from .log import log
from .presets import PRESETS, Preset
from .recipes import method_config, recipe_file
from .scores_cache import cached_scorers, takes_scorers


def train_family(method: str, preset: Preset, args, data: DemoData) -> Path:
    """Train one registered method on the demo data with its recipe; returns the family folder."""
    spec = get_method(method)
    try:
        cfg = method_config(method, preset, args, data)
    except ConfigError as exc:
        raise SystemExit(f"the demo's recipe for {method} ({recipe_file(preset.recipe, method)}, with the "
                         f"{preset.family_prefix!r} set's objectives and any --set): {exc}") from None
    train = spec.train_fn()
    # a trainer that scores the data's answers with its config's ``scorers`` is handed them ready-made, reading
    # the data's scores first
    extra = {"scorers": cached_scorers(cfg, data, cfg.scorers)} if takes_scorers(cfg, train) else {}
    try:
        path = Path(train(cfg, **extra))
    except ConfigError as exc:  # a run in --work made with other settings (a recipe was edited)
        raise SystemExit(f"{exc}\nThe demo's work folder {args.work} holds runs made with other settings; "
                         "re-run with --fresh to rebuild from nothing.") from None
    finish_family(path)
    return path


def evaluate_family_dir(path: Path, preset: Preset, args, data: DemoData, method: str):
    """Evaluate the family on the held-out prompts and run the behaviour checks on it once: their summary goes
    on the family card (``behaviour_summary`` in the results meta). Returns (result, checks)."""
    return evaluate_demo_family(path, data.eval_prompts, preset, method, Path(args.work) / "eval-cache",
                                show_progress=not args.quiet)


def evaluate_demo_family(path: Path, eval_rows: list[dict], preset: Preset, method: str, cache_dir: Path,
                         show_progress: bool = True, presence_penalty: float = 0.0, ref=None):
    """:func:`evaluate_family_dir` on given held-out rows (``{"prompt", "kind"}``), optionally answered with a
    presence penalty and measured at a given reference point (a family added beside a built set uses the set's)."""
    from paretoapp.evaluate import evaluate_family
    from paretoapp.generate import GenerationSettings

    from .checks import check_family, summary_line

    prompts = [r["prompt"] for r in eval_rows]
    settings = GenerationSettings(max_new_tokens=preset.eval_max_new_tokens, do_sample=False,
                                  presence_penalty=presence_penalty)
    result = evaluate_family(path, prompts, list(preset.scorers), grid=preset.eval_grid, settings=settings,
                             batch_size=preset.eval_batch_size, cache_dir=cache_dir, ref=ref,
                             prompts_source="assets/demo/data/eval_prompts.jsonl (held out)",
                             show_progress=show_progress)
    kinds = {r["prompt"]: r["kind"] for r in eval_rows}
    checks = check_family(result.rows, kinds, list(preset.objectives), list(preset.scorers), method)
    result.meta["behaviour_summary"] = summary_line(checks)  # the family card: what was measured, misses included
    result.save(path / "results")
    return result, checks


def behaviour_checks(checks, method: str) -> dict:
    """The behaviour bounds on one family's evaluation (:mod:`paretoapp.demo.checks`): printed, and returned for
    the build record."""
    from .checks import checks_frame, passed

    frame = checks_frame(checks)
    print(f"behaviour checks ({method}): {'all bounds met' if passed(checks) else 'BOUNDS MISSED'}\n"
          + frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    return {"passed": passed(checks), "checks": json.loads(frame.to_json(orient="records"))}


def build_method(method: str, preset_name: str, args, data: DemoData) -> dict:
    """Train one family and evaluate it; returns what the build record keeps of it."""
    preset = PRESETS[preset_name]
    timings, done = {}, {"preset": preset_name, "method": method}
    t = time.perf_counter()
    path = train_family(method, preset, args, data)
    timings[f"train_{method}_s"] = round(time.perf_counter() - t, 1)
    done["family"] = str(path)
    if not args.skip_eval:
        log(f"evaluating {preset.family_dir(method)} on {len(data.eval_prompts)} held-out prompts "
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
