"""What a tab of the app is, and what app.py hands to every tab.

A tab is one module ``tab_*.py`` with one class that subclasses ``Tab``. Its
constructor builds its components (inside ``gr.Tabs``) from a ``Start``;
``wire`` connects its own events, reading and setting the controls the tabs
share through ``Shared``; and when the family or the session's w changes, it
says what it shows then as a dict keyed by its own components, which it lists
beside the method that fills them. app.py wires those two changes once for
every tab from these lists, so it keeps no output list of its own, and a new
tab is its module plus one entry in ``app.TABS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gradio as gr

from .catalog import FamilyEntry
from .session import AppContext, Session

Updates = dict[Any, Any]  # a component -> its new value, or a gr.update(...)


@dataclass(frozen=True)
class Start:
    """What every tab is built from."""

    ctx: AppContext
    first: FamilyEntry  # the family the page opens on
    w0: list[float]     # its default w
    on_space: bool      # running as a Hugging Face Space: no local folders, Hub login instead of a token


@dataclass(frozen=True)
class Shown:
    """The page when the family or w changes: the session (already at the new family and w), and the
    front's overlaid families and axes (the Explore tab's view, which every redraw keeps)."""

    session: Session
    overlay: list[str]
    x: str | None
    y: str | None

    @classmethod
    def of(cls, sess: Session, over, x, y) -> Shown:
        """From the values of ``[session, *Shared.view[1:]]`` as a handler receives them."""
        return cls(sess, list(over or []), x, y)


@dataclass(frozen=True)
class Shared:
    """The controls more than one tab reads or sets, passed to every tab's ``wire``.

    The Explore tab builds the components (they sit on its page); app.py adds
    the session and ``move``, the one way a tab moves the session to another
    family or w (every tab's ``preference_updates`` follow).
    """

    session: gr.State
    family: gr.Dropdown
    overlay: gr.Dropdown
    x_axis: gr.Dropdown
    y_axis: gr.Dropdown
    sliders: list                 # the session's w as controls (``controls.sliders``)
    system: gr.Textbox
    temperature: gr.Slider
    max_tokens: gr.Slider
    move: Callable[[str, Sequence[float], str, Shown], Updates]  # (family, w, family shown before, shown) -> updates
    move_outputs: list            # the outputs of any event whose handler returns ``move(...)``
    move_w_outputs: list          # the same for a move that never leaves the shown family (fewer: an API's outputs)

    @property
    def view(self) -> list:
        """What a redraw of the front reads: family, overlay and axes (handlers get them as key, over, x, y)."""
        return [self.family, self.overlay, self.x_axis, self.y_axis]

    @property
    def settings(self) -> list:
        """Generation settings: system prompt, temperature, max new tokens."""
        return [self.system, self.temperature, self.max_tokens]


class Tab(Protocol):
    """One tab. Subclass it and override what the tab needs: by default a tab shows nothing new when the
    family or w changes and wires no events. Its constructor takes a ``Start``."""

    @property
    def family_outputs(self) -> list:
        """Every component ``family_updates`` may return."""
        return []

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        """What the tab shows for a newly chosen family (its ``preference_updates`` are applied as well)."""
        return {}

    @property
    def preference_outputs(self) -> list:
        """Every component ``preference_updates`` may return."""
        return []

    def preference_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        """What the tab shows for the session's new w (``shown.session.w``), whichever control set it."""
        return {}

    def wire(self, shared: Shared) -> None:
        """Connect the tab's own events (called once, after every tab is built)."""
