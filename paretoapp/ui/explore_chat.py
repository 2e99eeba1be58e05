"""The Explore tab's chat column: chat with the family at the session's w.

The chat streams from one ``generate`` call whose rows carry this session's w;
every answer is labelled with its family and w, and a click on a labelled
answer moves the session back to that w (``Shared.move``). The same chat is an
API endpoint (``/chat``), where a message that does not fit is an error
instead of a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..generate import PENALTY_NONE, GenerationSettings, Policy
from ..validation import check_prompt_length, tokens_at_least
from .catalog import FamilyEntry
from .chat import (
    APP_PENALTIES,
    as_shown,
    fit_conversation,
    history_messages,
    parse_label,
    penalties,
    prompt_budget,
    settings_from,
    text_of,
    w_label,
)
from .session import USER_ERRORS, AppContext, Session, session_id, user_error
from .tab import Shared, Shown, Start, Updates
from .texts import family_note
from .zerogpu import gpu

# Gradio labels a message for screen readers with its raw content, which here ends in the label's HTML
# (<sub class=...>...<a href=...>): label each message with the text its bubble shows, whenever either changes.
PLAIN_LABELS_JS = """
() => {
  const plain = () => document.querySelectorAll("#pa-chat [aria-label*=\\"'s message: \\"]").forEach((el) => {
    const label = el.getAttribute('aria-label');
    const text = `${label.split(': ')[0]}: ${el.innerText.replace(/\\s+/g, ' ').trim()}`;
    if (label !== text) el.setAttribute('aria-label', text);
  });
  new MutationObserver(plain).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                      attributes: true, attributeFilter: ['aria-label']});
}
"""


@dataclass
class Turn:
    """One chat turn, checked and fitted before anything is generated."""

    entry: FamilyEntry
    policy: Policy
    w: list[float]
    settings: GenerationSettings
    system: str | None
    convo: list[dict]  # the conversation that fits (empty when even the message alone cannot)
    n_tokens: int      # its prompt tokens (a lower bound when ``convo`` is empty)
    dropped: int       # earlier messages dropped to fit
    budget: int        # the most prompt tokens this answer may read


def prepare_turn(ctx: AppContext, message: str, history, key, sess: Session, system_prompt, temp,
                 max_new, controls=None) -> Turn:
    try:
        entry = ctx.entry(key)
        w = ctx.w_from_controls(key, controls)[2] if controls is not None else sess.w_for(entry)
        settings = settings_from(temp, max_new, entry.measured_penalties)
        policy = entry.policy()
    except USER_ERRORS as exc:
        raise user_error(exc) from None
    system = system_prompt or None
    budget = min(prompt_budget(), policy.context_length() - settings.max_new_tokens)
    at_least = tokens_at_least(message, policy.longest_token())
    if at_least > budget:  # megabytes: no need to tokenize
        return Turn(entry, policy, w, settings, system, [], at_least, 0, budget)
    convo, n_tokens, dropped = fit_conversation(
        lambda c: policy.prompt_tokens(c, w, system),
        history_messages(history) + [{"role": "user", "content": message}], budget)
    return Turn(entry, policy, w, settings, system, convo, n_tokens, dropped, budget)


def respond(ctx: AppContext, message, history, key, sess: Session, system_prompt, temp, max_new,
            request: gr.Request | None = None, warn_only: bool = False, controls=None):
    """Yield (chat history, what stays in the message box) as the answer grows.

    ``controls``: the w controls' values as the page shows them (the browser's chat); the answer uses the w
    they make, whatever the session holds while a move of them is still on its way. Without them (``/chat``),
    the session's w.
    """
    message = (message or "").strip()
    history = list(history or [])
    if not message:
        yield history, ""
        return
    turn = prepare_turn(ctx, message, history, key, sess, system_prompt, temp, max_new, controls)
    if turn.n_tokens > turn.budget and warn_only:  # in the browser: a warning, and the message stays in the box
        gr.Warning(f"Your message is at least {turn.n_tokens:,} tokens; this app reads at most {turn.budget:,} per "
                   "answer (with room for the reply). Shorten it: it is still in the box.")
        yield history, message
        return
    try:  # over HTTP: the one-line error every door gives
        check_prompt_length(turn.n_tokens, turn.budget, turn.policy.context_length(), turn.settings.max_new_tokens,
                            at_least=not turn.convo, hint="or drop earlier messages")
    except USER_ERRORS as exc:
        raise user_error(exc) from None
    history = history + [{"role": "user", "content": message},
                         {"role": "assistant", "content": f"*reading your message ({turn.n_tokens:,} tokens)…*"}]
    yield from stream_answer(ctx, turn, history, session_id(request))


def stream_answer(ctx: AppContext, turn: Turn, history: list, sid: str):
    """Stream the answer into the last message, then label it; Stop keeps what came, Clear shows nothing more."""
    cancel = ctx.cancels.start(sid, "chat")
    yield history, ""
    text = ""
    cleared = lambda: getattr(cancel, "reason", None) == "clear"  # noqa: E731
    try:
        for texts in turn.policy.stream([turn.convo], [turn.w], turn.settings, system_prompt=turn.system,
                                        cancel=cancel, block=False):
            if cleared():
                break
            text = texts[0]
            history[-1] = {"role": "assistant", "content": as_shown(text)}
            yield history, ""
        if cleared():  # the last word of this stream is the empty chat, whatever arrived before it
            yield [], ""
            return
        stopped = cancel.is_set()
        note = "; ".join(p for p in (f"{turn.dropped} earlier messages dropped to fit" if turn.dropped else "",
                                     "stopped" if stopped else "") if p)
        body = as_shown(text) or ("*(stopped before the first token)*" if stopped else
                                  "*(the model returned an empty answer)*")
        history[-1] = {"role": "assistant", "content": body + w_label(turn.entry.key, turn.entry.objective_names,
                                                                       turn.w, note)}
        yield history, ""
    except USER_ERRORS as exc:
        raise user_error(exc) from None
    finally:
        ctx.cancels.finish(sid, "chat", cancel)


def decoding_note(entry: FamilyEntry) -> str:
    """The decoding penalties this family's answers use, and whether its front was measured with the same, said
    beside the chat's controls; empty when no penalty is on and none was measured."""
    measured = {**PENALTY_NONE, **entry.measured_penalties}
    used = penalties(entry.measured_penalties)
    parts = []
    for name, none in PENALTY_NONE.items():
        now, then, label = used[name], measured[name], name.replace("_", " ")
        if now == then:
            if now != none:
                parts.append(f"a {label} of {now:g}, as its front was measured")
        elif now == none:  # only the environment makes an answer differ from the measurement
            parts.append(f"no {label} (`{APP_PENALTIES[name].name}`), though its front was measured with {then:g}")
        else:
            parts.append(f"a {label} of {now:g} (`{APP_PENALTIES[name].name}`); its front was measured with "
                         + (f"{then:g}" if then != none else "none"))
    return f"This family answers with {'; '.join(parts)}." if parts else ""


class ChatPanel:
    """The components of the chat column, its own events, and its part of a family change."""

    def __init__(self, start: Start):
        self.ctx = start.ctx
        self.note = gr.Markdown(family_note(start.first), visible=bool(family_note(start.first)), elem_id="pa-note",
                                elem_classes="pa-muted")
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
                                     value=start.first.manifest.system_prompt or "",
                                     placeholder="(the family's default)")
            with gr.Row():
                self.temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature",
                                             info="0 = greedy (deterministic)")
                self.max_tokens = gr.Slider(8, 512, value=96, step=8, label="Max new tokens",
                                            elem_id="pa-max-tokens")
            note = decoding_note(start.first)
            self.decoding = gr.Markdown(note, visible=bool(note), elem_id="pa-decoding", elem_classes="pa-muted")

    @property
    def family_outputs(self) -> list:
        return [self.note, self.system, self.decoding]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        decoding = decoding_note(entry)
        return {self.note: gr.update(value=family_note(entry), visible=bool(family_note(entry))),
                self.system: entry.manifest.system_prompt or "",
                self.decoding: gr.update(value=decoding, visible=bool(decoding))}

    def wire(self, shared: Shared) -> None:
        self._wire_chat(shared)
        self._wire_stop_and_clear()
        self._wire_answer_click(shared)

    def _wire_chat(self, shared: Shared) -> None:
        ctx = self.ctx

        @gpu
        def chat_in_browser(request: gr.Request, message, history, key, sess: Session, *values):
            # (the request first: Gradio does not pass it to a parameter after *values)
            *controls, system_prompt, temp, max_new = values
            yield from respond(ctx, message, history, key, sess, system_prompt, temp, max_new, request,
                               warn_only=True, controls=controls)

        @gpu
        def chat_over_http(message, history, key, sess: Session, system_prompt, temp, max_new,
                           request: gr.Request = None):
            yield from respond(ctx, message, history, key, sess, system_prompt, temp, max_new, request)

        chat_inputs = [self.msg, self.chatbot, shared.family, shared.session, *shared.settings]
        in_browser = [self.msg, self.chatbot, shared.family, shared.session, *shared.sliders, *shared.settings]
        self.msg.submit(chat_in_browser, in_browser, [self.chatbot, self.msg], api_name=False,
                        concurrency_id="generate", concurrency_limit=8)
        self.send.click(chat_in_browser, in_browser, [self.chatbot, self.msg], api_name=False,
                        concurrency_id="generate")
        # the same chat as an API endpoint (a hidden trigger): a message that does not fit is an error there
        self.chat_api = gr.Button(visible=False)
        self.chat_api.click(chat_over_http, chat_inputs, [self.chatbot, self.msg], api_name="chat",
                            concurrency_id="generate")

    def _wire_stop_and_clear(self) -> None:
        ctx = self.ctx

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

    def _wire_answer_click(self, shared: Shared) -> None:
        ctx = self.ctx

        def on_answer_click(key, over, x, y, sess: Session, evt: gr.SelectData):
            """A click on a labelled answer: back to the family and w that wrote it."""
            found = parse_label(text_of(evt.value))
            if found is None or found[0] not in ctx.catalog.entries:
                return {shared.session: sess}  # a question, or an answer without a label: nothing to move to
            return shared.move(*found, key, Shown.of(sess, over, x, y))

        self.chatbot.select(on_answer_click, [*shared.view, shared.session], shared.move_outputs, api_name=False)
