"""Blind A/B: two answers to your prompt at two hidden w; say which is better, a few times; get your w.

The search itself (``paretoapp.preference_search``) keeps a belief over the
weights you put on the objectives and picks the most informative pair of
evaluated w each round. The answers are shown in random order and the w stay
hidden until the end, so the choice is about the answers only.
"""

from __future__ import annotations

import random

import gradio as gr

from .. import preference_search as search
from .catalog import FamilyEntry
from .chat import settings_from
from .session import AppContext, user_error
from .tab_explore import USER_ERRORS, ExploreTab
from .zerogpu import gpu

MIN_ROUNDS, MAX_ROUNDS = 4, 12


def _pair_answers(entry: FamilyEntry, st: dict, settings) -> tuple[str, str]:
    """Answers at the next pair's two w (one batched generate), in the order shown (maybe swapped)."""
    a, b = search.next_pair(st["search"])
    ws = st["search"].ws
    texts = entry.policy().generate([st["prompt"]] * 2, [ws[a].tolist(), ws[b].tolist()], settings)
    st["pair"], st["swapped"] = (a, b), st["rng"].random() < 0.5
    return (texts[1], texts[0]) if st["swapped"] else (texts[0], texts[1])


def status_text(entry: FamilyEntry, st: dict) -> str:
    s = st["search"]
    head = f"**Round {s.rounds + 1}:** which answer is better for you?"
    if s.rounds < MIN_ROUNDS:
        return head + f" (a proposal after {MIN_ROUNDS} rounds)"
    best, agree = search.proposal(s)
    w = ", ".join(f"{v:g}" for v in s.ws[best])
    names = " · ".join(f"{n} {v:g}" for n, v in zip(entry.objective_names, s.ws[best]))
    done = s.rounds >= MAX_ROUNDS
    return ((f"**Done after {s.rounds} rounds.** " if done else head + "\n\n") +
            f"Your w looks like **({w})** ({names}); {agree:.0%} of the belief agrees. "
            "Use it to chat or export there, or keep comparing to be surer.")


class BlindAB:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        gr.Markdown("### Blind A/B: find your w\nType a prompt you care about. You see two answers at two hidden w; "
                    "say which is better, or that they are about the same. After a few rounds the app proposes "
                    "the w whose answers you would prefer (a Bayesian update along the evaluated front).")
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

    @staticmethod
    def proposed_w(st) -> list[float] | None:
        if not st or st["search"].rounds < MIN_ROUNDS:
            return None
        return st["search"].ws[search.proposal(st["search"])[0]].tolist()

    def wire(self, explore: ExploreTab) -> None:
        ctx = self.ctx

        @gpu
        def begin(key, prompt, temp, max_new):
            entry = ctx.entry(key)
            prompt = (prompt or "").strip()
            if not prompt:
                raise gr.Error("Type a prompt to compare answers on.")
            r = entry.results
            if r is None or len(r.w_columns) != entry.k or len(r.means) < 2:
                raise gr.Error(f"{key} has no evaluated front to search along; run `paretoapp evaluate` first.")
            try:
                st = {"family": key, "prompt": prompt, "rng": random.Random(len(prompt)),
                      "search": search.start(r.means[r.w_columns].to_numpy(float),
                                             r.means[r.objectives].to_numpy(float), r.maximise)}
                one, two = _pair_answers(entry, st, settings_from(temp, max_new))
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            return one, two, status_text(entry, st), gr.update(visible=False), st

        outputs = [self.one, self.two, self.status, self.use, self.state]
        inputs = [explore.family, self.prompt, explore.temperature, explore.max_tokens]
        self.start.click(begin, inputs, outputs, api_name="ab_start", concurrency_id="generate")
        self.prompt.submit(begin, inputs, outputs, api_name=False, concurrency_id="generate")

        def answer(which):
            @gpu
            def fn(st, temp, max_new):
                if not st:
                    raise gr.Error("Press “Show two answers” first.")
                entry = ctx.entry(st["family"])
                a, b = st["pair"]
                shown = {"1": "a", "2": "b", "tie": "tie"}[which]
                if st["swapped"] and shown != "tie":
                    shown = "b" if shown == "a" else "a"
                search.update(st["search"], a, b, shown)
                if st["search"].rounds >= MAX_ROUNDS:
                    return "", "", status_text(entry, st), gr.update(visible=True), st
                try:
                    one, two = _pair_answers(entry, st, settings_from(temp, max_new))
                except USER_ERRORS as exc:
                    raise user_error(exc) from None
                ready = st["search"].rounds >= MIN_ROUNDS
                return one, two, status_text(entry, st), gr.update(visible=ready), st
            return fn

        for button, which, api in ((self.pick_one, "1", "ab_choose_1"), (self.pick_two, "2", "ab_choose_2"),
                                   (self.tie, "tie", "ab_choose_tie")):
            button.click(answer(which), [self.state, explore.temperature, explore.max_tokens], outputs,
                         api_name=api, concurrency_id="generate")
