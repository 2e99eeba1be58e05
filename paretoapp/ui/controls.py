"""Preference sliders: a fixed set of MAX_CONTROLS sliders shown, hidden and re-ranged per family.

Gradio components cannot be created after the page is built, so every
preference control set (Explore, side by side A and B) is MAX_CONTROLS
sliders, of which the family's ``PreferenceSpace`` shows as many as it needs.
"""

from __future__ import annotations

import gradio as gr

from ..gates import PreferenceError
from ..preferences import MAX_CONTROLS, PreferenceSpace
from .catalog import FamilyEntry


def slider_updates(entry: FamilyEntry, w) -> list:
    """One ``gr.update`` per slider: range, label and value for the family, the rest hidden."""
    space = PreferenceSpace(entry.manifest)
    controls, values = space.controls(), space.to_controls(w)
    ups = []
    for i in range(MAX_CONTROLS):
        if i < len(controls):
            c = controls[i]
            ups.append(gr.update(visible=True, minimum=c.low, maximum=c.high, step=c.step, label=c.label,
                                 info=c.info, value=values[i]))
        else:
            ups.append(gr.update(visible=False))
    return ups


def sliders(entry: FamilyEntry, w, prefix: str) -> list[gr.Slider]:
    """MAX_CONTROLS sliders set up for ``entry`` at ``w`` (elem_id ``{prefix}{i}``)."""
    out = []
    for i, up in enumerate(slider_updates(entry, w)):
        kw = {k: v for k, v in up.items() if k != "__type__"}
        out.append(gr.Slider(elem_id=f"{prefix}{i}", **{"minimum": 0, "maximum": 1, **kw}))
    return out


def end_w(entry: FamilyEntry, which: int) -> list[float]:
    """An end of the trained range (side by side starts there): all weight on objective ``which``."""
    space = PreferenceSpace(entry.manifest)
    w = [1.0 if i == which else 0.0 for i in range(entry.k)]
    try:
        return space.to_w(space.to_controls(w))
    except PreferenceError:
        return space.default_w()


_CLAMP = ("const el = document.querySelector(`#{prefix}${{i}} input[type=range]`);"
          " return (el && typeof v === 'number') ? Math.min(Math.max(v, +el.min), +el.max) : v;")


def clamp_inputs_js(prefix: str, first: int, count: int) -> str:
    """Browser code that keeps an event's slider inputs inside their ranges: arguments ``first`` ..
    ``first + count - 1`` are the sliders ``#{prefix}0`` .., every other argument passes through.

    Gradio checks a slider's value against its range on the server and raises when the number box held
    more; clamping first makes "7" on a slider that ends at 1.5 mean 1.5. (The box itself shows 1.5 once
    it loses focus: Gradio's slider clamps its own value on blur.)
    """
    return (f"(...values) => values.map((v, j) => {{ const i = j - {first}; if (i < 0 || i >= {count}) return v; "
            + _CLAMP.format(prefix=prefix) + " })")


def slider_event(controls: list, prefix: str, fn, inputs: list, outputs: list,
                 api_name: str | bool = False) -> None:
    """Run ``fn`` when any of ``controls`` is released (pointer up, number box left) or moved by the
    keyboard or typed in (its ``input`` event), with every control's value clamped to its range in the browser.

    One event for all the controls, and ``always_last``: while ``fn`` runs, further moves of any control wait,
    and only the last of them runs, with the values the controls show then. (One event per control let two
    quick moves of two controls finish out of order, leaving the session at the first move's values while
    the controls showed the second's.) Nothing is written back to the controls: an earlier version wrote each
    clamped value back from the browser, and a late write-back could undo the next key press or typed value
    (CI, 2026-12-06); Gradio's slider clamps its number box on blur by itself.
    """
    triggers = [t for s in controls for t in (s.release, s.input)]
    first = next(j for j, c in enumerate(inputs) if c is controls[0])
    gr.on(triggers, fn, inputs, outputs, js=clamp_inputs_js(prefix, first, len(controls)), trigger_mode="always_last",
          api_name=api_name)
