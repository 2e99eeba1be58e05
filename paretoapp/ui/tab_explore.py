"""The Explore & chat tab: pick a family, see its front, set w (slider or click), chat at that w.

Two columns, each its own module: the front (``explore_front``: the family,
the front, the w controls, pick by constraint) and the chat
(``explore_chat``). Under both: the table of the plotted families and a box
that adds a family folder. The family, the w controls and the generation
settings built here are the controls the other tabs share (``app.py`` hands
them over as ``Shared``).
"""

from __future__ import annotations

import os

import gradio as gr

from .. import settings
from ..family import FamilyError
from .catalog import FamilyEntry
from .explore_chat import ChatPanel
from .explore_front import FrontPanel
from .frontview import plot_entries
from .plot import summary_markdown
from .tab import Shared, Shown, Start, Tab, Updates


class ExploreTab(Tab):
    """The front column, the chat column, the table of plotted families and "Add a family folder"."""

    def __init__(self, start: Start):
        self.ctx = start.ctx
        with gr.Tab("Explore", id="explore"):
            with gr.Row(equal_height=False, elem_classes="pa-main"):
                with gr.Column(scale=6, min_width=340, elem_classes="pa-main-col"):
                    self.front = FrontPanel(start)
                with gr.Column(scale=5, min_width=340, elem_classes="pa-main-col"):
                    self.chat = ChatPanel(start)
            self.summary = gr.Markdown(summary_markdown([start.first]), elem_classes="pa-scores", elem_id="pa-summary")
            with gr.Accordion("Add a family folder", open=False, visible=not start.on_space, elem_id="pa-add"):
                with gr.Row():
                    self.add_path = gr.Textbox(label="Folder with family.json", scale=4,
                                               placeholder="a folder inside the app's families folder, or owner/repo")
                    self.add_btn = gr.Button("Add", scale=1)
                self.add_status = gr.Markdown()

    @property
    def family_outputs(self) -> list:
        return [*self.front.family_outputs, *self.chat.family_outputs, self.summary]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        return {**self.front.family_updates(entry, shown), **self.chat.family_updates(entry, shown),
                self.summary: summary_markdown(plot_entries(self.ctx, entry.key, shown.overlay))}

    @property
    def preference_outputs(self) -> list:
        return self.front.preference_outputs

    def preference_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        return self.front.preference_updates(entry, shown)

    def wire(self, shared: Shared) -> None:
        self.front.wire(shared, self.summary)
        self.chat.wire(shared)
        self._wire_add_family(shared)

    def _wire_add_family(self, shared: Shared) -> None:
        ctx = self.ctx

        def add_family(path, key, over):
            path = (path or "").strip()
            if os.environ.get("SPACE_ID") and not settings.ALLOW_PATHS.get():
                return "❌ Adding folders is disabled on a Space.", gr.update(), gr.update()
            try:
                entry = ctx.catalog.add_visitors(path, device=ctx.entry(key).device)
            except (FamilyError, OSError, ValueError) as exc:
                return f"❌ {exc}", gr.update(), gr.update()
            over = list(over or [])
            if entry.key != key and entry.key not in over:
                over.append(entry.key)
            return (f"✅ Added **{entry.key}**" + ("" if entry.results else " (no evaluation results found next to it)"),
                    gr.update(choices=ctx.catalog.keys), gr.update(choices=ctx.catalog.keys, value=over))

        self.add_btn.click(add_family, [self.add_path, shared.family, shared.overlay],
                           [self.add_status, shared.family, shared.overlay], api_name="add_family")
