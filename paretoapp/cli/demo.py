"""``paretoapp demo``: rebuild the embedded demo families offline (the same as ``python -m paretoapp.demo``)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..demo.cli import add_arguments as add

    add(p)


def run(args) -> int:
    from ..demo.cli import run as build

    return 0 if build(args) else 1
