"""The checkout's entry points (``trainers/``): one door per trainable method of the registry, plus the demo
and the phase-1 adapters, each running its command's ``main`` (trainers/README.md)."""

from __future__ import annotations

import importlib
import runpy
import sys
from pathlib import Path

import pytest

from paretoapp.methods import get_method, trainable_names

ROOT = Path(__file__).resolve().parents[1]
# the doors that are not a registered method: module -> (the module whose main it runs, what its --help says)
EXTRA = {"demo": ("paretoapp.demo.cli", "usage: paretoapp demo"),
         "objective_adapter": ("paretoapp.trainers.objective_adapter", "--config")}


def entry_points() -> set[str]:
    return {p.stem for p in (ROOT / "trainers").glob("*.py") if p.stem != "__init__"}


def test_there_is_one_entry_point_per_trainable_method_plus_the_demo():
    assert entry_points() == set(trainable_names()) | set(EXTRA)


@pytest.mark.parametrize("name", sorted(entry_points()))
def test_each_entry_point_runs_its_commands_main(name, monkeypatch, capsys):
    target, usage = EXTRA.get(name) or (get_method(name).module, f"usage: paretoapp train {name}")
    monkeypatch.setattr(sys, "argv", [f"trainers/{name}.py", "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module(f"trainers.{name}", run_name="__main__")
    assert exc.value.code == 0 and usage in capsys.readouterr().out
    assert runpy.run_module(f"trainers.{name}")["main"] is importlib.import_module(target).main
