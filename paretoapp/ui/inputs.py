"""Gradio's own input checks, as one line that says what to send: ``CheckedBlocks``, the app's ``gr.Blocks``.

Before a handler runs, Gradio checks each input against its component: a slider's
number against its range, a dropdown's value against its choices. Left alone, a
text where a number belongs reaches the client as Gradio's generic "upstream app
raised an exception" (and ``null`` over plain REST), a value outside the choices as
Gradio's own words, and both leave a traceback in the server log. ``CheckedBlocks``
checks those inputs first, with the component's label and range or choices in the
message, and turns whatever Gradio's preprocessing still raises into one line.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
from gradio.exceptions import Error

from ..errors import one_line, shown

NUMBERS = (gr.Slider, gr.Number)
CHOICES = (gr.Dropdown, gr.Radio)


def input_name(block) -> str:
    """How a message names an input: its label, else its element id, else its kind."""
    return str(getattr(block, "label", None) or getattr(block, "elem_id", None) or block.get_block_name())


def _refuse(message: str) -> Error:
    return Error(one_line(message), print_exception=False)


def check_number(block, value: Any) -> None:
    """A slider takes a finite number in its range; a number box also takes nothing (blank)."""
    name = input_name(block)
    lo, hi = getattr(block, "minimum", None), getattr(block, "maximum", None)
    span = f" between {lo:g} and {hi:g}" if lo is not None and hi is not None else ""
    if value is None and isinstance(block, gr.Number):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(f"{name}: {shown(value)} is not a number; give a number{span}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _refuse(f"{name}: {value:g} is outside its range [{lo:g}, {hi:g}]; give a number{span}")


def check_choice(block, value: Any) -> None:
    """A dropdown or radio takes one of its choices (a multiselect: a list of them), unless it takes any value."""
    if value is None or getattr(block, "allow_custom_value", False):
        return
    choices = [v for _, v in block.choices]
    values = value if getattr(block, "multiselect", False) and isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, (list, dict)) or v not in choices:
            listed = ", ".join(repr(c) for c in choices[:8]) + (" ..." if len(choices) > 8 else "")
            raise _refuse(f"{input_name(block)}: {shown(v)} is not one of its choices; pick one of {listed}")


def check_input(block, value: Any) -> None:
    if isinstance(block, NUMBERS):
        check_number(block, value)
    elif isinstance(block, CHOICES):
        check_choice(block, value)


class CheckedBlocks(gr.Blocks):
    """``gr.Blocks`` whose inputs are checked with one-line messages (see the module docstring)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        for i, block in enumerate(block_fn.inputs):
            if getattr(block, "stateful", False) or i in block_fn.component_prop_inputs or i >= len(inputs):
                continue
            if state is not None and block._id in state:
                block = state[block._id]  # this session's copy: its choices and range as updated
            check_input(block, inputs[i])
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Error as exc:
            raise _refuse(str(exc)) from None
        except Exception as exc:  # Gradio's own conversion and validation of a value (a pydantic error ...)
            raise _refuse(f"an input is not in the form this endpoint takes ({one_line(exc)[:200]}); "
                          "check the endpoint's parameters (Client.view_api) and send each one as listed") from None
