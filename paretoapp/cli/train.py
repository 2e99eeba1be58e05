"""``paretoapp train METHOD --config cfg.yaml``: train a family with one registered method."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", nargs="?", help="a registered method (omit it to list them)")
    from ..trainers.cli import add_config_arguments

    add_config_arguments(p)


def run(args) -> int:
    from ..methods import all_methods

    if not args.method:
        for m in all_methods():
            if m.trainable:
                print(f"{m.name:20s} {m.title}: {m.summary}  [{m.reference}]")
        return 0
    from ..trainers.cli import train_method
    from . import allow_pickle

    train_method(args.method, args.config, args.set, allow_pickle=allow_pickle(args))
    return 0
