"""The Gradio app, assembled from one module per tab.

Each browser session's family and preference live in a ``Session`` in
``gr.State`` (``session.py``); the families and their models are shared
read-only, and every generation passes its own w down to the bank, so
sessions never see each other's preference. The tabs build their components
and wire their own events; this module wires the two changes that reach
several tabs at once: the family, and the preference w.
"""

from __future__ import annotations

import os

import gradio as gr

from ..family import FamilyError
from ..gates import PreferenceError
from ..preferences import PreferenceSpace
from .api import add_api
from .catalog import Catalog
from .controls import slider_updates
from .frontview import serve_plotly
from .session import AppContext, Session, user_error
from .tab_about import AboutTab
from .tab_explore import ExploreTab
from .tab_export import ExportTab
from .tab_side_by_side import SideBySideTab
from .texts import CSS, TAGLINE, TITLE


def build_app(catalog: Catalog) -> gr.Blocks:
    if not len(catalog):
        raise FamilyError("no family to show: pass --family PATH or build the demo into assets/")
    ctx = AppContext(catalog)
    first = catalog.get(catalog.keys[0])
    w0 = PreferenceSpace(first.manifest).default_w()
    on_space = bool(os.environ.get("SPACE_ID"))
    serve_plotly()

    with gr.Blocks(title="paretoapp") as demo:
        gr.Markdown(f"# {TITLE}\n{TAGLINE}", elem_id="pa-title")
        banner = gr.Markdown(f"⚠️ {first.note}" if first.note else "", visible=bool(first.note),
                             elem_classes="pa-banner")
        session = gr.State(Session(first.key, list(w0)))
        with gr.Tabs():
            explore = ExploreTab(ctx, first, w0, allow_paths=not on_space)
            side = SideBySideTab(ctx, first)
            export = ExportTab(ctx, first, w0, on_space)
            about = AboutTab(first)
        explore.wire(session)
        side.wire(session, explore)
        export.wire(session, explore)
        _wire_family_change(ctx, session, banner, explore, side, export, about)
        _wire_preference_change(ctx, session, explore, export)
        add_api(ctx)

    demo.queue(default_concurrency_limit=16)
    return demo


def _wire_family_change(ctx: AppContext, session, banner, explore: ExploreTab, side: SideBySideTab,
                        export: ExportTab, about: AboutTab) -> None:
    """A new family: keep the session's w if it fits the new family, and update every tab."""

    def on_family(key, sess: Session, over, x, y):
        entry, space = ctx.space(key)
        try:
            w = space.to_w(space.to_controls(sess.w)) if len(sess.w) == entry.k else space.default_w()
        except PreferenceError:
            w = space.default_w()
        return {
            session: Session(entry.key, w),
            banner: gr.update(value=f"⚠️ {entry.note}" if entry.note else "", visible=bool(entry.note)),
            **dict(zip(explore.sliders, slider_updates(entry, w))),
            **explore.family_updates(entry, w, over, x, y),
            **side.family_updates(entry),
            **export.preference_updates(entry, w),
            **about.family_updates(entry),
        }

    outputs = [session, banner, *explore.sliders, explore.plot, explore.summary, explore.w_text, explore.axis_row,
               explore.x_axis, explore.y_axis, explore.system, *side.heads.values(),
               *[s for slot in side.controls.values() for s in slot], export.head, export.name, about.card]
    explore.family.change(on_family, [explore.family, session, explore.overlay, explore.x_axis, explore.y_axis],
                          outputs, api_name=False)


def _wire_preference_change(ctx: AppContext, session, explore: ExploreTab, export: ExportTab) -> None:
    """A new w from the sliders or from a click on the front."""

    def set_preference(key, *values):
        *controls, over, x, y = values
        entry, _, w = ctx.w_from_controls(key, controls)
        return {session: Session(entry.key, w), **explore.preference_updates(entry, w, over, x, y),
                **export.preference_updates(entry, w)}

    for s in explore.sliders:
        s.release(set_preference, [explore.family, *explore.sliders, *explore.view_inputs[1:]],
                  [session, explore.w_text, explore.plot, export.head, export.name], trigger_mode="always_last",
                  api_name="set_preference" if s is explore.sliders[0] else False)

    def on_point_click(key, over, x, y, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        target = data.get("family") or key
        entry, space = ctx.space(target)
        try:
            w = space.to_w(space.to_controls(data.get("w") or []))
        except (PreferenceError, IndexError, TypeError) as exc:
            raise user_error(exc) from None
        over = list(over or [])
        if target != key and key not in over:
            over.append(key)  # keep the family we came from on the plot
        return {explore.family: target, explore.overlay: over, session: Session(entry.key, w),
                **dict(zip(explore.sliders, slider_updates(entry, w))),
                **explore.preference_updates(entry, w, over, x, y), **export.preference_updates(entry, w)}

    explore.plot.point_click(on_point_click, explore.view_inputs,
                             [explore.family, explore.overlay, session, explore.w_text, explore.plot,
                              *explore.sliders, export.head, export.name], api_name=False)


def launch_kwargs() -> dict:
    """App-level look (Gradio 6 takes these in ``launch``)."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate")
    return dict(theme=theme, css=CSS)
