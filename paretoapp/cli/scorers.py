"""``paretoapp scorers``: the scorers ``--scorers`` accepts."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args) -> int:
    from ..scorers import available_scorers

    for name, desc in available_scorers().items():
        print(f"{name:24s} {desc}")
    print("hf:ID_OR_PATH[?label=NAME&lower_is_better=1&input_format=chat|pair|text]  any HF reward model")
    return 0
