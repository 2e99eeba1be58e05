"""The Explore & chat tab: pick a family, see its front, set w (slider or click), chat at that w.

Next to the front: the family card (what the method is, what w does, how far w
may go, how it behaved on held-out prompts) and the axes' meaning. Under it: a
line that says whether the current w was evaluated, and a button that
evaluates it on the held-out prompts when it was not. The chat streams from
one ``generate`` call whose rows carry this session's w; every answer is
labelled with its family and w. Changing the family or w is wired by
``app.py`` because it also updates the other tabs.
"""

from __future__ import annotations

import os

import gradio as gr

from .. import settings
from ..engine import EngineBusy
from ..export import ExportError
from ..family import FamilyError
from ..gates import PreferenceError
from ..generate import PromptTooLongError
from ..preferences import MAX_CONTROLS, PreferenceSpace
from ..validation import check_prompt_length, tokens_at_least
from .catalog import FamilyEntry
from .chat import fit_conversation, history_messages, prompt_budget, settings_from, share_query, w_label
from .controls import sliders
from .frontview import front_component, plot_entries, plot_json
from .live_eval import evaluable, evaluate_at
from .plot import marker_for, shared_objectives, summary_markdown
from .session import AppContext, Session, session_id, user_error
from .simplex import parcoords_figure, simplex_figure
from .texts import axes_caption, family_card
from .zerogpu import gpu

USER_ERRORS = (PreferenceError, FamilyError, ExportError, PromptTooLongError, ValueError, EngineBusy)



def simplex_json(entry: FamilyEntry, w, color_by) -> str:
    return simplex_figure(entry, w, color_by).to_json() if entry.k == 3 else "{}"


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


class ExploreTab:
    """Components of the Explore tab, its own events, and its part of family/preference changes."""

    def __init__(self, ctx: AppContext, first: FamilyEntry, w0: list[float], allow_paths: bool):
        self.ctx = ctx
        catalog = ctx.catalog
        objs = shared_objectives([first])
        x0, y0 = (objs[0] if objs else None), (objs[1] if len(objs) > 1 else None)
        note, offer = marker_status(first, w0, x0, y0)
        with gr.Tab("Explore", id="explore"):
            with gr.Row(equal_height=False, elem_classes="pa-main"):
                with gr.Column(scale=6, min_width=340, elem_classes="pa-main-col"):
                    with gr.Row(elem_classes="pa-pickers", elem_id="pa-pickers"):
                        self.family = gr.Dropdown(catalog.keys, value=first.key, label="Family",
                                                  info="the model you chat with and export", scale=2, min_width=150,
                                                  elem_id="pa-family")
                        self.overlay = gr.Dropdown(catalog.keys, value=[], multiselect=True, label="Compare fronts",
                                                   info="overlay others on one reference point", scale=3,
                                                   min_width=150, elem_id="pa-overlay")
                    self.card = gr.Markdown(family_card(first), elem_id="pa-card", elem_classes="pa-card")
                    with gr.Row(visible=len(objs) > 2, elem_id="pa-axis-row") as self.axis_row:
                        self.x_axis = gr.Dropdown(objs, value=x0, label="x axis")
                        self.y_axis = gr.Dropdown(objs, value=y0, label="y axis")
                    self.plot = front_component(plot_json(ctx, first.key, [], w0))
                    self.axes = gr.Markdown(axes_caption(first, x0, y0), elem_id="pa-axes", elem_classes="pa-muted")
                    with gr.Group(visible=first.k == 3, elem_id="pa-simplex-group") as self.simplex_group:
                        self.color_by = gr.Dropdown(objs, value=x0, label="Colour the triangle by",
                                                    elem_id="pa-color-by")
                        self.simplex = front_component(simplex_json(first, w0, x0), elem_id="pa-simplex",
                                                       label="Preference triangle: click to set w")
                    self.parcoords = gr.Plot(parcoords_figure(first) if first.k > 3 else None, visible=first.k > 3,
                                             label="Every evaluated point: w and scores", elem_id="pa-parcoords")
                    with gr.Group(elem_id="pa-w-group"):
                        self.w_text = gr.Markdown(PreferenceSpace(first.manifest).describe(w0) +
                                                  f" · [link to this point]({share_query(first.key, w0)})",
                                                  elem_id="pa-w-text", padding=True)
                        self.sliders = sliders(first, w0, "pa-w")
                    with gr.Row(equal_height=True, elem_id="pa-marker-row"):
                        self.marker = gr.Markdown(note, elem_id="pa-marker", scale=4)
                        self.evaluate = gr.Button("Evaluate this w", size="sm", visible=offer, scale=1,
                                                  min_width=120, elem_id="pa-evaluate")
                    with gr.Accordion("Pick by constraint", open=False, elem_id="pa-pick"):
                        gr.Markdown("Say how good each objective must be at least (leave blank for no bound) and "
                                    "which one to make as good as possible; the front picks the w.",
                                    elem_classes="pa-muted")
                        with gr.Row():
                            self.bounds = [gr.Number(None, label=f"{n} at least", visible=i < len(objs),
                                                     elem_id=f"pa-bound{i}", min_width=110)
                                           for i, n in enumerate(objs + [""] * (MAX_CONTROLS - len(objs)))]
                        with gr.Row():
                            self.maximize = gr.Dropdown(objs, value=objs[0] if objs else None,
                                                        label="then maximise", elem_id="pa-maximize", scale=3)
                            self.pick = gr.Button("Pick w", variant="primary", scale=1, elem_id="pa-pick-go")
                        self.pick_note = gr.Markdown(elem_id="pa-pick-note")
                with gr.Column(scale=5, min_width=340, elem_classes="pa-main-col"):
                    self.chatbot = gr.Chatbot(label="Chat at the current w", height=520, elem_id="pa-chat",
                                              buttons=["copy"], placeholder="Ask something. The answer uses the "
                                              "preference you set; move it and ask again to see the difference.")
                    with gr.Row(elem_id="pa-msg-row"):
                        self.msg = gr.Textbox(show_label=False, placeholder="Type a message and press Enter",
                                              scale=6, elem_id="pa-msg", autofocus=False, min_width=160)
                        self.send = gr.Button("Send", variant="primary", scale=1, min_width=70, elem_id="pa-send")
                    with gr.Row(elem_id="pa-stop-row"):
                        self.stop = gr.Button("Stop", variant="stop", size="sm", elem_id="pa-stop")
                        self.clear = gr.Button("Clear", size="sm", elem_id="pa-clear")
                    with gr.Accordion("Generation settings", open=False, elem_id="pa-settings"):
                        self.system = gr.Textbox(label="System prompt", lines=2,
                                                 value=first.manifest.system_prompt or "",
                                                 placeholder="(the family's default)")
                        with gr.Row():
                            self.temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature",
                                                         info="0 = greedy (deterministic)")
                            self.max_tokens = gr.Slider(8, 512, value=96, step=8, label="Max new tokens",
                                                        elem_id="pa-max-tokens")
            self.summary = gr.Markdown(summary_markdown([first]), elem_classes="pa-scores", elem_id="pa-summary")
            with gr.Accordion("Add a family folder", open=False, visible=allow_paths, elem_id="pa-add"):
                with gr.Row():
                    self.add_path = gr.Textbox(label="Folder with family.json", scale=4, placeholder="/path/to/family")
                    self.add_btn = gr.Button("Add", scale=1)
                self.add_status = gr.Markdown()

    @property
    def view_inputs(self) -> list:
        """What a redraw of the plot needs besides the session: family, overlay and axes."""
        return [self.family, self.overlay, self.x_axis, self.y_axis]

    @property
    def settings_inputs(self) -> list:
        return [self.system, self.temperature, self.max_tokens]

    @property
    def preference_outputs(self) -> list:
        return [self.w_text, self.plot, self.marker, self.evaluate, self.simplex]

    # ------------------------------------------------------------ changes from app.py
    def family_updates(self, entry: FamilyEntry, sess: Session, over, x, y) -> dict:
        entries = plot_entries(self.ctx, entry.key, over)
        objs, x, y = axes_for(entries, x, y)
        own = entry.results.objectives if entry.results is not None else []
        return {
            **self.preference_updates(entry, sess, over, x, y),
            self.simplex_group: gr.update(visible=entry.k == 3),
            self.color_by: gr.update(choices=own, value=own[0] if own else None),
            self.parcoords: gr.update(value=parcoords_figure(entry) if entry.k > 3 else None, visible=entry.k > 3),
            **{b: gr.update(label=f"{n} at least", visible=bool(n), value=None)
               for b, n in zip(self.bounds, own + [""] * (MAX_CONTROLS - len(own)))},
            self.maximize: gr.update(choices=own, value=own[0] if own else None),
            self.pick_note: "",
            self.summary: summary_markdown(entries),
            self.card: family_card(entry),
            self.axes: axes_caption(entry, x, y),
            self.axis_row: gr.update(visible=len(objs) > 2),
            self.x_axis: gr.update(choices=objs, value=x), self.y_axis: gr.update(choices=objs, value=y),
            self.system: entry.manifest.system_prompt or "",
        }

    def preference_updates(self, entry: FamilyEntry, sess: Session, over, x, y) -> dict:
        w = sess.w_for(entry)
        _, x, y = axes_for(plot_entries(self.ctx, entry.key, over), x, y)
        note, offer = marker_status(entry, w, x, y, sess.live_points(entry.key))
        out = {self.w_text: PreferenceSpace(entry.manifest).describe(w) + f" · [link to this point]"
                            f"({share_query(entry.key, w)})",
               self.plot: plot_json(self.ctx, entry.key, over, w, x, y, sess.live_points(entry.key)),
               self.marker: note, self.evaluate: gr.update(visible=offer)}
        if entry.k == 3:
            out[self.simplex] = simplex_json(entry, w, None)
        return out

    # ------------------------------------------------------------ its own events
    def wire(self, session: gr.State) -> None:
        ctx = self.ctx

        def on_overlay(key, over, x, y, sess: Session):
            entry = ctx.entry(key)
            entries = plot_entries(ctx, key, over)
            objs, x, y = axes_for(entries, x, y)
            return {**self.preference_updates(entry, sess, over, x, y), self.summary: summary_markdown(entries),
                    self.axis_row: gr.update(visible=len(objs) > 2), self.x_axis: gr.update(choices=objs, value=x),
                    self.y_axis: gr.update(choices=objs, value=y), self.axes: axes_caption(entry, x, y)}

        self.overlay.change(on_overlay, [*self.view_inputs, session],
                            [*self.preference_outputs, self.summary, self.axis_row, self.x_axis, self.y_axis,
                             self.axes], api_name=False)

        def redraw(key, over, x, y, sess: Session):
            entry = ctx.entry(key)
            return {**self.preference_updates(entry, sess, over, x, y), self.axes: axes_caption(entry, x, y)}

        for ax in (self.x_axis, self.y_axis):
            ax.input(redraw, [*self.view_inputs, session], [*self.preference_outputs, self.axes], api_name=False)

        def evaluate_here(key, over, x, y, sess: Session, progress=gr.Progress()):
            entry = ctx.entry(key)
            w = sess.w_for(entry)
            try:
                point = evaluate_at(entry, w, progress)
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            sess.live.setdefault(entry.key, []).append(point)
            return {session: sess, **self.preference_updates(entry, sess, over, x, y)}

        def recolour(key, color, sess: Session):
            entry = ctx.entry(key)
            return simplex_json(entry, sess.w_for(entry), color)

        self.color_by.input(recolour, [self.family, self.color_by, session], self.simplex, api_name=False)

        self.evaluate.click(evaluate_here, [*self.view_inputs, session], [session, *self.preference_outputs],
                            api_name="evaluate_w", concurrency_id="generate")

        def respond(message, history, key, sess: Session, system_prompt, temp, max_new, request: gr.Request = None,
                    warn_only: bool = False):
            message = (message or "").strip()
            history = list(history or [])
            if not message:
                yield history, ""
                return
            try:
                entry = ctx.entry(key)
                w = sess.w_for(entry)
                settings = settings_from(temp, max_new)
                policy = entry.policy()
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            system = system_prompt or None
            budget = min(prompt_budget(), policy.context_length() - settings.max_new_tokens)
            at_least = tokens_at_least(message, policy.longest_token())
            if at_least > budget:  # megabytes: no need to tokenize
                n_tokens, convo, dropped = at_least, [], 0
            else:
                convo, n_tokens, dropped = fit_conversation(
                    lambda c: policy.prompt_tokens(c, w, system), history_messages(history) + [
                        {"role": "user", "content": message}], budget)
            if n_tokens > budget and warn_only:  # in the browser: a warning, and the message stays in the box
                gr.Warning(f"Your message is at least {n_tokens:,} tokens; this app reads at most {budget:,} per answer "
                           "(with room for the reply). Shorten it: it is still in the box.")
                yield history, message
                return
            try:  # over HTTP: the one-line error every door gives
                check_prompt_length(n_tokens, budget, policy.context_length(), settings.max_new_tokens,
                                    at_least=not convo, hint="or drop earlier messages")
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            names = entry.objective_names
            note = f"{dropped} earlier messages dropped to fit" if dropped else ""
            history = history + [{"role": "user", "content": message},
                                 {"role": "assistant", "content": f"*reading your message ({n_tokens:,} tokens)…*"}]
            sid = session_id(request)
            cancel = ctx.cancels.start(sid, "chat")
            yield history, ""
            text = ""
            cleared = lambda: getattr(cancel, "reason", None) == "clear"  # noqa: E731  (Clear: show nothing more)
            try:
                for texts in policy.stream([convo], [w], settings, system_prompt=system, cancel=cancel,
                                           block=False):
                    if cleared():
                        break
                    text = texts[0]
                    history[-1] = {"role": "assistant", "content": text}
                    yield history, ""
                if cleared():  # the last word of this stream is the empty chat, whatever arrived before it
                    yield [], ""
                    return
                stopped = cancel.is_set()
                if stopped:
                    note = "; ".join(p for p in (note, "stopped") if p)
                body = text or ("*(stopped before the first token)*" if stopped else
                                "*(the model returned an empty answer)*")
                history[-1] = {"role": "assistant", "content": body + w_label(entry.key, names, w, note)}
                yield history, ""
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            finally:
                ctx.cancels.finish(sid, "chat", cancel)

        @gpu
        def chat_in_browser(message, history, key, sess: Session, system_prompt, temp, max_new,
                            request: gr.Request = None):
            yield from respond(message, history, key, sess, system_prompt, temp, max_new, request, warn_only=True)

        @gpu
        def chat_over_http(message, history, key, sess: Session, system_prompt, temp, max_new,
                           request: gr.Request = None):
            yield from respond(message, history, key, sess, system_prompt, temp, max_new, request)

        chat_inputs = [self.msg, self.chatbot, self.family, session, *self.settings_inputs]
        self.msg.submit(chat_in_browser, chat_inputs, [self.chatbot, self.msg], api_name=False,
                        concurrency_id="generate", concurrency_limit=8)
        self.send.click(chat_in_browser, chat_inputs, [self.chatbot, self.msg], api_name=False,
                        concurrency_id="generate")
        # the same chat as an API endpoint (a hidden trigger): a message that does not fit is an error there
        self.chat_api = gr.Button(visible=False)
        self.chat_api.click(chat_over_http, chat_inputs, [self.chatbot, self.msg], api_name="chat",
                            concurrency_id="generate")

        def stop_chat(request: gr.Request = None):
            """Stop at the next token; the answer so far stays, labelled as stopped."""
            ctx.cancels.cancel(session_id(request), "chat")

        def clear_chat(request: gr.Request = None):
            ctx.cancels.cancel(session_id(request), "chat", reason="clear")
            return [], ""

        self.stop.click(stop_chat, None, None, queue=False, api_name=False)
        # no `cancels=`: the stream ends itself on the clear event and sends the empty chat last, so an update
        # still in flight cannot bring the cleared answer back
        self.clear.click(clear_chat, None, [self.chatbot, self.msg], queue=False, api_name="clear")

        def add_family(path, key, over):
            path = (path or "").strip()
            if os.environ.get("SPACE_ID") and not settings.ALLOW_PATHS.get():
                return "❌ Adding folders is disabled on a Space.", gr.update(), gr.update()
            try:
                entry = ctx.catalog.add(path, device=ctx.entry(key).device)
            except (FamilyError, OSError, ValueError) as exc:
                return f"❌ {exc}", gr.update(), gr.update()
            over = list(over or [])
            if entry.key != key and entry.key not in over:
                over.append(entry.key)
            return (f"✅ Added **{entry.key}**" + ("" if entry.results else " (no evaluation results found next to it)"),
                    gr.update(choices=ctx.catalog.keys), gr.update(choices=ctx.catalog.keys, value=over))

        self.add_btn.click(add_family, [self.add_path, self.family, self.overlay],
                           [self.add_status, self.family, self.overlay], api_name="add_family")


__all__ = ["MAX_CONTROLS", "USER_ERRORS", "ExploreTab"]
