"""The project's error types, in one place.

Every error a user can fix is a :class:`ParetoappError` (a ``ValueError``) whose
message is one line saying what is wrong and what to do; the command line prints
that line and exits with code 2 (``report_errors``).
"""

from __future__ import annotations


class ParetoappError(ValueError):
    """A paretoapp error a user can fix; the message says how."""


class ScorerError(ParetoappError):
    """A scorer that cannot be built or run, with what to do about it."""
