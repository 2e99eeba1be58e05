"""``paretoapp pick FAMILY --at-least harmless=0.9 --maximize helpful``: the w a constraint picks on the front."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help="family folder (its results are found next to it) or a results folder")
    p.add_argument("--at-least", action="append", default=[], metavar="NAME=VALUE",
                   help="a floor on an objective (family objective or scorer name); repeatable")
    p.add_argument("--at-most", action="append", default=[], metavar="NAME=VALUE",
                   help="a ceiling on an objective; repeatable")
    p.add_argument("--maximize", default=None, help="the objective to make as good as possible (default: the first "
                                                    "one without a bound)")
    p.add_argument("--results", default=None, help="results folder (default: the one next to the family)")


def run(args) -> int:
    from pathlib import Path

    from ..evaluate import EvaluationError, load_results
    from ..picking import can_interpolate, parse_bounds, pick
    from ..ui.catalog import find_results

    at_least, at_most = parse_bounds(args.at_least, "--at-least"), parse_bounds(args.at_most, "--at-most")  # first
    folder = Path(args.family)
    manifest = None
    if (folder / "family.json").is_file():
        from ..family import Family
        manifest = Family.load(folder).manifest
        results = Path(args.results) if args.results else find_results(folder, manifest.name)
        if results is None:
            raise EvaluationError(f"{folder} has no evaluation results next to it; run `paretoapp evaluate` first "
                                  "or pass --results")
    else:
        results = folder
    result = load_results(results)
    p = pick(result, at_least, at_most, args.maximize, interpolate=manifest is not None and can_interpolate(manifest),
             family_objectives=[o.name for o in manifest.objectives] if manifest else None)
    print(("w = (" + ", ".join(f"{v:g}" for v in p.w) + ")") if p.w is not None else "no w")
    print("  " + ", ".join(f"{k} {v:.4g}" for k, v in p.means.items()))
    print(f"  {p.note}")
    return 0 if p.feasible else 1
