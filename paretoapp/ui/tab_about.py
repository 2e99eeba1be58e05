"""The About tab: the chosen family's card (method, objectives, ranges, training, evaluation)."""

from __future__ import annotations

import gradio as gr

from .catalog import FamilyEntry
from .texts import about_markdown


class AboutTab:
    def __init__(self, first: FamilyEntry):
        with gr.Tab("About", id="about"):
            self.card = gr.Markdown(about_markdown(first), elem_id="pa-about")

    def family_updates(self, entry: FamilyEntry) -> dict:
        return {self.card: about_markdown(entry)}
