"""Every registered method, the same way: ``paretoapp demo --methods`` at tiny size, ``paretoapp train`` on the
config the demo's recipe gave, the family validator and the family card (as PEFT's tests run every tuner).

The method list is the registry's, plus a renamed copy of linear DPO registered here alone (its module is
linear_dpo.py with the name changed, and a coarser default grid): a method the rest of the code base has never heard of goes through
train, validate, card and demo like the eight that ship. Everything runs on a tiny random Llama (the demo's
``--set base_model=...``) and the demo's tiny data, made with that model, so each method takes seconds.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from trainer_fixtures import tiny_base  # noqa: F401  (a session fixture)

from paretoapp.cli import main as cli
from paretoapp.demo import cli as demo_cli
from paretoapp.demo.data import build_demo_data
from paretoapp.demo.presets import PRESETS
from paretoapp.family import Family
from paretoapp.methods import Method, get_method, register, trainable_names, unregister

COPY = "linear_dpo_copy"
METHODS = [*trainable_names(), COPY]
PRESET = PRESETS["tiny"]


@pytest.fixture(scope="module")
def copy_of_linear_dpo(tmp_path_factory):
    """linear_dpo.py saved under another name, with its name changed, and registered (the two steps of
    CONTRIBUTING.md's "add a method" that touch code)."""
    import paretoapp.trainers.linear_dpo as original

    folder = tmp_path_factory.mktemp("method")
    source = Path(original.__file__).read_text(encoding="utf-8")
    source = source.replace('"linear_dpo"', f'"{COPY}"').replace("from .", "from paretoapp.trainers.")
    assert "grid_resolution: int = 4 " in source  # ... and a coarser default grid: 2 points, not 5 (test time)
    source = source.replace("grid_resolution: int = 4 ", "grid_resolution: int = 1 ")
    (folder / f"{COPY}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(folder))
    register(Method(COPY, "Linear DPO, copied", "a renamed copy of linear DPO, registered by a test",
                    paper="nobody", module=COPY, config="LinearDPOConfig"))
    yield importlib.import_module(COPY)
    unregister(COPY)
    sys.path.remove(str(folder))
    sys.modules.pop(COPY, None)


@pytest.fixture(scope="module")
def demo_build(copy_of_linear_dpo, tiny_base, tmp_path_factory):  # noqa: F811
    """``paretoapp demo --preset tiny --methods <every method>`` on the tiny base; its data made beforehand by
    the tiny model (the demo reuses data whose settings match, so it never loads SmolLM2)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("demo")
    out, work = root / "out", root / "work"
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_base), AutoTokenizer.from_pretrained(tiny_base)
    build_demo_data(out / "demo" / "data", PRESET.n_train, PRESET.n_eval, PRESET.sample, PRESET.pair_settings,
                    model=model, tokenizer=tok, show_progress=False, n_dev=PRESET.n_dev, objectives=PRESET.objectives)
    record = demo_cli.main(["--preset", "tiny", "--methods", ",".join(METHODS), "--out", str(out),
                            "--work", str(work), "--jobs", "1", "--quiet", "--set", f"base_model={tiny_base}"])
    return out, work, record


def test_the_list_is_the_registry():
    """Nothing to keep in step: the demo builds what the registry holds."""
    assert set(PRESET.method_names()) == set(trainable_names()) and COPY not in trainable_names()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_builds_in_the_demo_trains_validates_and_shows_its_card(method, demo_build, tmp_path):
    from paretoapp.evaluate import load_results
    from paretoapp.ui.catalog import load_entry
    from paretoapp.ui.texts import about_markdown, family_card, method_line

    out, work, record = demo_build
    spec, name = get_method(method), PRESET.family_dir(method)
    # the demo built and evaluated it (`paretoapp demo --methods`)
    assert record["families"][method] == str(out / name) and record["checks"][method]["checks"]
    demo_family = Family.load(out / name)                                   # the family validator
    assert demo_family.manifest.method == method
    assert len(load_results(out / name / "results").means) == 3            # the tiny preset's sweep:3
    # `paretoapp train METHOD --config`, on the config the demo's recipe gave it (kept in its run folder)
    config = work / name / "config.yaml"
    assert cli(["train", method, "--config", str(config), "--set", f"output_dir={tmp_path / 'run'}",
                "--set", f"adapters_dir={tmp_path / 'adapters'}", "--set", f"family_dir={tmp_path / 'family'}",
                "--set", "train.max_steps=1"]) == 0
    family = Family.load(tmp_path / "family")                               # the family validator
    assert family.manifest.method == method and set(family.tensors) == set(demo_family.tensors)
    # the family card and the About tab: the registry's words for it
    entry = load_entry(out / name)
    assert f"{spec.title}: {spec.summary}." in family_card(entry)
    assert method_line(method) in about_markdown(entry)
