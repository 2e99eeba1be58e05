"""Endpoints for programs (``gradio_client``), with no UI: the families, and one answer at a given w.

Stateless: the caller passes w, so any number of clients can ask for any w at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from ..preferences import PreferenceSpace
from ..validation import parse_w, prompt_text
from .chat import settings_from
from .session import USER_ERRORS, AppContext, user_error
from .zerogpu import gpu


def add_api(ctx: AppContext) -> None:
    def families() -> list[dict]:
        """Every family the app serves: objectives, allowed and trained preference ranges, front metrics."""
        out = []
        for e in ctx.catalog.entries.values():
            m = e.manifest
            mt = (e.results.meta.get("metrics", {}) if e.results is not None else {})
            out.append({"name": e.key, "method": m.method, "objectives": e.objective_names,
                        "w_low": m.w_low, "w_high": m.w_high, "in_sample_low": m.in_sample_low,
                        "in_sample_high": m.in_sample_high, "on_simplex": m.on_simplex,
                        "default_w": PreferenceSpace(m).default_w(),
                        "hypervolume": mt.get("hypervolume"), "reference_point": mt.get("reference")})
        return out

    @gpu
    def generate(prompt: str, w: list[float], family: str = "", max_new_tokens: int = 64,
                 temperature: float = 0.0, system_prompt: str = "") -> Iterator[str]:
        """One answer to ``prompt`` from ``family`` (default: the first) at preference ``w``.

        Inputs are checked as the Python API checks them (``paretoapp.validation``): an
        over-long prompt is an error, never silently cut, and ``max_new_tokens`` is capped
        by ``PARETOAPP_MAX_NEW_TOKENS``. The answer streams (``predict`` returns the whole
        of it), so a client that goes away stops its generation: Gradio closes the
        stream and the stream stops the model.
        """
        try:
            entry = ctx.entry(family or ctx.catalog.keys[0])
            settings = settings_from(temperature, max_new_tokens, entry.measured_penalties)
            system = prompt_text(system_prompt, "the system prompt") if system_prompt else None
            answer = None
            for texts in entry.policy().stream([prompt_text(prompt)], [parse_w(w)], settings, system_prompt=system,
                                                block=False):
                answer = texts[0]
                yield answer
            if answer is None:
                yield ""
        except USER_ERRORS as exc:
            raise user_error(exc) from None

    gr.api(families, api_name="families")
    gr.api(generate, api_name="generate", concurrency_id="generate")
