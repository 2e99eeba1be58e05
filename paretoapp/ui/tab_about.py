"""The About tab: the chosen family's card (method, objectives, ranges, training, evaluation)."""

from __future__ import annotations

import gradio as gr

from .catalog import FamilyEntry
from .tab import Shown, Start, Tab, Updates
from .texts import about_markdown


class AboutTab(Tab):
    def __init__(self, start: Start):
        with gr.Tab("About", id="about"):
            self.card = gr.Markdown(about_markdown(start.first), elem_id="pa-about")

    @property
    def family_outputs(self) -> list:
        return [self.card]

    def family_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        return {self.card: about_markdown(entry)}
