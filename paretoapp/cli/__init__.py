"""The ``paretoapp`` command (also ``python -m paretoapp``): one subcommand per job.

Each subcommand is a module of this package with ``add_arguments(parser)`` and
``run(args) -> exit code``. Only the chosen subcommand's module is imported,
and heavy imports live inside ``run``, so ``--help`` is instant. Errors that a
user can fix print one line and exit with code 2: every paretoapp error (a
ValueError with the fix in its message), files that cannot be read or written,
and network failures. Anything else is a bug and keeps its traceback; ``--debug``
(or ``PARETOAPP_DEBUG=1``) shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import settings
from ..errors import report_errors

SUBCOMMANDS = {
    "train": "train a family with one method: paretoapp train METHOD --config cfg.yaml [--set key=value]",
    "evaluate": "generate and score a family's front; write a results table",
    "compare": "compare evaluated fronts on one shared reference point; write a plotly HTML",
    "export": "export one preference of a family as merged weights or a LoRA adapter (zip, Hub)",
    "pick": "the w a constraint picks on an evaluated front: --at-least harmless=0.9 --maximize helpful",
    "scorers": "list the scorers --scorers accepts",
    "app": "open the Gradio explorer (the embedded demo, family folders or Hub families)",
    "serve": "an OpenAI-compatible API (/v1/chat/completions) for families, on this engine or on vLLM",
    "demo": "rebuild the embedded demo (families of SmolLM2-135M-Instruct, trained and evaluated on a CPU)",
}


LOADS_MODELS = ("train", "evaluate", "export", "app", "serve")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (if any) gets its full arguments."""
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="paretoapp",
                                     description="Train, evaluate and explore multi-objective LLM policy families.")
    debug_help = "show the full traceback of any error (or set PARETOAPP_DEBUG=1)"
    parser.add_argument("--debug", action="store_true", default=settings.DEBUG.get(), help=debug_help)
    common = argparse.ArgumentParser(add_help=False)  # --debug also after the subcommand
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    loads_models = argparse.ArgumentParser(add_help=False)
    loads_models.add_argument("--allow-pickle", action="store_true",
                              help="load base models that hold only pickle weights (.bin, .pt): only if you trust "
                                   "them, since unpickling can run code (PARETOAPP_ALLOW_PICKLE=1 for every command)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        parents = [common, loads_models] if name in LOADS_MODELS else [common]
        p = sub.add_parser(name, help=help_text, description=help_text, parents=parents)
        if name == chosen:
            module = importlib.import_module(f"{__name__}.{name}")
            module.add_arguments(p)
            p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    return report_errors(lambda: int(args.run(args) or 0), debug=args.debug)


def allow_pickle(args: argparse.Namespace) -> bool | None:
    """``--allow-pickle`` as the loaders take it: True when given, else None (``PARETOAPP_ALLOW_PICKLE`` decides)."""
    return True if getattr(args, "allow_pickle", False) else None
