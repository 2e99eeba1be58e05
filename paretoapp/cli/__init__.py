"""The ``paretoapp`` command (also ``python -m paretoapp``): one subcommand per job.

Each subcommand is a module of this package with ``add_arguments(parser)`` and
``run(args) -> exit code``. Only the chosen subcommand's module is imported,
and heavy imports live inside ``run``, so ``--help`` is instant. Errors that a
user can fix (every paretoapp error is a ValueError with the fix in its
message) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "train": "train a family with one method: paretoapp train METHOD --config cfg.yaml [--set key=value]",
    "evaluate": "generate and score a family's front; write a results table",
    "compare": "compare evaluated fronts on one shared reference point; write a plotly HTML",
    "export": "export one preference of a family as merged weights or a LoRA adapter (zip, Hub)",
    "pick": "the w a constraint picks on an evaluated front: --at-least harmless=0.9 --maximize helpful",
    "scorers": "list the scorers --scorers accepts",
    "app": "open the Gradio explorer (the embedded demo, family folders or Hub families)",
    "demo": "rebuild the embedded demo (families of SmolLM2-135M-Instruct, trained and evaluated on a CPU)",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (if any) gets its full arguments."""
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="paretoapp",
                                     description="Train, evaluate and explore multi-objective LLM policy families.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"{__name__}.{name}")
            module.add_arguments(p)
            p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as e:  # our errors (ScorerError, EvaluationError, FamilyError ...) carry the fix
        print(f"error: {e}", file=sys.stderr)
        return 2
