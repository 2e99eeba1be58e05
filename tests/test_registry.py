"""The method registry: a ninth method needs only its own module and one registry entry.

A toy method registered here (this module is its "trainer") goes through
`paretoapp train`, the family validator and the app's family card, with nothing
else in the code base naming it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from trainer_fixtures import *  # noqa: F403  (tiny_base, pref_jsonl, write_config)

from paretoapp.cli import main as cli
from paretoapp.family import Block, Family, FamilyError
from paretoapp.gates import Gate
from paretoapp.methods import Method, all_methods, get_method, register, unregister
from paretoapp.trainers.config import MethodConfig
from paretoapp.trainers.family_io import family_from_run, save_family
from paretoapp.trainers.loop import start_run
from paretoapp.trainers.lora import load_base


@dataclasses.dataclass
class ToyConfig(MethodConfig):
    scale: float = 0.1


def train(cfg: ToyConfig) -> Path:
    """The toy 'method': one random low-rank block per objective on q_proj, mixed by w (no optimisation)."""
    start_run(cfg)
    model, _ = load_base(cfg.base_model, cfg.revision, cfg.dtype)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    k, r = len(cfg.objectives), 2
    tensors = {}
    for name, module in model.named_modules():
        if name.endswith("q_proj"):
            out_f, in_f = module.weight.shape
            tensors[f"{name}.lora_A"] = torch.randn(k * r, in_f, generator=gen)
            tensors[f"{name}.lora_B"] = cfg.scale * torch.randn(out_f, k * r, generator=gen)
    family = family_from_run(cfg, "toy", model, tensors, [Block(o.name, r) for o in cfg.objectives],
                             Gate.identity(k), w_low=[0.0] * k, w_high=[1.0] * k, description="a toy family")
    return save_family(cfg, family)


@pytest.fixture
def toy_method():
    register(Method("toy", "Toy method", "one random block per objective, mixed by w", paper="Nobody, 2026",
                    module=__name__, config="ToyConfig"))
    yield get_method("toy")
    unregister("toy")


def test_a_registered_method_trains_through_the_cli_and_shows_its_card(toy_method, tiny_base, pref_jsonl,
                                                                       tmp_path, capsys):
    from paretoapp.ui.catalog import load_entry
    from paretoapp.ui.texts import about_markdown

    cfg = write_config(tmp_path / "toy.yaml", tiny_base, pref_jsonl, tmp_path / "run")  # noqa: F405
    assert cli(["train"]) == 0 and "Toy method" in capsys.readouterr().out       # listed with the others
    assert cli(["train", "toy", "--config", str(cfg), "--set", "scale=0.2"]) == 0
    folder = tmp_path / "run" / "family"
    family = Family.load(folder)                                                 # the validator accepts it
    assert family.manifest.method == "toy" and family.manifest.training["config"]["scale"] == 0.2
    card = about_markdown(load_entry(folder))                                    # the app's family card
    assert "Toy method (Nobody, 2026): one random block per objective, mixed by w." in card

    unregister("toy")                                                            # unknown again: a clear error
    with pytest.raises(FamilyError, match="unknown method 'toy'.*register"):
        Family.load(folder)
    assert cli(["train", "toy", "--config", str(cfg)]) == 2


def test_every_trainable_method_names_a_config_and_a_train_function():
    for method in all_methods():
        if not method.trainable:
            continue
        cls = method.config_class()
        assert dataclasses.is_dataclass(cls) and issubclass(cls, MethodConfig), method.name
        assert callable(method.train_fn()), method.name
        assert method.title and method.summary and (method.arxiv or method.baseline), method.name


def test_registering_a_name_twice_is_an_error(toy_method):
    with pytest.raises(ValueError, match="already registered"):
        register(Method("toy", "again", "x"))


def test_the_card_says_whose_extrapolation_it_is_from_the_registry(toy_method):
    from types import SimpleNamespace

    from paretoapp.family import Objective
    from paretoapp.ui.texts import range_text

    m = SimpleNamespace(method="toy", objectives=[Objective("a"), Objective("b")], in_sample_low=[0.0, 0.0],
                        in_sample_high=[1.0, 1.0], w_low=[-0.5, -0.5], w_high=[1.5, 1.5])
    assert "extrapolation allowed" in range_text(m) and "this project's extension" not in range_text(m)
    register(dataclasses.replace(toy_method, extrapolation="extension"), replace=True)
    assert "(extrapolating w is this project's extension)" in range_text(m)
    with pytest.raises(ValueError, match="extrapolation must be one of"):
        Method("x", "x", "x", extrapolation="sometimes")


def test_the_methods_flagged_as_sharing_adapters_are_those_that_train_them():
    """``reuses_objective_adapters`` (the demo builds those methods in one worker) matches the trainers' code."""
    import importlib
    import inspect

    for method in all_methods():
        if method.trainable:
            source = inspect.getsource(importlib.import_module(method.module))
            assert method.reuses_objective_adapters == ("train_objective_adapter(" in source), method.name
