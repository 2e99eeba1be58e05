"""The Gradio app, assembled from one module per tab (``tab.py`` says what a tab is).

Each browser session's family and preference live in a ``Session`` in
``gr.State`` (``session.py``); the families and their models are shared
read-only, and every generation passes its own w down to the bank, so
sessions never see each other's preference. The tabs build their components
and wire their own events; this module wires the changes that reach every
tab at once: the family, and the preference w (from the sliders, the page's
link, or any tab through ``Shared.move``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import gradio as gr

from ..family import FamilyError
from ..gates import PreferenceError
from ..preferences import PreferenceSpace
from ..validation import parse_w
from .api import add_api
from .catalog import Catalog, FamilyEntry
from .controls import slider_event, slider_updates
from .explore_chat import PLAIN_LABELS_JS
from .frontview import serve_plotly
from .inputs import CheckedBlocks
from .session import AppContext, Session, user_error
from .tab import Shared, Shown, Start, Tab, Updates
from .tab_about import AboutTab
from .tab_explore import ExploreTab
from .tab_export import ExportTab, export_root, export_ttl_s, remove_old_exports
from .tab_prompts import PromptsTab
from .tab_side_by_side import SideBySideTab
from .texts import CSS, TAGLINE, TITLE

# The tabs after Explore, in page order. A new tab is its module (a ``Tab``) and one entry here.
TABS: tuple[type[Tab], ...] = (SideBySideTab, PromptsTab, ExportTab, AboutTab)


def build_app(catalog: Catalog) -> gr.Blocks:
    if not len(catalog):
        raise FamilyError("no family to show: pass --family PATH or build the demo into assets/")
    ctx = AppContext(catalog)
    first = catalog.get(catalog.keys[0])
    w0 = PreferenceSpace(first.manifest).default_w()
    start = Start(ctx, first, w0, on_space=bool(os.environ.get("SPACE_ID")))
    serve_plotly()
    export_root().mkdir(parents=True, exist_ok=True)  # served in place: a download is not copied again
    gr.set_static_paths([str(export_root())])
    remove_old_exports(export_root(), export_ttl_s())

    with CheckedBlocks(title="paretoapp") as demo:
        gr.Markdown(f"# {TITLE}\n{TAGLINE}", elem_id="pa-title")
        banner = gr.Markdown(banner_text(first), visible=bool(first.note), elem_classes="pa-banner")
        session = gr.State(Session(first.key, list(w0)))
        with gr.Tabs():
            explore = ExploreTab(start)  # also builds the controls the other tabs share
            tabs = [explore, *(tab(start) for tab in TABS)]
        shared = shared_controls(ctx, explore, session, banner, tabs)
        for tab in tabs:
            tab.wire(shared)
        _wire_family_change(ctx, shared, banner, tabs)
        _wire_sliders(ctx, shared, tabs)
        opened = demo.load(_open_link(ctx, shared), [*shared.view, shared.session], shared.move_outputs,
                           api_name=False)
        # a mark on the page once the link's family and w are in place: until then a move the visitor makes
        # can be undone by the link's (browser tests wait for it before they touch a control)
        opened.then(None, None, None, js="() => { document.body.dataset.paOpened = '1'; }", api_name=False)
        add_api(ctx)

    demo.queue(default_concurrency_limit=16)
    demo.paretoapp_context = ctx  # for tests and embedding apps: the catalog and the running generations
    return demo


def banner_text(entry: FamilyEntry) -> str:
    return f"⚠️ {entry.note}" if entry.note else ""


def outputs_of(tabs: Sequence[Tab], *kinds: str) -> list:
    """The tabs' ``family_outputs`` and/or ``preference_outputs``, in tab order, each component once."""
    out, seen = [], set()
    for tab in tabs:
        for kind in kinds:
            for c in getattr(tab, kind):
                if id(c) not in seen:
                    seen.add(id(c))
                    out.append(c)
    return out


def preference_updates(tabs: Sequence[Tab], entry: FamilyEntry, shown: Shown) -> Updates:
    return {c: v for tab in tabs for c, v in tab.preference_updates(entry, shown).items()}


def family_updates(tabs: Sequence[Tab], banner: gr.Markdown, entry: FamilyEntry, shown: Shown) -> Updates:
    """Everything a newly shown family changes: the banner, and every tab's family and w updates (a tab's
    family updates win where both name a component)."""
    out = {banner: gr.update(value=banner_text(entry), visible=bool(entry.note)), **preference_updates(tabs, entry, shown)}
    for tab in tabs:
        out.update(tab.family_updates(entry, shown))
    return out


def shared_controls(ctx: AppContext, explore: ExploreTab, session: gr.State, banner: gr.Markdown,
                    tabs: Sequence[Tab]) -> Shared:
    """The controls every tab's ``wire`` gets, with ``move``: the session to another family or w, every tab
    following."""
    front, chat = explore.front, explore.chat

    def move(target: str, w, came_from: str, shown: Shown) -> Updates:
        """Every update for the session moved to family ``target`` at ``w`` (a toast if w does not fit it);
        ``came_from``, the family shown before, stays on the plot as an overlay. A move to another family
        carries that family's updates in the same answer: the dropdown's own handler hears only the visitor
        (``input``), so nothing lands after this answer to undo what the visitor does next."""
        entry, space = ctx.space(target)
        try:
            w = space.to_w(space.to_controls(list(w)))
        except (PreferenceError, IndexError, TypeError, ValueError) as exc:
            raise user_error(exc) from None
        over = list(shown.overlay)
        if entry.key != came_from and came_from not in over:
            over.append(came_from)  # keep the family we came from on the plot
        new_family = shown.session.family != entry.key
        shown = Shown(shown.session.at(entry, w), over, shown.x, shown.y)
        shows = family_updates(tabs, banner, entry, shown) if new_family else preference_updates(tabs, entry, shown)
        return {front.family: entry.key, front.overlay: over, session: shown.session,
                **dict(zip(front.sliders, slider_updates(entry, w))), **shows}

    w_outputs = [front.family, front.overlay, session, *front.sliders, *outputs_of(tabs, "preference_outputs")]
    family_outputs = [c for c in outputs_of(tabs, "family_outputs") if all(c is not o for o in w_outputs)]
    return Shared(session=session, family=front.family, overlay=front.overlay, x_axis=front.x_axis,
                  y_axis=front.y_axis, sliders=front.sliders, system=chat.system, temperature=chat.temperature,
                  max_tokens=chat.max_tokens, move=move, move_outputs=[*w_outputs, banner, *family_outputs],
                  move_w_outputs=w_outputs)


def _wire_family_change(ctx: AppContext, shared: Shared, banner: gr.Markdown, tabs: Sequence[Tab]) -> None:
    """A family the visitor picks in the dropdown: keep the session's w if it fits the new family, and update
    every tab. Wired on ``input`` (the visitor's pick), not ``change``: a move that sets the dropdown
    (a link, a point or answer click, the A/B proposal) already carries the family's updates."""

    def on_family(key, sess: Session, over, x, y):
        entry, space = ctx.space(key)
        try:
            w = space.to_w(space.to_controls(sess.w)) if len(sess.w) == entry.k else space.default_w()
        except PreferenceError:
            w = space.default_w()
        shown = Shown.of(sess.at(entry, w), over, x, y)
        return {shared.session: shown.session, **dict(zip(shared.sliders, slider_updates(entry, w))),
                **family_updates(tabs, banner, entry, shown)}

    outputs = [shared.session, banner, *shared.sliders, *outputs_of(tabs, "preference_outputs", "family_outputs")]
    shared.family.input(on_family, [shared.family, shared.session, shared.overlay, shared.x_axis, shared.y_axis],
                        outputs, api_name=False)


def set_preference_outputs(tabs: Sequence[Tab]) -> list:
    """What ``/set_preference`` returns. Programs unpack it by position, so it keeps the order it has always
    had (the w and the front, the Export tab's head and name, the marker, "Evaluate this w", the triangle);
    any other tab's outputs follow."""
    front = next(t for t in tabs if isinstance(t, ExploreTab)).front
    export = next(t for t in tabs if isinstance(t, ExportTab))
    first = [front.w_text, front.plot, export.head, export.name, front.marker, front.evaluate, front.simplex]
    return first + [c for c in outputs_of(tabs, "preference_outputs") if all(c is not f for f in first)]


def _wire_sliders(ctx: AppContext, shared: Shared, tabs: Sequence[Tab]) -> None:
    """A new w from the sliders (also the ``/set_preference`` endpoint)."""

    w_text = next(t for t in tabs if isinstance(t, ExploreTab)).front.w_text

    def set_preference(key, *values):
        *controls, over, x, y, sess = values
        entry, space = ctx.space(key)
        try:
            w = space.to_w(list(controls)[: len(space.controls())])
        except PreferenceError as exc:  # e.g. every weight 0: said once, where w is shown; the session keeps its w
            return {w_text: f"⚠️ {exc}; w stays {space.describe(sess.w_for(entry)).removeprefix('w = ')}"}
        shown = Shown.of(sess.at(entry, w), over, x, y)
        return {shared.session: shown.session, **preference_updates(tabs, entry, shown)}

    slider_event(shared.sliders, "pa-w", set_preference, [shared.family, *shared.sliders, *shared.view[1:],
                                                          shared.session],
                 [shared.session, *set_preference_outputs(tabs)], api_name="set_preference")


def _open_link(ctx: AppContext, shared: Shared):
    def on_load(key, over, x, y, sess: Session, request: gr.Request):
        """``?family=NAME&w=a,b`` opens the app at that point (the links under chat answers)."""
        params = dict(getattr(request, "query_params", {}) or {})
        if "family" not in params and "w" not in params:
            return {shared.session: sess}
        target = params.get("family") or key
        if target not in ctx.catalog.entries:
            gr.Warning(f"The link names a family {target!r} this app does not serve; showing {key}.")
            return {shared.session: sess}
        entry, space = ctx.space(target)
        w = sess.w_for(entry)
        if params.get("w"):
            try:
                w = space.to_w(space.to_controls(parse_w(params["w"], "the link's w")))
            except PreferenceError as exc:  # one warning in words, not an error badge on every output
                gr.Warning(f"The link's w does not fit {entry.key} ({exc}), so the app opens at its default w.")
                w = space.default_w()
        return shared.move(target, w, target, Shown.of(sess, [], x, y))

    return on_load


def launch_kwargs() -> dict:
    """App-level look (Gradio 6 takes these in ``launch``)."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate")
    return dict(theme=theme, css=CSS, js=PLAIN_LABELS_JS)
