"""Command line: ``python -m paretoapp <command> ...``.

Each command is a pair of functions, ``add_<name>_arguments(parser)`` and
``run_<name>(args) -> int``, listed in :data:`COMMANDS`.  To add one (``train``,
``export`` ...), write the pair (here or in its own module) and append it to
``COMMANDS``; heavy imports belong inside ``run_<name>`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


# ----------------------------------------------------------------------------- evaluate


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help="family folder (as written by a trainer)")
    p.add_argument("--prompts", required=True,
                   help="JSONL/JSON/CSV/TSV/parquet file with a prompt column, a .txt file, or a Hub dataset id")
    p.add_argument("--prompt-column", default="prompt", help="column holding the prompt (default: prompt)")
    p.add_argument("--split", default="test", help="split of a Hub dataset (default: test)")
    p.add_argument("--dataset-config", default=None, help="config name of a Hub dataset")
    p.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    p.add_argument("--scorers", required=True,
                   help="comma-separated scorers, one per objective, e.g. harmless_offline,helpful_offline or "
                        "ray-helpful,ray-harmless or hf:ID_OR_PATH?label=NAME (see --list-scorers)")
    p.add_argument("--grid", default=None,
                   help="preferences: simplex:R, sweep:N[:LOW:HIGH] (k=2, LOW<0 or HIGH>1 extrapolates), ric3, "
                        "points:a,b;c,d or a JSON/CSV file (default: sweep:11 for k=2, ric3 for k=3)")
    p.add_argument("--out", default=None, help="results folder (default: results/<family name>)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--system-prompt", default=None, help="system prompt (default: the family's own)")
    p.add_argument("--batch-size", type=int, default=64, help="rows (w, prompt) per generate call")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--ref", default=None, help="hypervolume reference point, comma-separated, one per scorer")
    p.add_argument("--cache-dir", default=None, help="where generations and scores are cached")
    p.add_argument("--no-cache", action="store_true", help="recompute everything and write no cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_evaluate(args) -> int:
    import torch

    from .evaluate import evaluate_family, load_prompts
    from .generate import GenerationSettings

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    prompts = load_prompts(args.prompts, split=args.split, column=args.prompt_column, limit=args.limit,
                           config=args.dataset_config)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                                  temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    ref = [float(x) for x in args.ref.split(",")] if args.ref else None
    result = evaluate_family(args.family, prompts, args.scorers, grid=args.grid, settings=settings,
                             system_prompt=args.system_prompt, batch_size=args.batch_size,
                             cache_dir=args.cache_dir, use_cache=not args.no_cache, device=device, ref=ref,
                             prompts_source=str(args.prompts), show_progress=not args.quiet)
    out = Path(args.out) if args.out else Path("results") / result.meta["family"]["name"]
    result.save(out)
    print(result.summary_text())
    reused = "generated" if result.stats.get("generated") else "reused from cache"
    print(f"answers {reused}; scored now: {result.stats.get('scored') or 'none (cache)'}")
    print(f"wrote {out}/rows.parquet, means.csv, meta.json")
    return 0


# ----------------------------------------------------------------------------- compare


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="results folders written by `evaluate`")
    p.add_argument("--names", default=None, help="comma-separated labels (default: folder names)")
    p.add_argument("--html", default="fronts.html", help="plotly HTML of the fronts (a PNG too if kaleido is installed)")
    p.add_argument("--x", default=None, help="objective on the x axis (default: the first)")
    p.add_argument("--y", default=None, help="objective on the y axis (default: the second)")
    p.add_argument("--ref", default=None, help="shared hypervolume reference point, comma-separated")


def run_compare(args) -> int:
    import pandas as pd

    from . import pareto
    from .evaluate import EvaluationError, compare_results, load_results
    from .frontplot import front_figure, write_figure

    names = args.names.split(",") if args.names else [Path(r).resolve().name for r in args.results]
    if len(names) != len(args.results):
        raise EvaluationError(f"{len(names)} names for {len(args.results)} results")
    if len(set(names)) != len(names):
        raise EvaluationError(f"labels must be unique, got {names}; pass --names")
    results = {n: load_results(r) for n, r in zip(names, args.results)}
    ref = [float(x) for x in args.ref.split(",")] if args.ref else None
    table, ref_used = compare_results(results, ref=ref)
    first = next(iter(results.values()))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    rule = "given" if ref else f"worst mean over all fronts minus {pareto.DEFAULT_MARGIN:g} x range"
    print(f"shared reference point {pareto.format_reference(ref_used, first.objectives)} ({rule})")
    if not table["same_prompts"].all():
        print("warning: not all results used the same prompts; their numbers are not directly comparable")
    written = write_figure(front_figure(results, x=args.x, y=args.y), args.html)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


# ----------------------------------------------------------------------------- scorers


def add_scorers_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run_scorers(args) -> int:
    from .rewards import available_scorers

    for name, desc in available_scorers().items():
        print(f"{name:24s} {desc}")
    print("hf:ID_OR_PATH[?label=NAME&lower_is_better=1&input_format=chat|pair|text]  any HF reward model")
    return 0


# ----------------------------------------------------------------------------- dispatch

from .cli_export import add_export_arguments, run_export  # noqa: E402

Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: list[Command] = [
    ("evaluate", "generate and score a family's front; write a results table", add_evaluate_arguments, run_evaluate),
    ("compare", "compare evaluated fronts side by side; write a plotly HTML", add_compare_arguments, run_compare),
    ("scorers", "list the scorers --scorers accepts", add_scorers_arguments, run_scorers),
    ("export", "export one preference of a family as merged weights or a LoRA adapter (zip, Hub)",
     add_export_arguments, run_export),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m paretoapp",
                                     description="Train, evaluate and explore multi-objective LLM policy families.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_arguments, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as e:  # our errors (ScorerError, EvaluationError, FamilyError ...) are ValueErrors with a remedy
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
