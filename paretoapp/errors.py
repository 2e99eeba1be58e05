"""The project's error types and how an error reaches a user, in one place.

Every error a user can fix is a :class:`ParetoappError` (a ``ValueError``) whose
message is one line saying what is wrong and what to do. The modules that raise
them re-export them under their old homes (``paretoapp.family.FamilyError`` ...).
:func:`report_errors` is what every command line runs its work through: an error a
user can fix prints ``error: <one line>`` and exits with code 2; anything else is a
bug and keeps its traceback (``--debug`` or ``PARETOAPP_DEBUG=1``: every error does).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

NETWORK_MODULES = ("httpx", "httpx2", "requests", "urllib3", "aiohttp")


class ParetoappError(ValueError):
    """A paretoapp error a user can fix; the message says how."""


class InputError(ParetoappError):
    """A value a caller passed that cannot be used; the message says how to fix it."""


class PromptTooLongError(InputError):
    """The prompt does not fit the model's context with room for the answer."""


class PreferenceError(ParetoappError):
    """A preference vector the family cannot serve (wrong length, NaN, out of range)."""


class FamilyError(ParetoappError):
    """A family folder that cannot be used, with what is wrong and how to fix it."""


class BaseModelError(ParetoappError):
    """A base model that cannot be loaded here, with what is wrong and how to fix it."""


class UnknownMethodError(ParetoappError):
    """A method name that is not registered, with the names that are."""


class RequestError(ParetoappError):
    """A request the engine cannot serve (it fails alone, before it reaches the batch)."""


class EngineBusy(RuntimeError):
    """The engine's queue is full: the request was not taken (not the caller's mistake: try again later)."""


class ExportError(ParetoappError):
    """An export request that cannot be carried out safely."""


class ScorerError(ParetoappError):
    """A scorer that cannot be built or run, with what to do about it."""


class EvaluationError(ParetoappError):
    """Bad evaluation input (prompts, grid, results folder), with what to do about it."""


class ConfigError(ParetoappError):
    """A config file or override that does not fit the run's dataclass."""


class DataError(ParetoappError):
    """Preference data that cannot be used, with what is wrong and what to do."""


class DemoDataError(DataError):
    """The embedded demo's data cannot be built (a data wheel is missing, too few prompts or pairs)."""


# ------------------------------------------------------------------ one-line messages
def shown(value, limit: int = 60) -> str:
    """A value quoted for an error message: one line, at most ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str) -> str:
    """A message with its line breaks folded, so it prints as one line."""
    return " ".join(str(text).split())


def is_network_error(exc: BaseException) -> bool:
    """Connection refused, no DNS, timeouts: from the HTTP clients the Hub and Gradio use, or the OS."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in NETWORK_MODULES for cls in type(exc).__mro__)


def user_message(exc: BaseException) -> str | None:
    """One line for an error a user can act on; None for a bug (which keeps its traceback)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and status >= 400:  # the Hub answered, with a refusal
        return (f"the server answered HTTP {status} ({one_line(exc)[:200]}); check the repo id, that it exists "
                "and that your token may use it")
    if is_network_error(exc):
        return (f"network error ({type(exc).__name__}: {one_line(exc)[:200]}); check your connection and try "
                "again (the Hub needs network; local folders and the embedded demo do not)")
    if isinstance(exc, (ValueError, EngineBusy)):  # our errors carry the fix (busy: try again; a server is down)
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
