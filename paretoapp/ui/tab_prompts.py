"""The Prompts tab: one prompt's front. How do the answers to THIS question change along w?

A held-out prompt is read from the results table (no generation): its answer
and scores at every evaluated w, as a small front and a strip of answers. A
prompt the visitor types is answered at every evaluated w in one batch (rows
with different w) and scored by the family's live scorers.
"""

from __future__ import annotations

import html

import gradio as gr
import plotly.graph_objects as go

from .catalog import FamilyEntry
from .live_eval import evaluable, evaluate_prompt, prompt_front
from .plot import axis_title, w_text
from .session import USER_ERRORS, user_error
from .tab import Shared, Shown, Start, Tab, Updates
from .texts import family_line
from .zerogpu import gpu


def held_out_prompts(entry: FamilyEntry) -> list[str]:
    r = entry.results
    if r is None:
        return []
    return r.rows.sort_values("prompt_id").drop_duplicates("prompt_id")["prompt"].tolist()


def prompt_figure(entry: FamilyEntry, table) -> go.Figure:
    r = entry.results
    x, y = r.objectives[0], r.objectives[1] if len(r.objectives) > 1 else r.objectives[0]
    names = entry.objective_names
    ws = table[r.w_columns].to_numpy(float)
    fig = go.Figure(go.Scatter(
        x=table[x], y=table[y], mode="markers+lines", line=dict(width=1, color="#a5b4fc"),
        marker=dict(size=11, color=ws[:, 0], colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text=f"w {names[0]}", side="right"), thickness=10)),
        text=[f"w: {w_text(names, w)}<br>{html.escape(str(a))[:160]}" for w, a in zip(ws, table["response"])],
        hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=360, margin=dict(l=56, r=12, t=34, b=50),
                      xaxis_title=axis_title(x, r.maximise[0], "x"),
                      yaxis_title=axis_title(y, r.maximise[r.objectives.index(y)], "y"))
    return fig


def answers_markdown(entry: FamilyEntry, table) -> str:
    r = entry.results
    head = "| w | " + " | ".join(r.objectives) + " | answer |"
    rows = [head, "|---" * (len(r.objectives) + 2) + "|"]
    if table.attrs.get("kind"):
        rows.insert(0, f"**This prompt** {html.escape(table.attrs['kind'], quote=False)}; the harmless score counts a refusal as "
                       "right with that probability.\n")
    for _, row in table.iterrows():
        w = ", ".join(f"{row[c]:g}" for c in r.w_columns)
        answer = html.escape(" ".join(str(row["response"]).split()))[:300] or "*(empty)*"
        rows.append(f"| ({w}) | " + " | ".join(f"{row[n]:.3f}" for n in r.objectives) + f" | {answer} |")
    return "\n".join(rows)


class PromptsTab(Tab):
    """A held-out prompt's answers along the front (read from the results), or a typed prompt's (generated)."""

    def __init__(self, start: Start):
        self.ctx, first = start.ctx, start.first
        prompts = held_out_prompts(first)
        with gr.Tab("Prompts", id="prompts"):
            gr.Markdown("**One prompt's front.** Pick a held-out prompt to see its answer and scores at every "
                        "evaluated w (read from the results, nothing is generated), or type your own and evaluate it "
                        "now: one batch answers it at every w and the live scorers score it.")
            self.family_note = gr.Markdown(family_line(first, "Prompts and answers of"), elem_id="pa-prompt-family",
                                           elem_classes="pa-muted")
            with gr.Row():
                self.choice = gr.Dropdown(prompts, value=prompts[0] if prompts else None, label="A held-out prompt",
                                          elem_id="pa-prompt-pick", scale=3)
            with gr.Row():
                self.custom = gr.Textbox(label="Or your own prompt", scale=4, elem_id="pa-prompt-own",
                                         placeholder="A question to answer at every evaluated w")
                self.go = gr.Button("Evaluate this prompt now", scale=1, elem_id="pa-prompt-go",
                                    interactive=evaluable(first))
            self.plot = gr.Plot(self._figure(first, prompts[0]) if prompts else None, label="This prompt's front",
                                elem_id="pa-prompt-plot")
            self.answers = gr.Markdown(self._answers(first, prompts[0]) if prompts else "", elem_id="pa-prompt-answers",
                                       elem_classes="pa-answers")

    @staticmethod
    def _figure(entry, prompt):
        return prompt_figure(entry, prompt_front(entry, prompt))

    @staticmethod
    def _answers(entry, prompt):
        return answers_markdown(entry, prompt_front(entry, prompt))

    @property
    def family_outputs(self) -> list:
        return [self.family_note, self.choice, self.go, self.plot, self.answers]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        prompts = held_out_prompts(entry)
        first = prompts[0] if prompts else None
        return {self.family_note: family_line(entry, "Prompts and answers of"),
                self.choice: gr.update(choices=prompts, value=first),
                self.go: gr.update(interactive=evaluable(entry)),
                self.plot: self._figure(entry, first) if first else None,
                self.answers: self._answers(entry, first) if first else "*This family has no evaluation results.*"}

    def wire(self, shared: Shared) -> None:
        ctx = self.ctx

        def show(key, prompt):
            entry = ctx.entry(key)
            if not prompt or entry.results is None:
                return None, ""
            try:
                table = prompt_front(entry, prompt)
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            return prompt_figure(entry, table), answers_markdown(entry, table)

        self.choice.input(show, [shared.family, self.choice], [self.plot, self.answers], api_name="prompt_front")

        @gpu
        def evaluate_now(key, prompt, progress=gr.Progress()):
            entry = ctx.entry(key)
            try:
                table = evaluate_prompt(entry, prompt, progress)
            except USER_ERRORS as exc:
                raise user_error(exc) from None
            return prompt_figure(entry, table), answers_markdown(entry, table)

        self.go.click(evaluate_now, [shared.family, self.custom], [self.plot, self.answers],
                      api_name="evaluate_prompt", concurrency_id="generate")
        self.custom.submit(evaluate_now, [shared.family, self.custom], [self.plot, self.answers], api_name=False,
                           concurrency_id="generate")
