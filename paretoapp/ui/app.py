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
from ..picking import can_interpolate, pick
from ..preferences import PreferenceSpace
from .api import add_api
from .catalog import Catalog
from .chat import parse_label, text_of
from .controls import slider_event, slider_updates
from .frontview import serve_plotly
from .session import AppContext, Session, user_error
from .tab_about import AboutTab
from .tab_explore import ExploreTab
from .tab_export import ExportTab, export_root, export_ttl_s, remove_old_exports
from .tab_prompts import PromptsTab
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
    export_root().mkdir(parents=True, exist_ok=True)  # served in place: a download is not copied again
    gr.set_static_paths([str(export_root())])
    remove_old_exports(export_root(), export_ttl_s())

    with gr.Blocks(title="paretoapp") as demo:
        gr.Markdown(f"# {TITLE}\n{TAGLINE}", elem_id="pa-title")
        banner = gr.Markdown(f"⚠️ {first.note}" if first.note else "", visible=bool(first.note),
                             elem_classes="pa-banner")
        session = gr.State(Session(first.key, list(w0)))
        with gr.Tabs():
            explore = ExploreTab(ctx, first, w0, allow_paths=not on_space)
            side = SideBySideTab(ctx, first)
            prompts = PromptsTab(ctx, first)
            export = ExportTab(ctx, first, w0, on_space)
            about = AboutTab(first)
        explore.wire(session)
        side.wire(session, explore)
        export.wire(session, explore)
        prompts.wire(explore)
        _wire_family_change(ctx, session, banner, explore, side, prompts, export, about)
        on_load, load_inputs, load_outputs = _wire_preference_change(ctx, session, explore, side, export)
        demo.load(on_load, load_inputs, load_outputs, api_name=False)
        add_api(ctx)

    demo.queue(default_concurrency_limit=16)
    demo.paretoapp_context = ctx  # for tests and embedding apps: the catalog and the running generations
    return demo


def _wire_family_change(ctx: AppContext, session, banner, explore: ExploreTab, side: SideBySideTab,
                        prompts: PromptsTab, export: ExportTab, about: AboutTab) -> None:
    """A new family: keep the session's w if it fits the new family, and update every tab."""

    def on_family(key, sess: Session, over, x, y):
        entry, space = ctx.space(key)
        try:
            w = space.to_w(space.to_controls(sess.w)) if len(sess.w) == entry.k else space.default_w()
        except PreferenceError:
            w = space.default_w()
        sess = sess.at(entry, w)
        return {
            session: sess,
            banner: gr.update(value=f"⚠️ {entry.note}" if entry.note else "", visible=bool(entry.note)),
            **dict(zip(explore.sliders, slider_updates(entry, w))),
            **explore.family_updates(entry, sess, over, x, y),
            **side.family_updates(entry),
            **prompts.family_updates(entry),
            **export.preference_updates(entry, w),
            **about.family_updates(entry),
        }

    outputs = [session, banner, *explore.sliders, *explore.preference_outputs, explore.summary, explore.card,
               explore.axes, explore.axis_row, explore.x_axis, explore.y_axis, explore.system,
               explore.simplex_group, explore.color_by, explore.parcoords, *explore.bounds, explore.maximize,
               explore.pick_note,
               *side.heads.values(), *[s for slot in side.controls.values() for s in slot],
               prompts.choice, prompts.go, prompts.plot, prompts.answers,
               export.head, export.name, about.card]
    explore.family.change(on_family, [explore.family, session, explore.overlay, explore.x_axis, explore.y_axis],
                          outputs, api_name=False)


def _wire_preference_change(ctx: AppContext, session, explore: ExploreTab, side: SideBySideTab,
                            export: ExportTab) -> tuple:
    """A new w: from the sliders, a click on the front, a click on a labelled answer, or the page's URL."""

    def moved(entry, w, sess: Session, key, over, x, y) -> dict:
        """Every update for the session now at ``entry``, ``w`` (``key`` is the family shown before)."""
        over = list(over or [])
        if entry.key != key and key not in over:
            over.append(key)  # keep the family we came from on the plot
        sess = sess.at(entry, w)
        return {explore.family: entry.key, explore.overlay: over, session: sess,
                **dict(zip(explore.sliders, slider_updates(entry, w))),
                **explore.preference_updates(entry, sess, over, x, y), **export.preference_updates(entry, w)}

    move_outputs = [explore.family, explore.overlay, session, *explore.sliders, *explore.preference_outputs,
                    export.head, export.name]

    def set_preference(key, *values):
        *controls, over, x, y, sess = values
        entry, _, w = ctx.w_from_controls(key, controls)
        sess = sess.at(entry, w)
        return {session: sess, **explore.preference_updates(entry, sess, over, x, y),
                **export.preference_updates(entry, w)}

    slider_event(explore.sliders, "pa-w", set_preference,
                 [explore.family, *explore.sliders, *explore.view_inputs[1:], session],
                 [session, explore.w_text, explore.plot, export.head, export.name, explore.marker, explore.evaluate,
                  explore.simplex],
                 api_name="set_preference")

    def checked_w(target: str, w) -> tuple:
        entry, space = ctx.space(target)
        try:
            return entry, space.to_w(space.to_controls(list(w)))
        except (PreferenceError, IndexError, TypeError, ValueError) as exc:
            raise user_error(exc) from None

    def on_point_click(key, over, x, y, sess: Session, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        entry, w = checked_w(data.get("family") or key, data.get("w") or [])
        return moved(entry, w, sess, key, over, x, y)

    explore.plot.point_click(on_point_click, [*explore.view_inputs, session], move_outputs, api_name=False)
    explore.simplex.point_click(on_point_click, [*explore.view_inputs, session], move_outputs, api_name=False)

    def on_pick(key, over, x, y, sess: Session, maximize, *bounds):
        """Pick by constraint: the w the evaluated front gives for these floors, then move there."""
        entry = ctx.entry(key)
        if entry.results is None:
            raise user_error(ValueError(f"{key} has no evaluation results to pick from; run `paretoapp evaluate`"))
        names = entry.results.objectives
        floors = {n: float(b) for n, b in zip(names, bounds) if b is not None and b == b}
        try:
            p = pick(entry.results, floors, maximize=maximize or None, interpolate=can_interpolate(entry.manifest),
                     family_objectives=entry.objective_names)
        except ValueError as exc:
            raise user_error(exc) from None
        entry, w = checked_w(key, p.w)
        means = ", ".join(f"{k} {v:.3g}" for k, v in p.means.items())
        note = ("✅ " if p.feasible else "⚠️ ") + f"w = ({', '.join(f'{v:g}' for v in w)}): {means}. {p.note}."
        return {**moved(entry, w, sess, key, over, x, y), explore.pick_note: note}

    explore.pick.click(on_pick, [*explore.view_inputs, session, explore.maximize, *explore.bounds],
                       [*move_outputs, explore.pick_note], api_name="pick")

    def on_answer_click(key, over, x, y, sess: Session, evt: gr.SelectData):
        found = parse_label(text_of(evt.value))
        if found is None or found[0] not in ctx.catalog.entries:
            return {session: sess}  # a question, or an answer without a label: nothing to move to
        entry, w = checked_w(*found)
        return moved(entry, w, sess, key, over, x, y)

    explore.chatbot.select(on_answer_click, [*explore.view_inputs, session], move_outputs, api_name=False)

    def use_proposal(key, over, x, y, sess: Session, st):
        """Blind A/B: move to the w the comparisons proposed."""
        w = side.blind.proposed_w(st)
        if w is None:
            raise gr.Error("Answer a few more rounds first: the proposal comes after four.")
        entry, w = checked_w(st["family"], w)
        return moved(entry, w, sess, key, over, x, y)

    side.blind.use.click(use_proposal, [*explore.view_inputs, session, side.blind.state], move_outputs,
                         api_name="ab_use")

    def on_load(key, over, x, y, sess: Session, request: gr.Request):
        """``?family=NAME&w=a,b`` opens the app at that point (the links under chat answers)."""
        params = dict(getattr(request, "query_params", {}) or {})
        if "family" not in params and "w" not in params:
            return {session: sess}
        target = params.get("family") or key
        if target not in ctx.catalog.entries:
            gr.Warning(f"The link names a family {target!r} this app does not serve; showing {key}.")
            return {session: sess}
        entry = ctx.entry(target)
        try:
            w = [float(v) for v in params["w"].split(",")] if params.get("w") else sess.w_for(entry)
        except ValueError:
            gr.Warning(f"The link's w {params.get('w')!r} is not numbers separated by commas; using the default.")
            w = sess.w_for(entry)
        entry, w = checked_w(target, w)
        return moved(entry, w, sess, entry.key, [], x, y)

    return on_load, [*explore.view_inputs, session], move_outputs


def launch_kwargs() -> dict:
    """App-level look (Gradio 6 takes these in ``launch``)."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate")
    return dict(theme=theme, css=CSS)
