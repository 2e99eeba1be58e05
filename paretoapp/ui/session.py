"""What one browser session holds, and the app-wide objects every tab shares.

``Session`` lives in ``gr.State``: Gradio gives every browser session its own
copy, so one visitor's preference never reaches another's. ``AppContext`` is
built once per app: the catalog of families (shared, read-mostly) and the
registry of running generations that Stop and Clear cancel. Nothing else in
the UI keeps state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import gradio as gr

from ..engine import EngineBusy
from ..export import ExportError
from ..family import FamilyError
from ..gates import PreferenceError
from ..generate import PromptTooLongError
from ..preferences import PreferenceSpace
from .catalog import Catalog, FamilyEntry

# the errors a visitor can act on: shown as a one-line toast (``user_error``), never as a traceback
USER_ERRORS = (PreferenceError, FamilyError, ExportError, PromptTooLongError, ValueError, EngineBusy)


@dataclass
class Session:
    """One browser session: the family it looks at, its preference w for that family, the points it
    evaluated itself ("Evaluate this w") and the objective it colours each family's triangle by.

    ``live`` and ``colour`` are shared by every copy ``at`` makes and changed in place, so an event that
    finishes late with an older copy of the session cannot undo them.
    """

    family: str
    w: list[float]
    live: dict[str, list[dict]] = field(default_factory=dict)
    colour: dict[str, str] = field(default_factory=dict)  # family -> objective its triangle is coloured by

    def w_for(self, entry: FamilyEntry) -> list[float]:
        """The session's w if it belongs to ``entry``'s family, else that family's default."""
        if self.family == entry.key and len(self.w) == entry.k:
            return list(self.w)
        return PreferenceSpace(entry.manifest).default_w()

    def at(self, entry: FamilyEntry, w) -> Session:
        """This session moved to family ``entry`` at ``w`` (its evaluated points kept)."""
        return Session(entry.key, [float(v) for v in w], self.live, self.colour)

    def live_points(self, key: str) -> list[dict]:
        return self.live.get(key, [])


def session_id(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


class Cancels:
    """Cancel events of the generations running now, one per (session, kind); safe across threads."""

    def __init__(self):
        self._events: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str, kind: str) -> threading.Event:
        """A fresh event for a new generation (a previous one of the same kind is cancelled)."""
        event = threading.Event()
        with self._lock:
            old = self._events.get((session, kind))
            self._events[(session, kind)] = event
        if old is not None:
            old.set()
        return event

    def cancel(self, session: str, kind: str, reason: str = "stop") -> None:
        """Stop that generation at its next token; ``reason`` ("stop" keeps the answer so far, "clear" drops it)
        is left on the event for the handler to read."""
        with self._lock:
            event = self._events.get((session, kind))
        if event is not None:
            event.reason = reason
            event.set()

    def running(self) -> int:
        """How many generations are running now (their events not yet finished)."""
        with self._lock:
            return len(self._events)

    def finish(self, session: str, kind: str, event: threading.Event) -> None:
        event.set()
        with self._lock:
            if self._events.get((session, kind)) is event:
                del self._events[(session, kind)]


@dataclass
class AppContext:
    """The app-wide objects: families and running generations."""

    catalog: Catalog
    cancels: Cancels = field(default_factory=Cancels)

    def entry(self, key: str) -> FamilyEntry:
        """The family named ``key``, or a user-facing error that lists the loaded ones."""
        try:
            return self.catalog.get(key)
        except FamilyError as exc:
            raise user_error(exc) from None

    def space(self, key: str) -> tuple[FamilyEntry, PreferenceSpace]:
        entry = self.entry(key)
        return entry, PreferenceSpace(entry.manifest)

    def w_from_controls(self, key: str, values) -> tuple[FamilyEntry, PreferenceSpace, list[float]]:
        """Control values -> a checked w for family ``key`` (a user-facing error if it is not valid)."""
        entry, space = self.space(key)
        try:
            return entry, space, space.to_w(list(values)[: len(space.controls())])
        except PreferenceError as exc:
            raise user_error(exc) from None


def user_error(exc: BaseException) -> gr.Error:
    """A toast that stays until dismissed, with the error's own message (which says what to do)."""
    return gr.Error(str(exc), duration=None, print_exception=False)
