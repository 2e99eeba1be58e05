"""Blind A/B: two answers to your prompt at two hidden w; say which is better, a few times; get your w.

The search itself (``paretoapp.preference_search``) keeps a belief over the
weights you put on the objectives and picks the most informative pair of
evaluated w each round. The answers are shown in random order and the w stay
hidden until the end, so the choice is about the answers only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from .. import preference_search
from .catalog import FamilyEntry
from .chat import settings_from
from .session import USER_ERRORS, AppContext, Session, user_error
from .tab import Shared, Shown
from .texts import family_line
from .zerogpu import gpu

MIN_ROUNDS, MAX_ROUNDS = 4, 12
CHOSEN = {"1": "a", "2": "b", "tie": "tie"}  # the button pressed -> the search's choice, before any swap


@dataclass
class BlindRound:
    """One visitor's blind comparisons on one prompt. It lives in ``gr.State``, so it holds only what
    pickles and deep-copies: names, the numpy-backed search state and a ``random.Random``."""

    family: str
    prompt: str
    search: preference_search.SearchState
    rng: random.Random              # decides the order each pair is shown in (seeded by the prompt's length)
    pair: tuple[int, int] = (0, 0)  # the two candidates shown now, as the search numbers them
    swapped: bool = False           # answer 1 is the pair's second candidate

    @classmethod
    def start(cls, entry: FamilyEntry, prompt: str) -> BlindRound:
        """A fresh search along ``entry``'s evaluated front."""
        r = entry.results
        if r is None or len(r.w_columns) != entry.k or len(r.means) < 2:
            raise gr.Error(f"{entry.key} has no evaluated front to search along; run `paretoapp evaluate` first.")
        front = preference_search.start(r.means[r.w_columns].to_numpy(float),
                                        r.means[r.objectives].to_numpy(float), r.maximise)
        return cls(entry.key, prompt, front, random.Random(len(prompt)))

    def next_answers(self, entry: FamilyEntry, settings) -> tuple[str, str]:
        """Answers at the next pair's two w (one batched generate), in the order shown (maybe swapped)."""
        a, b = preference_search.next_pair(self.search)
        ws = self.search.ws
        texts = entry.policy().generate([self.prompt] * 2, [ws[a].tolist(), ws[b].tolist()], settings)
        self.pair, self.swapped = (a, b), self.rng.random() < 0.5
        return (texts[1], texts[0]) if self.swapped else (texts[0], texts[1])

    def record(self, pressed: str) -> None:
        """The visitor pressed "1", "2" or "tie" on the pair shown: update the belief."""
        chosen = CHOSEN[pressed]
        if self.swapped and chosen != "tie":
            chosen = "b" if chosen == "a" else "a"
        preference_search.update(self.search, *self.pair, chosen)

    def proposed_w(self) -> list[float] | None:
        """The w the comparisons point to, once there have been enough of them."""
        if self.search.rounds < MIN_ROUNDS:
            return None
        return self.search.ws[preference_search.proposal(self.search)[0]].tolist()


def status_text(entry: FamilyEntry, st: BlindRound) -> str:
    s = st.search
    head = f"**Round {s.rounds + 1}** (answers from **{st.family}**): which answer is better for you?"
    if s.rounds < MIN_ROUNDS:
        return head + f" (a proposal after {MIN_ROUNDS} rounds)"
    best, agree = preference_search.proposal(s)
    w = ", ".join(f"{v:g}" for v in s.ws[best])
    names = " · ".join(f"{n} {v:g}" for n, v in zip(entry.objective_names, s.ws[best]))
    done = s.rounds >= MAX_ROUNDS
    return ((f"**Done after {s.rounds} rounds.** " if done else head + "\n\n") +
            f"Your w looks like **({w})** ({names}); {agree:.0%} of the belief agrees. "
            "Use it to chat or export there, or keep comparing to be surer.")


class BlindAB:
    """The blind A/B under the side by side slots: a prompt, two answers, three buttons, "Use this w"."""

    def __init__(self, ctx: AppContext, first: FamilyEntry):
        self.ctx = ctx
        gr.Markdown("### Blind A/B: find your w\nType a prompt you care about. You see two answers at two hidden w; "
                    "say which is better, or that they are about the same. After a few rounds the app proposes "
                    "the w whose answers you would prefer (a Bayesian update along the evaluated front).")
        self.family_note = gr.Markdown(family_line(first, "A new round compares answers from"),
                                       elem_id="pa-ab-family", elem_classes="pa-muted")
        with gr.Row():
            self.prompt = gr.Textbox(label="Prompt", scale=5, elem_id="pa-ab-prompt")
            self.start = gr.Button("Show two answers", variant="primary", scale=1, elem_id="pa-ab-start")
        with gr.Row():
            self.one = gr.Textbox(label="Answer 1", lines=6, interactive=False, elem_id="pa-ab-1")
            self.two = gr.Textbox(label="Answer 2", lines=6, interactive=False, elem_id="pa-ab-2")
        with gr.Row():
            self.pick_one = gr.Button("1 is better", elem_id="pa-ab-pick1")
            self.tie = gr.Button("About the same", elem_id="pa-ab-tie")
            self.pick_two = gr.Button("2 is better", elem_id="pa-ab-pick2")
        self.status = gr.Markdown(elem_id="pa-ab-status")
        self.use = gr.Button("Use this w", visible=False, variant="primary", elem_id="pa-ab-use")
        self.state = gr.State(None)

    @property
    def family_outputs(self) -> list:
        return [self.family_note]

    def family_updates(self, entry: FamilyEntry) -> dict:
        return {self.family_note: family_line(entry, "A new round compares answers from")}

    def wire(self, shared: Shared) -> None:
        ctx = self.ctx
        outputs = [self.one, self.two, self.status, self.use, self.state]

        @gpu
        def begin(key, prompt, temp, max_new):
            entry = ctx.entry(key)
            prompt = (prompt or "").strip()
            if not prompt:
                raise gr.Error("Type a prompt to compare answers on.")
            try:
                st = BlindRound.start(entry, prompt)
                one, two = st.next_answers(entry, settings_from(temp, max_new, entry.measured_penalties))
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            return one, two, status_text(entry, st), gr.update(visible=False), st

        inputs = [shared.family, self.prompt, shared.temperature, shared.max_tokens]
        self.start.click(begin, inputs, outputs, api_name="ab_start", concurrency_id="generate")
        self.prompt.submit(begin, inputs, outputs, api_name=False, concurrency_id="generate")

        def answer(pressed):
            @gpu
            def fn(st: BlindRound | None, temp, max_new):
                if not st:
                    raise gr.Error("Press “Show two answers” first.")
                entry = ctx.entry(st.family)
                st.record(pressed)
                if st.search.rounds >= MAX_ROUNDS:
                    return "", "", status_text(entry, st), gr.update(visible=True), st
                try:
                    one, two = st.next_answers(entry, settings_from(temp, max_new, entry.measured_penalties))
                except USER_ERRORS as exc:
                    raise user_error(exc) from None
                ready = st.search.rounds >= MIN_ROUNDS
                return one, two, status_text(entry, st), gr.update(visible=ready), st
            return fn

        for button, pressed, api in ((self.pick_one, "1", "ab_choose_1"), (self.pick_two, "2", "ab_choose_2"),
                                     (self.tie, "tie", "ab_choose_tie")):
            button.click(answer(pressed), [self.state, shared.temperature, shared.max_tokens], outputs,
                         api_name=api, concurrency_id="generate")

        def use_proposal(key, over, x, y, sess: Session, st: BlindRound | None):
            """Move the session to the w the comparisons proposed."""
            w = st.proposed_w() if st else None
            if w is None:
                raise gr.Error("Answer a few more rounds first: the proposal comes after four.")
            return shared.move(st.family, w, key, Shown.of(sess, over, x, y))

        self.use.click(use_proposal, [*shared.view, shared.session, self.state], shared.move_outputs,
                       api_name="ab_use")
