"""One whole demo build: the data once, every family of the set on the workers, then the set's records."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import torch

from .data import DemoData, build_demo_data, pair_counts, write_json
from .family_texts import refresh_descriptions
from .log import log
from .presets import PRESETS, Preset, chosen_methods, set_presets
from .records import build_file, environment, finish_preset, recorded_costs
from .units import plan_units, run_units


def shared_data_settings(name: str, presets: list[Preset]) -> None:
    """The presets of one set share one data folder, so they must ask for the same data (a ValueError if not)."""
    settings = {json.dumps([p.n_train, p.n_eval, p.n_dev, dataclasses.asdict(p.sample),
                            dataclasses.asdict(p.pair_settings)], sort_keys=True) for p in presets}
    if len(settings) != 1:
        raise ValueError(f"the presets of {name!r} must share their data settings to share one data folder")


def make_data(out: Path, presets: list[Preset], args) -> DemoData:
    """The set's preference data (cached in ``out/demo/data``), on every core: no worker runs yet."""
    first = presets[0]
    objectives = tuple(dict.fromkeys(o for p in presets for o in p.objectives))
    log(f"preference data: {first.n_train}+{first.n_train} training prompts, {first.n_eval}+{first.n_eval} "
        f"held out; objectives {', '.join(objectives)}")
    torch.set_num_threads(os.cpu_count() or 1)
    data = build_demo_data(out / "demo" / "data", first.n_train, first.n_eval, first.sample, first.pair_settings,
                           show_progress=not args.quiet, n_dev=first.n_dev, objectives=objectives)
    torch.set_num_threads(args.threads)
    return data


def build_families(methods: dict[str, list[str]], costs: dict, args, data: DemoData) -> list[dict]:
    """Every family of the set on the workers, then the current texts on every family under ``--out``."""
    units = plan_units(methods, costs)
    log(f"{sum(len(u) for u in units)} families in {len(units)} units on {args.jobs} worker(s) of "
        f"{args.threads} thread(s): " + "; ".join(" -> ".join(PRESETS[p].family_dir(m) for p, m in u) for u in units))
    built = run_units(units, args, data)
    refresh_descriptions(Path(args.out))
    return built


def build_refusal_family(out: Path, work: Path, args, reference: list[float]) -> list[str]:
    """The refusal-mix families (:mod:`paretoapp.demo.refusal_family`: the one the app opens on, then PEO from the
    same experts and linear DPO from the same data), after the DPO-era families: their own work folder beside the
    set's, measured at the set's new reference point; ``--fresh`` rebuilds them from nothing too."""
    from .refusal_family import Build, run
    from .refusal_names import COMMITTED

    ran = []
    for i, method in enumerate(COMMITTED):
        log(f"the refusal-mix {method} family (python -m paretoapp.demo.refusal_family --method {method}): each "
            "step not done yet")
        redo = "mix" if args.fresh and i == 0 else None  # the data and experts once, then shared
        ran += run(Build(work.parent / "refusal-mix", out, args.threads, reference, method=method), redo=redo)
    return ran


def build(args) -> dict:
    """Build the preset (or set of presets, ``presets.SETS``) ``args`` name; returns the build record (a set: the
    last preset's, with every preset's under ``"sets"``)."""
    names = set_presets(args.preset)
    presets = [PRESETS[n] for n in names]
    out, work = Path(args.out), Path(args.work)
    shared_data_settings(args.preset, presets)
    chosen = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    methods = chosen_methods(names, chosen)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out / "demo" / "data", ignore_errors=True)
    costs = recorded_costs(out, names)
    torch.manual_seed(args.seed)
    record = {"seed": args.seed, "threads": args.threads, "jobs": args.jobs, "set": list(names),
              "fresh": bool(args.fresh), "environment": environment(),
              **({"overrides": list(args.set)} if getattr(args, "set", None) else {})}
    t0 = time.perf_counter()
    data = make_data(out, presets, args)
    timings = {"data_s": round(time.perf_counter() - t0, 1)}
    t = time.perf_counter()
    built = build_families(methods, costs, args, data)
    timings["families_s"] = round(time.perf_counter() - t, 1)
    records = {name: finish_preset(out, name, args, built, {**record, "pairs": pair_counts(
        data.pairs, PRESETS[name].objectives), "timings": dict(timings)}) for name in names}
    if ("demo" in names and not chosen and not args.skip_eval and records["demo"].get("shared_reference")
            and not getattr(args, "no_refusal_family", False)):
        t = time.perf_counter()
        build_refusal_family(out, work, args, records["demo"]["shared_reference"]["reference"])
        records["demo"]["timings"]["refusal_family_s"] = round(time.perf_counter() - t, 1)
    if args.doc and not args.skip_eval:
        from .report import write_tables
        write_tables(out, args.doc)
        log(f"tables rewritten in {args.doc}")
    total = round(time.perf_counter() - t0, 1)
    for name in names:  # the wall time of the whole build, the tables included
        records[name]["timings"]["total_s"] = total
        write_json(build_file(out, name), records[name])
    log(f"done in {total:.0f} s ({total / 60:.1f} min); families in {out}")
    result = records[names[-1]]
    return {**result, "sets": records} if len(names) > 1 else result
