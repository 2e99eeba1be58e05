"""``paretoapp app``: open the explorer on the embedded demo or your own families."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..ui.serve import add_arguments as add

    add(p)


def run(args) -> int:
    from ..ui.serve import serve

    serve(args)
    return 0
