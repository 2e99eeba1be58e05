"""The Gradio app (``app.py`` at the repository root launches it).

``build_catalog`` finds the families, ``build_app`` wires the UI on them,
``launch_kwargs`` gives the theme and CSS (Gradio 6 takes them in ``launch``).
"""

from .app import build_app, launch_kwargs
from .catalog import Catalog, FamilyEntry, build_catalog

__all__ = ["Catalog", "FamilyEntry", "build_app", "build_catalog", "launch_kwargs"]
