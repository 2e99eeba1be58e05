"""One command line for every method: ``paretoapp train METHOD --config cfg.yaml [--set key=value ...]``.

The method's config class and train function come from the registry
(``paretoapp.methods``), so a method module only defines them; its own
``python -m paretoapp.trainers.<method>`` (and the old ``python -m
trainers.<method>``) run the same code.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

from paretoapp import settings
from paretoapp.errors import report_errors
from paretoapp.methods import get_method


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``--config file.yaml`` and any number of ``--set key=value``: every command that trains takes these.

    This module imports no training code at the top, so ``paretoapp train --help`` stays instant."""
    p.add_argument("--config", help="YAML run config (examples: paretoapp/trainers/configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, dotted (train.learning_rate=1e-5); repeatable")


def parse_cli(cls, argv: list[str] | None = None, description: str = ""):
    """A config of dataclass ``cls`` from ``--config`` and ``--set`` on a command line of its own."""
    from .config import load_config

    parser = argparse.ArgumentParser(description=description)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    return load_config(cls, args.config, args.set)


def train_method(name: str, config: str | None, overrides: list[str] = (), allow_pickle: bool | None = None) -> Path:
    """Load METHOD's config from YAML plus overrides, train it, return the family folder.

    ``allow_pickle`` (the CLI's ``--allow-pickle``) overrides the config's ``allow_pickle`` when given."""
    from .config import load_config

    method = get_method(name)
    cfg = load_config(method.config_class(), config, list(overrides))
    if allow_pickle is not None:
        cfg.allow_pickle = allow_pickle
    path = Path(method.train_fn()(cfg))
    print(path)
    return path


def run_method(name: str, argv: list[str] | None = None) -> Path:
    """``python -m paretoapp.trainers.<name> --config ...``: the same as ``paretoapp train <name>``.

    From the command line (``argv`` None) an error a user can fix prints one line
    and exits with code 2, as ``paretoapp train`` does; a caller passing ``argv``
    gets the exception.
    """
    method = get_method(name)
    parser = argparse.ArgumentParser(prog=f"paretoapp train {name}", description=f"{method.title}: {method.summary}")
    add_config_arguments(parser)
    parser.add_argument("--debug", action="store_true", default=settings.DEBUG.get(),
                        help="show the full traceback of any error (or set PARETOAPP_DEBUG=1)")
    args = parser.parse_args(argv)
    if argv is not None:
        return train_method(name, args.config, args.set)
    paths = []
    code = report_errors(lambda: paths.append(train_method(name, args.config, args.set)) or 0, debug=args.debug)
    if code:
        raise SystemExit(code)
    return paths[0]


def method_main(name: str) -> Callable[[list[str] | None], Path]:
    """A method module's ``main(argv)``."""
    return functools.partial(run_method, name)
