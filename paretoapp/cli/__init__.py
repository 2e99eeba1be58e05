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
import os
import sys
from collections.abc import Callable

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


LOADS_MODELS = ("train", "evaluate", "export", "app")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (if any) gets its full arguments."""
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="paretoapp",
                                     description="Train, evaluate and explore multi-objective LLM policy families.")
    debug_help = "show the full traceback of any error (or set PARETOAPP_DEBUG=1)"
    parser.add_argument("--debug", action="store_true", default=debug_requested(), help=debug_help)
    common = argparse.ArgumentParser(add_help=False)  # --debug also after the subcommand
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    loads_models = argparse.ArgumentParser(add_help=False)
    loads_models.add_argument("--allow-pickle", action="store_true",
                              help="load base models that hold only pickle weights (.bin, .pt): only if you trust "
                                   "them, since unpickling can run code (the same as PARETOAPP_ALLOW_PICKLE=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        parents = [common, loads_models] if name in LOADS_MODELS else [common]
        p = sub.add_parser(name, help=help_text, description=help_text, parents=parents)
        if name == chosen:
            module = importlib.import_module(f"{__name__}.{name}")
            module.add_arguments(p)
            p.set_defaults(run=module.run)
    return parser


def debug_requested() -> bool:
    return os.environ.get("PARETOAPP_DEBUG") == "1"


def user_message(exc: BaseException) -> str | None:
    """One line for an error a user can act on; None for a bug (which keeps its traceback)."""
    from ..validation import is_network_error, one_line

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and status >= 400:  # the Hub answered, with a refusal
        return (f"the server answered HTTP {status} ({one_line(exc)[:200]}); check the repo id, that it exists "
                "and that your token may use it")
    if is_network_error(exc):
        return (f"network error ({type(exc).__name__}: {one_line(exc)[:200]}); check your connection and try "
                "again (the Hub needs network; local folders and the embedded demo do not)")
    if isinstance(exc, ValueError):  # our errors (FamilyError, ExportError, InputError ...) carry the fix
        return one_line(exc)
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            return (f"cannot use {exc.filename}: {exc.strerror}; check that the path exists and that you may "
                    "read or write there, or choose another")
        return one_line(exc) or type(exc).__name__
    return None


def report_errors(run: Callable[[], int], debug: bool = False) -> int:
    """Run a command: errors a user can fix print ``error: <one line>`` and return 2; Ctrl-C returns 130."""
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = None if debug else user_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    previous = os.environ.get("PARETOAPP_ALLOW_PICKLE")
    if getattr(args, "allow_pickle", False):
        os.environ["PARETOAPP_ALLOW_PICKLE"] = "1"  # read by models.load_base, however deep the command loads
    try:
        return report_errors(lambda: int(args.run(args) or 0), debug=args.debug)
    finally:
        if previous is None:
            os.environ.pop("PARETOAPP_ALLOW_PICKLE", None)
        else:
            os.environ["PARETOAPP_ALLOW_PICKLE"] = previous
