"""The Explore & chat tab: pick a family, see its front, set w (slider or click), chat at that w.

The chat streams from one ``generate`` call whose rows carry this session's w;
Stop sets the generation's cancel event. Changing the family or w is wired by
``app.py`` because it also updates the other tabs.
"""

from __future__ import annotations

import os

import gradio as gr

from ..engine import EngineBusy
from ..export import ExportError
from ..family import FamilyError
from ..gates import PreferenceError
from ..generate import PromptTooLongError
from ..preferences import PreferenceSpace
from .catalog import FamilyEntry
from .chat import history_messages, settings_from
from .controls import sliders
from .frontview import front_component, plot_entries, plot_json
from .plot import shared_objectives, summary_markdown
from .session import AppContext, Session, session_id, user_error
from .zerogpu import gpu

USER_ERRORS = (PreferenceError, FamilyError, ExportError, PromptTooLongError, ValueError, EngineBusy)


def axes_for(entries: list[FamilyEntry], x, y) -> tuple[list[str], str | None, str | None]:
    """The objectives every plotted family shares, and x/y kept when still valid."""
    objs = shared_objectives(entries)
    x = x if x in objs else (objs[0] if objs else None)
    y = y if y in objs else (objs[1] if len(objs) > 1 else x)
    return objs, x, y


class ExploreTab:
    """Components of the Explore tab, its own events, and its part of family/preference changes."""

    def __init__(self, ctx: AppContext, first: FamilyEntry, w0: list[float], allow_paths: bool):
        self.ctx = ctx
        catalog = ctx.catalog
        with gr.Tab("Explore & chat", id="explore"), gr.Row(equal_height=False):
            with gr.Column(scale=6, min_width=480):
                with gr.Row():
                    self.family = gr.Dropdown(catalog.keys, value=first.key, label="Family",
                                              info="the model you chat with and export", scale=2)
                    self.overlay = gr.Dropdown(catalog.keys, value=[], multiselect=True, label="Compare fronts",
                                               info="overlay other families on the plot", scale=3)
                objs = shared_objectives([first])
                with gr.Row(visible=len(objs) > 2) as self.axis_row:
                    self.x_axis = gr.Dropdown(objs, value=objs[0] if objs else None, label="x axis")
                    self.y_axis = gr.Dropdown(objs, value=objs[1] if len(objs) > 1 else None, label="y axis")
                self.plot = front_component(plot_json(ctx, first.key, [], w0))
                with gr.Group():
                    self.w_text = gr.Markdown(PreferenceSpace(first.manifest).describe(w0), elem_id="pa-w-text",
                                              padding=True)
                    self.sliders = sliders(first, w0, "pa-w")
                self.summary = gr.Markdown(summary_markdown([first]), elem_classes="pa-scores")
                with gr.Accordion("Add a family folder", open=False, visible=allow_paths):
                    with gr.Row():
                        self.add_path = gr.Textbox(label="Folder with family.json", scale=4,
                                                   placeholder="/path/to/family")
                        self.add_btn = gr.Button("Add", scale=1)
                    self.add_status = gr.Markdown()
            with gr.Column(scale=5, min_width=420):
                self.chatbot = gr.Chatbot(label="Chat at the current w", height=560, elem_id="pa-chat",
                                          buttons=["copy"], placeholder="Ask something. The answer uses the "
                                          "preference on the left; move it and ask again to see the difference.")
                with gr.Row():
                    self.msg = gr.Textbox(show_label=False, placeholder="Type a message and press Enter",
                                          scale=6, elem_id="pa-msg", autofocus=False)
                    self.send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="pa-send")
                with gr.Row():
                    self.stop = gr.Button("Stop", variant="stop", size="sm", elem_id="pa-stop")
                    self.clear = gr.Button("Clear", size="sm", elem_id="pa-clear")
                with gr.Accordion("Generation settings", open=False):
                    self.system = gr.Textbox(label="System prompt", lines=2,
                                             value=first.manifest.system_prompt or "",
                                             placeholder="(the family's default)")
                    with gr.Row():
                        self.temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature",
                                                     info="0 = greedy (deterministic)")
                        self.max_tokens = gr.Slider(8, 512, value=96, step=8, label="Max new tokens")

    @property
    def view_inputs(self) -> list:
        """What a redraw of the plot needs besides the session: family, overlay and axes."""
        return [self.family, self.overlay, self.x_axis, self.y_axis]

    @property
    def settings_inputs(self) -> list:
        return [self.system, self.temperature, self.max_tokens]

    # ------------------------------------------------------------ changes from app.py
    def family_updates(self, entry: FamilyEntry, w, over, x, y) -> dict:
        entries = plot_entries(self.ctx, entry.key, over)
        objs, x, y = axes_for(entries, x, y)
        return {
            self.plot: plot_json(self.ctx, entry.key, over, w, x, y),
            self.summary: summary_markdown(entries),
            self.w_text: PreferenceSpace(entry.manifest).describe(w),
            self.axis_row: gr.update(visible=len(objs) > 2),
            self.x_axis: gr.update(choices=objs, value=x), self.y_axis: gr.update(choices=objs, value=y),
            self.system: entry.manifest.system_prompt or "",
        }

    def preference_updates(self, entry: FamilyEntry, w, over, x, y) -> dict:
        return {self.w_text: PreferenceSpace(entry.manifest).describe(w),
                self.plot: plot_json(self.ctx, entry.key, over, w, x, y)}

    # ------------------------------------------------------------ its own events
    def wire(self, session: gr.State) -> None:
        ctx = self.ctx

        def on_overlay(key, over, x, y, sess: Session):
            entries = plot_entries(ctx, key, over)
            objs, x, y = axes_for(entries, x, y)
            return (plot_json(ctx, key, over, sess.w_for(ctx.entry(key)), x, y), summary_markdown(entries),
                    gr.update(visible=len(objs) > 2), gr.update(choices=objs, value=x),
                    gr.update(choices=objs, value=y))

        self.overlay.change(on_overlay, [*self.view_inputs, session],
                            [self.plot, self.summary, self.axis_row, self.x_axis, self.y_axis], api_name=False)

        def redraw(key, over, x, y, sess: Session):
            return plot_json(ctx, key, over, sess.w_for(ctx.entry(key)), x, y)

        for ax in (self.x_axis, self.y_axis):
            ax.input(redraw, [*self.view_inputs, session], self.plot, api_name=False)

        @gpu
        def respond(message, history, key, sess: Session, system_prompt, temp, max_new, request: gr.Request = None):
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
            convo = history_messages(history) + [{"role": "user", "content": message}]
            history = history + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
            sid = session_id(request)
            cancel = ctx.cancels.start(sid, "chat")
            yield history, ""
            try:
                for texts in policy.stream([convo], [w], settings, system_prompt=(system_prompt or None),
                                           cancel=cancel, block=False):
                    history[-1] = {"role": "assistant", "content": texts[0]}
                    yield history, ""
                if not history[-1]["content"]:
                    history[-1] = {"role": "assistant", "content": "*(the model returned an empty answer)*"}
                    yield history, ""
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            finally:
                ctx.cancels.finish(sid, "chat", cancel)

        chat_inputs = [self.msg, self.chatbot, self.family, session, *self.settings_inputs]
        ev_submit = self.msg.submit(respond, chat_inputs, [self.chatbot, self.msg], api_name="chat",
                                    concurrency_id="generate", concurrency_limit=8)
        ev_send = self.send.click(respond, chat_inputs, [self.chatbot, self.msg], api_name=False,
                                  concurrency_id="generate")

        def stop_chat(request: gr.Request = None):
            ctx.cancels.cancel(session_id(request), "chat")

        self.stop.click(stop_chat, None, None, cancels=[ev_submit, ev_send], queue=False, api_name=False)
        self.clear.click(lambda: ([], ""), None, [self.chatbot, self.msg], queue=False, api_name="clear")

        def add_family(path, key, over):
            path = (path or "").strip()
            if os.environ.get("SPACE_ID") and not os.environ.get("PARETOAPP_ALLOW_PATHS"):
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
