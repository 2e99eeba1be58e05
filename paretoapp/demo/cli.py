"""``paretoapp demo`` (and ``python -m trainers.demo``): the demo build's command line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from paretoapp.methods import trainable_names

from .presets import PRESETS, SETS, set_presets


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted([*PRESETS, *SETS]), default="all",
                   help="'all' rebuilds every committed family (the 'demo' and 'demo-k3' sets) and the tables of "
                        "docs/demo.md; 'demo' or 'demo-k3' one set; 'tiny' / 'tiny-all' are smoke tests")
    p.add_argument("--out", default="assets", help="where families and demo data go (default: assets)")
    p.add_argument("--work", default=None, help="training runs and caches (default: build/demo-<preset>)")
    p.add_argument("--methods", default=None,
                   help="comma-separated registered methods to build (`paretoapp train` lists them; default: the "
                        "preset's methods: every registered one, or RS, PV and Panacea for demo-k3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of every method's recipe, dotted as for `paretoapp train` "
                        "(train.max_steps=4); repeatable")
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
    p.add_argument("--no-refusal-family", action="store_true",
                   help="do not build the refusal-mix families after the DPO-era ones (Rewarded Soups, the "
                        "family the app opens on, then PEO and linear DPO: about 4 h from nothing; "
                        "python -m paretoapp.demo.refusal_family --method M builds one)")


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in the work folder and check the method list (a ValueError names the fix)."""
    first = set_presets(args.preset)[0]
    args.work = args.work or str(Path("build") / f"demo-{PRESETS[first].work_name or first}")
    cores = os.cpu_count() or 1
    args.jobs = max(1, args.jobs or min(4, cores))
    args.threads = args.threads or max(1, cores // args.jobs)
    if getattr(args, "doc", None) is None and args.preset == "all" and Path(args.out) == Path("assets"):
        args.doc = "docs/demo.md"
    known = trainable_names()
    unknown = [m.strip() for m in (args.methods or "").split(",") if m.strip() and m.strip() not in known]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown} for the demo; registered trainable methods: {', '.join(known)}")
    return args


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="paretoapp demo", description="The embedded demo: build the families the app opens with, offline, on a CPU, from nothing.")
    add_arguments(p)
    try:
        return resolve_args(p.parse_args(argv))
    except ValueError as exc:
        p.error(str(exc))


def run(args: argparse.Namespace) -> dict:
    """Build the demo as ``args`` say (``paretoapp demo``)."""
    from .build import build

    resolve_args(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    return build(args)


def main(argv=None) -> dict:
    return run(parse_args(argv))
