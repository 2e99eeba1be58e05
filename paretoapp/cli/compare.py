"""``paretoapp compare``: fronts of several evaluations on one shared reference point."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="results folders written by `evaluate`")
    p.add_argument("--names", default=None, help="comma-separated labels (default: folder names)")
    p.add_argument("--html", default="fronts.html", help="plotly HTML of the fronts (a PNG too if kaleido is installed)")
    p.add_argument("--x", default=None, help="objective on the x axis (default: the first)")
    p.add_argument("--y", default=None, help="objective on the y axis (default: the second)")
    p.add_argument("--ref", default=None, help="shared hypervolume reference point, comma-separated")


def run(args) -> int:
    import pandas as pd

    from .. import pareto
    from ..evaluate import EvaluationError, compare_results, load_results
    from ..frontplot import comparison_figure, write_figure
    from ..validation import number_list

    ref = number_list(args.ref, "--ref", "0,0 (one value per objective)") if args.ref else None
    names = args.names.split(",") if args.names else [Path(r).resolve().name for r in args.results]
    if len(names) != len(args.results):
        raise EvaluationError(f"{len(names)} names for {len(args.results)} results")
    if len(set(names)) != len(names):
        raise EvaluationError(f"labels must be unique, got {names}; pass --names")
    results = {n: load_results(r) for n, r in zip(names, args.results)}
    table, ref_used = compare_results(results, ref=ref)
    first = next(iter(results.values()))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    rule = "given" if ref else f"worst mean over all fronts minus {pareto.DEFAULT_MARGIN:g} x range"
    print(f"shared reference point {pareto.format_reference(ref_used, first.objectives)} ({rule})")
    if not table["same_prompts"].all():
        print("warning: not all results used the same prompts; their numbers are not directly comparable")
    written = write_figure(comparison_figure(results, x=args.x, y=args.y), args.html)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0
