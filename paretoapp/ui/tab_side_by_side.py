"""The Side by side tab: two preferences, one prompt, both answers from one batched generation.

Rows A and B of one ``generate`` call carry w_A and w_B, so the comparison
costs one decode for two answers; the answers are then scored live with the
family's offline scorers (``FamilyEntry.live_scorers``).
"""

from __future__ import annotations

import gradio as gr

from ..gates import PreferenceError
from ..preferences import MAX_CONTROLS, PreferenceSpace
from .blind_ab import BlindAB
from .catalog import FamilyEntry
from .chat import settings_from
from .controls import end_w, slider_event, slider_updates, sliders
from .live_eval import prompt_kind
from .session import USER_ERRORS, Session, session_id, user_error
from .tab import Shared, Shown, Start, Tab, Updates
from .texts import family_line
from .zerogpu import gpu

SLOTS = ("A", "B")


def scores_markdown(scorers, prompt: str, answers: list[str]) -> list[str]:
    """One small Markdown table of live scores per answer; under it, when a scorer reads the prompt's kind
    (``harmless_offline``), what it took the prompt to be: a typed prompt's kind is a guess, and says so."""
    if not scorers:
        return ["*No reward scorers are available for this family in the app.*"] * len(answers)
    values = {s.name: s([prompt] * len(answers), answers) for s in scorers}
    guess = prompt_kind(scorers, prompt)
    note = f"\n\n<span class='pa-muted'>This prompt's kind, for the harmless score: {guess.text()}.</span>" if guess else ""
    out = []
    for i in range(len(answers)):
        rows = ["| scorer | score |", "|---|---:|"]
        rows += [f"| {n} {'↑' if s.higher_is_better else '↓'} | {float(values[n][i]):.3f} |"
                 for n, s in zip(values, scorers)]
        out.append("\n".join(rows) + note)
    return out


def head(slot: str, space: PreferenceSpace, w) -> str:
    return f"### {slot}\n" + space.describe(w)


class SideBySideTab(Tab):
    """Slots A and B, each with its own w controls, answered in one batch; the blind A/B under them."""

    def __init__(self, start: Start):
        self.ctx, first = start.ctx, start.first
        space = PreferenceSpace(first.manifest)
        self.heads, self.controls, self.answers, self.scores = {}, {}, {}, {}
        with gr.Tab("Side by side", id="compare"):
            gr.Markdown("Two preferences, one prompt: both answers come from **one batched generation** "
                        "with a different w per row.")
            self.family_note = gr.Markdown(family_line(first), elem_id="pa-cmp-family", elem_classes="pa-muted")
            with gr.Row():
                for i, slot in enumerate(SLOTS):
                    with gr.Column():
                        w = end_w(first, i)
                        self.heads[slot] = gr.Markdown(head(slot, space, w), elem_classes="pa-side-head")
                        self.controls[slot] = sliders(first, w, f"pa-{slot.lower()}")
            with gr.Row():
                self.prompt = gr.Textbox(label="Prompt", scale=6, elem_id="pa-cmp-prompt",
                                         placeholder="One prompt for both preferences; press Enter or Compare")
                self.go = gr.Button("Compare", variant="primary", scale=1, elem_id="pa-cmp-go")
                self.stop = gr.Button("Stop", variant="stop", scale=1, elem_id="pa-cmp-stop")
            with gr.Row():
                for slot in SLOTS:
                    with gr.Column():
                        self.answers[slot] = gr.Textbox(label=f"Answer at {slot}", lines=8, max_lines=20,
                                                        interactive=False, elem_id=f"pa-answer-{slot.lower()}",
                                                        buttons=["copy"])
                        self.scores[slot] = gr.Markdown(elem_id=f"pa-scores-{slot.lower()}", elem_classes="pa-scores")
            self.copy = gr.Button("Set A to the current w from the Explore tab", size="sm")
            self.blind = BlindAB(start.ctx, first)

    @property
    def family_outputs(self) -> list:
        return [self.family_note, *self.heads.values(), *(c for slot in SLOTS for c in self.controls[slot]),
                *self.blind.family_outputs]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        """The family named, both slots back to the two ends of the new family's range."""
        space = PreferenceSpace(entry.manifest)
        out = {self.family_note: family_line(entry), **self.blind.family_updates(entry)}
        for i, slot in enumerate(SLOTS):
            w = end_w(entry, i)
            out[self.heads[slot]] = head(slot, space, w)
            out.update(zip(self.controls[slot], slider_updates(entry, w)))
        return out

    def wire(self, shared: Shared) -> None:
        self._wire_slots(shared)
        self._wire_compare(shared)
        self.blind.wire(shared)

    def _wire_slots(self, shared: Shared) -> None:
        ctx = self.ctx

        def slot_head(slot):
            def fn(key, *values):
                entry, space = ctx.space(key)
                try:
                    return head(slot, space, space.to_w(values[: len(space.controls())]))
                except PreferenceError as exc:
                    return f"### {slot}\n⚠️ {exc}"
            return fn

        for slot in SLOTS:
            slider_event(self.controls[slot], f"pa-{slot.lower()}", slot_head(slot),
                         [shared.family, *self.controls[slot]], self.heads[slot])

        def copy_current(key, sess: Session):
            entry, space = ctx.space(key)
            w = sess.w_for(entry)
            return [head("A", space, w), *slider_updates(entry, w)]

        self.copy.click(copy_current, [shared.family, shared.session], [self.heads["A"], *self.controls["A"]],
                        api_name=False)

    def _wire_compare(self, shared: Shared) -> None:
        ctx = self.ctx

        @gpu
        def compare(request: gr.Request, prompt, key, *values):
            # (the request comes first: Gradio does not pass it to a parameter after *values, and without it
            # Stop could not find this session's generation)
            *ctrl_values, system_prompt, temp, max_new = values
            prompt = (prompt or "").strip()
            if not prompt:
                raise gr.Error("Type a prompt to compare the two preferences on.", print_exception=False)
            _, space, wa = ctx.w_from_controls(key, ctrl_values[:MAX_CONTROLS])
            entry, _, wb = ctx.w_from_controls(key, ctrl_values[MAX_CONTROLS:])
            try:
                settings = settings_from(temp, max_new, entry.measured_penalties)
                policy = entry.policy()
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            sid = session_id(request)
            cancel = ctx.cancels.start(sid, "compare")
            texts = ["", ""]
            head_a, head_b = head("A", space, wa), head("B", space, wb)
            try:
                yield "", "", "*generating…*", "*generating…*", head_a, head_b
                for texts in policy.stream([prompt, prompt], [wa, wb], settings,
                                           system_prompt=(system_prompt or None), cancel=cancel, block=False):
                    yield texts[0], texts[1], "*generating…*", "*generating…*", head_a, head_b
                yield texts[0], texts[1], "*scoring…*", "*scoring…*", head_a, head_b
                sa, sb = scores_markdown(entry.live_scorers(), prompt, list(texts))
                if cancel.is_set():
                    sa, sb = (f"*stopped: scores of the partial answer*\n\n{t}" for t in (sa, sb))
                yield texts[0], texts[1], sa, sb, head_a, head_b
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            finally:
                ctx.cancels.finish(sid, "compare", cancel)

        inputs = [self.prompt, shared.family, *self.controls["A"], *self.controls["B"], *shared.settings]
        outputs = [self.answers["A"], self.answers["B"], self.scores["A"], self.scores["B"],
                   self.heads["A"], self.heads["B"]]
        self.go.click(compare, inputs, outputs, api_name="compare", concurrency_id="generate")
        self.prompt.submit(compare, inputs, outputs, api_name=False, concurrency_id="generate")

        def stop(request: gr.Request = None):
            """Stop both rows at the next token; the handler then scores what was written and says so."""
            ctx.cancels.cancel(session_id(request), "compare")

        self.stop.click(stop, None, None, queue=False, api_name=False)
