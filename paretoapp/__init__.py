"""paretoapp: train, evaluate and explore multi-objective aligned LLM families.

The public API, imported on first use (so ``paretoapp --help`` stays instant)::

    from paretoapp import load_policy, GenerationSettings, evaluate_family, load_results

See README.md ("Use it from Python") and docs/design.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "Family": "family", "FamilyError": "family", "load_family": "family", "make_family": "family",
    "Gate": "gates", "PreferenceError": "gates",
    "PreferenceBank": "bank",
    "Policy": "generate", "GenerationSettings": "generate", "load_policy": "generate",
    "PromptTooLongError": "generate",
    "EngineBusy": "engine", "EngineConfig": "engine", "engine_for": "engine",
    "evaluate_family": "evaluate", "load_results": "evaluate", "compare_results": "evaluate",
    "EvaluationError": "evaluate",
    "export_merged": "export", "export_lora": "export", "zip_folder": "export", "push_to_hub": "export",
    "ExportError": "export", "EXPORTERS": "export", "export_as": "export",
    "Method": "methods", "register": "methods", "get_method": "methods",
    "PreferenceSpace": "preferences",
    "pick": "picking", "Pick": "picking",
    "ParetoappError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'paretoapp' has no attribute {name!r}")
