"""The Explore tab's front column: the family, its front, the w controls, pick by constraint.

Next to the front: the family card (what the method is, what w does, how far w
may go, how it behaved on held-out prompts) and the axes' meaning. Under it: a
line that says whether the current w was evaluated, and a button that
evaluates it on the held-out prompts when it was not. A click on a point (of
the front or the triangle) or a pick moves the session there through
``Shared.move``, so every tab follows.
"""

from __future__ import annotations

import gradio as gr

from ..picking import can_interpolate, pick
from ..preferences import MAX_CONTROLS, PreferenceSpace
from .catalog import FamilyEntry
from .chat import share_query
from .controls import sliders
from .frontview import front_component, plot_entries, plot_json
from .live_eval import evaluable, evaluate_at
from .plot import marker_for, shared_objectives, summary_markdown
from .session import USER_ERRORS, Session, user_error
from .simplex import parcoords_figure, simplex_figure
from .tab import Shared, Shown, Start, Updates
from .texts import axes_caption, family_card


def simplex_json(entry: FamilyEntry, w, color_by) -> str:
    return simplex_figure(entry, w, color_by).to_json() if entry.k == 3 else "{}"


def colour_of(sess: Session, entry: FamilyEntry) -> str | None:
    """The objective the session colours ``entry``'s triangle by: its choice, else the first objective."""
    own = entry.results.objectives if entry.results is not None else []
    chosen = sess.colour.get(entry.key)
    return chosen if chosen in own else (own[0] if own else None)


def axes_for(entries: list[FamilyEntry], x, y) -> tuple[list[str], str | None, str | None]:
    """The objectives every plotted family shares, and x/y kept when still valid."""
    objs = shared_objectives(entries)
    x = x if x in objs else (objs[0] if objs else None)
    y = y if y in objs else (objs[1] if len(objs) > 1 else x)
    return objs, x, y


def marker_status(entry: FamilyEntry, w, x, y, live=()) -> tuple[str, bool]:
    """The line under the plot about the current w, and whether to offer "Evaluate this w"."""
    if x is None:
        return "", False
    marker = marker_for(entry, w, x, y, live)
    offer = marker.kind in ("not_evaluated", "estimated") and evaluable(entry)
    return marker.note, offer


def w_text(entry: FamilyEntry, w) -> str:
    space = PreferenceSpace(entry.manifest)
    used = ("  \n<span class='pa-muted'>the sliders are relative weights: w is each divided by their sum</span>"
            if space.mode == "free" and entry.manifest.on_simplex else "")
    return space.describe(w) + f" · [link to this point]({share_query(entry.key, w)})" + used


def bound_labels(objectives: list[str]) -> list[str]:
    """One "at least" box per control; the boxes past the family's objectives are hidden (label "")."""
    return objectives + [""] * (MAX_CONTROLS - len(objectives))


class FrontPanel:
    """The components of the front column, its own events, and its part of family and w changes."""

    def __init__(self, start: Start):
        self.ctx = ctx = start.ctx
        first, w0 = start.first, start.w0
        objs = shared_objectives([first])
        x0, y0 = (objs[0] if objs else None), (objs[1] if len(objs) > 1 else None)
        note, offer = marker_status(first, w0, x0, y0)
        with gr.Row(elem_classes="pa-pickers", elem_id="pa-pickers"):
            self.family = gr.Dropdown(ctx.catalog.keys, value=first.key, label="Family",
                                      info="the model you chat with and export", scale=2, min_width=150,
                                      elem_id="pa-family")
            self.overlay = gr.Dropdown(ctx.catalog.keys, value=[], multiselect=True, label="Compare fronts",
                                       info="overlay others on one reference point", scale=3,
                                       min_width=150, elem_id="pa-overlay")
        with gr.Group(elem_id="pa-w-group"):  # first after the pickers: on a laptop screen without scrolling
            self.w_text = gr.Markdown(w_text(first, w0), elem_id="pa-w-text", padding=True)
            self.sliders = sliders(first, w0, "pa-w")
        with gr.Row(equal_height=True, elem_id="pa-marker-row"):
            self.marker = gr.Markdown(note, elem_id="pa-marker", scale=4)
            self.evaluate = gr.Button("Evaluate this w", size="sm", visible=offer, scale=1,
                                      min_width=120, elem_id="pa-evaluate")
        with gr.Row(visible=len(objs) > 2, elem_id="pa-axis-row") as self.axis_row:
            # any value is taken (the handlers fall back to a shared objective): right after a family change
            # the browser may still send the old family's axis, which must not make the event fail
            self.x_axis = gr.Dropdown(objs, value=x0, label="x axis", allow_custom_value=True, elem_id="pa-x")
            self.y_axis = gr.Dropdown(objs, value=y0, label="y axis", allow_custom_value=True, elem_id="pa-y")
        self.plot = front_component(plot_json(ctx, first.key, [], w0))
        self.axes = gr.Markdown(axes_caption(first, x0, y0), elem_id="pa-axes", elem_classes="pa-muted")
        self.card = gr.Markdown(family_card(first), elem_id="pa-card", elem_classes="pa-card")
        with gr.Group(visible=first.k == 3, elem_id="pa-simplex-group") as self.simplex_group:
            self.color_by = gr.Dropdown(objs, value=x0, label="Colour the triangle by",
                                        elem_id="pa-color-by")
            self.simplex = front_component(simplex_json(first, w0, x0), elem_id="pa-simplex",
                                           label="Preference triangle: click to set w")
        self.parcoords = gr.Plot(parcoords_figure(first) if first.k > 3 else None, visible=first.k > 3,
                                 label="Every evaluated point: w and scores", elem_id="pa-parcoords")
        with gr.Accordion("Pick by constraint", open=False, elem_id="pa-pick"):
            gr.Markdown("Say how good each objective must be at least (leave blank for no bound) and "
                        "which one to make as good as possible; the front picks the w.",
                        elem_classes="pa-muted")
            with gr.Row():
                self.bounds = [gr.Number(None, label=f"{n} at least", visible=i < len(objs),
                                         elem_id=f"pa-bound{i}", min_width=110)
                               for i, n in enumerate(bound_labels(objs))]
            with gr.Row():
                self.maximize = gr.Dropdown(objs, value=objs[0] if objs else None,
                                            label="then maximise", elem_id="pa-maximize", scale=3)
                self.pick = gr.Button("Pick w", variant="primary", scale=1, elem_id="pa-pick-go")
            self.pick_note = gr.Markdown(elem_id="pa-pick-note")

    # ------------------------------------------------------------ family and w changes (app.py)
    @property
    def view_outputs(self) -> list:
        """What follows the overlay or the axes: the axis row and its dropdowns, and the caption."""
        return [self.axis_row, self.x_axis, self.y_axis, self.axes]

    def view_updates(self, entry: FamilyEntry, entries: list[FamilyEntry], x, y) -> Updates:
        objs, x, y = axes_for(entries, x, y)
        return {self.axis_row: gr.update(visible=len(objs) > 2), self.x_axis: gr.update(choices=objs, value=x),
                self.y_axis: gr.update(choices=objs, value=y), self.axes: axes_caption(entry, x, y)}

    @property
    def family_outputs(self) -> list:
        return [self.simplex_group, self.color_by, self.parcoords, *self.bounds, self.maximize, self.pick_note,
                self.card, *self.view_outputs]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        own = entry.results.objectives if entry.results is not None else []
        return {
            self.simplex_group: gr.update(visible=entry.k == 3),
            self.color_by: gr.update(choices=own, value=colour_of(shown.session, entry)),
            self.parcoords: gr.update(value=parcoords_figure(entry) if entry.k > 3 else None, visible=entry.k > 3),
            **{b: gr.update(label=f"{n} at least", visible=bool(n), value=None)
               for b, n in zip(self.bounds, bound_labels(own))},
            self.maximize: gr.update(choices=own, value=own[0] if own else None),
            self.pick_note: "",
            self.card: family_card(entry),
            **self.view_updates(entry, plot_entries(self.ctx, entry.key, shown.overlay), shown.x, shown.y),
        }

    @property
    def preference_outputs(self) -> list:
        return [self.w_text, self.plot, self.marker, self.evaluate, self.simplex]

    def preference_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        sess = shown.session
        w, live = sess.w_for(entry), sess.live_points(entry.key)
        _, x, y = axes_for(plot_entries(self.ctx, entry.key, shown.overlay), shown.x, shown.y)
        note, offer = marker_status(entry, w, x, y, live)
        out = {self.w_text: w_text(entry, w), self.plot: plot_json(self.ctx, entry.key, shown.overlay, w, x, y, live),
               self.marker: note, self.evaluate: gr.update(visible=offer)}
        if entry.k == 3:
            out[self.simplex] = simplex_json(entry, w, colour_of(sess, entry))
        return out

    # ------------------------------------------------------------ its own events
    def wire(self, shared: Shared, summary: gr.Markdown) -> None:
        """The overlay and axes redraw here; a point click or a pick moves the session (``summary``: the
        table under both columns, which lists the plotted families)."""
        self._wire_view(shared, summary)
        self._wire_evaluate(shared)
        self._wire_moves(shared)

    def _wire_view(self, shared: Shared, summary: gr.Markdown) -> None:
        ctx = self.ctx

        def on_overlay(key, over, x, y, sess: Session):
            entry, entries = ctx.entry(key), plot_entries(ctx, key, over)
            _, x, y = axes_for(entries, x, y)
            return {**self.preference_updates(entry, Shown.of(sess, over, x, y)), summary: summary_markdown(entries),
                    **self.view_updates(entry, entries, x, y)}

        self.overlay.change(on_overlay, [*shared.view, shared.session],
                            [*self.preference_outputs, summary, *self.view_outputs], api_name=False)

        def redraw(key, over, x, y, sess: Session):
            entry, entries = ctx.entry(key), plot_entries(ctx, key, over)
            _, x, y = axes_for(entries, x, y)  # an axis the family does not have (typed, or sent late) falls back
            return {**self.preference_updates(entry, Shown.of(sess, over, x, y)),
                    **self.view_updates(entry, entries, x, y)}

        for ax in (self.x_axis, self.y_axis):
            ax.input(redraw, [*shared.view, shared.session], [*self.preference_outputs, *self.view_outputs],
                     api_name=False)

        def recolour(key, colour, sess: Session):
            """Colour the triangle by ``colour`` from now on: the session keeps it, so a w change keeps it too."""
            entry = ctx.entry(key)
            if entry.results is not None and colour in entry.results.objectives:
                sess.colour[entry.key] = colour
            return simplex_json(entry, sess.w_for(entry), colour_of(sess, entry))

        self.color_by.input(recolour, [self.family, self.color_by, shared.session], self.simplex, api_name=False)

    def _wire_evaluate(self, shared: Shared) -> None:
        ctx = self.ctx

        def evaluate_here(key, over, x, y, sess: Session, progress=gr.Progress()):
            entry = ctx.entry(key)
            try:
                point = evaluate_at(entry, sess.w_for(entry), progress)
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            sess.live.setdefault(entry.key, []).append(point)
            return {shared.session: sess, **self.preference_updates(entry, Shown.of(sess, over, x, y))}

        self.evaluate.click(evaluate_here, [*shared.view, shared.session], [shared.session, *self.preference_outputs],
                            api_name="evaluate_w", concurrency_id="generate")

    def _wire_moves(self, shared: Shared) -> None:
        ctx = self.ctx

        def on_point_click(key, over, x, y, sess: Session, evt: gr.EventData):
            data = getattr(evt, "_data", None) or {}
            return shared.move(data.get("family") or key, data.get("w") or [], key, Shown.of(sess, over, x, y))

        for figure in (self.plot, self.simplex):
            figure.point_click(on_point_click, [*shared.view, shared.session], shared.move_outputs, api_name=False)

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
            moved = shared.move(key, p.w, key, Shown.of(sess, over, x, y))
            w = moved[shared.session].w
            means = ", ".join(f"{k} {v:.3g}" for k, v in p.means.items())
            note = ("✅ " if p.feasible else "⚠️ ") + f"w = ({', '.join(f'{v:g}' for v in w)}): {means}. {p.note}."
            return {**moved, self.pick_note: note}

        self.pick.click(on_pick, [*shared.view, shared.session, self.maximize, *self.bounds],
                        [*shared.move_w_outputs, self.pick_note], api_name="pick")  # clients unpack it by position
