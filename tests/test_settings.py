"""Every PARETOAPP_* variable is defined once in paretoapp/settings.py, read through it, and documented."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

from paretoapp import settings
from paretoapp.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"PARETOAPP_[A-Z_]*[A-Z]")


def test_the_docs_page_is_generated_from_the_settings():
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == settings.markdown(), (
        "docs/settings.md is out of date: python -m paretoapp.settings > docs/settings.md")


def test_each_variable_is_defined_once():
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names)) == 27 and all(NAME.fullmatch(n) for n in names)


def test_every_variable_the_repository_names_is_a_setting():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    named = set()
    for f in files:
        if f.endswith((".py", ".md", ".sh", ".yaml", ".toml", ".txt")) and (ROOT / f).is_file():
            named |= set(NAME.findall((ROOT / f).read_text(encoding="utf-8", errors="replace")))
    named -= {"PARETOAPP_ENGINE"}  # "PARETOAPP_ENGINE_*" in prose, for all of them
    assert named <= {s.name for s in settings.SETTINGS}


def test_no_module_reads_a_variable_itself():
    offenders = []
    for path in (ROOT / "paretoapp").rglob("*.py"):
        if path.name == "settings.py" and path.parent.name == "paretoapp":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert offenders == []


def test_values_are_read_on_each_call_with_their_defaults(monkeypatch, tmp_path):
    for s in settings.SETTINGS:
        monkeypatch.delenv(s.name, raising=False)
    assert settings.ALLOW_PICKLE.get() is False and settings.FAMILIES.get() == [] and settings.DEVICE.get() is None
    assert settings.MAX_NEW_TOKENS.get() == 1024 and settings.EXPORT_TTL_S.get() == 1800.0
    assert settings.CACHE.get() == Path.home() / ".cache" / "paretoapp"
    monkeypatch.setenv("PARETOAPP_ALLOW_PICKLE", "true")  # only "1" turns a flag on
    assert settings.ALLOW_PICKLE.get() is False
    monkeypatch.setenv("PARETOAPP_ALLOW_PICKLE", "1")
    assert settings.ALLOW_PICKLE.get() is True
    monkeypatch.setenv("PARETOAPP_ALLOW_PATHS", "yes")
    assert settings.ALLOW_PATHS.get() is True
    monkeypatch.setenv("PARETOAPP_FAMILIES", " a, ,b/c@v1 ")
    assert settings.FAMILIES.get() == ["a", "b/c@v1"]
    monkeypatch.setenv("PARETOAPP_CACHE", str(tmp_path))
    assert settings.CACHE.get() == tmp_path
    monkeypatch.setenv("PARETOAPP_ENGINE_GRAPHS", "0")
    assert settings.ENGINE_GRAPHS.get() is False
    monkeypatch.delenv("PARETOAPP_ENGINE_GRAPHS")
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    assert settings.ENGINE_GRAPHS.get() is False
    monkeypatch.setenv("PARETOAPP_MAX_PROMPT_TOKENS", "")  # empty is unset
    assert settings.MAX_PROMPT_TOKENS.get() == 2048


@pytest.mark.parametrize("raw,message", [
    ("lots", "PARETOAPP_MAX_NEW_TOKENS 'lots' is not a whole number; give one like 64"),
    ("2.5", "PARETOAPP_MAX_NEW_TOKENS '2.5' is not a whole number; give one like 64"),
    ("0", "PARETOAPP_MAX_NEW_TOKENS must be at least 1, got 0; unset it for the default (1024)"),
])
def test_a_bad_value_is_one_line_that_says_what_to_do(monkeypatch, raw, message):
    from paretoapp.validation import app_max_new_tokens

    monkeypatch.setenv("PARETOAPP_MAX_NEW_TOKENS", raw)
    with pytest.raises(InputError) as exc:
        app_max_new_tokens()
    assert str(exc.value) == message


def test_the_engine_reads_its_settings(monkeypatch):
    import torch

    from paretoapp.engine import EngineConfig

    monkeypatch.setenv("PARETOAPP_ENGINE_MAX_BATCH", "8")
    monkeypatch.setenv("PARETOAPP_ENGINE_CACHE_LEN", "100")
    monkeypatch.setenv("PARETOAPP_ENGINE_DECODER", "static")
    cfg = EngineConfig().resolved(torch.device("cpu"), context=64)
    assert (cfg.max_batch, cfg.max_waiting, cfg.cache_len, cfg.decoder) == (8, 256, 64, "static")
    assert EngineConfig(max_batch=3).resolved(torch.device("cpu"), context=64).max_batch == 3


@pytest.mark.parametrize("variable, field, none, good, bad, message", [
    ("PARETOAPP_REPETITION_PENALTY", "repetition_penalty", 1.0, "1.2", "3", r"must be in \(0, 2\], got 3"),
    ("PARETOAPP_PRESENCE_PENALTY", "presence_penalty", 0.0, "1", "-2.5", r"must be in \[-2, 2\], got -2.5"),
])
def test_the_apps_penalties_reach_every_answer(monkeypatch, variable, field, none, good, bad, message):
    from paretoapp.ui.chat import settings_from

    assert getattr(settings_from(0, 32), field) == none      # none by default: as the families were evaluated
    monkeypatch.setenv(variable, good)
    assert getattr(settings_from(0.7, 32), field) == float(good)
    monkeypatch.setenv(variable, bad)
    with pytest.raises(InputError, match=variable + " " + message):
        settings_from(0, 32)


def test_the_chat_says_which_penalties_change_every_answer(monkeypatch):
    from types import SimpleNamespace

    from paretoapp.ui.explore_chat import decoding_note

    plain, measured = SimpleNamespace(measured_penalties={}), SimpleNamespace(measured_penalties={"presence_penalty": 1.0})
    assert decoding_note(plain) == ""
    assert decoding_note(measured) == "This family answers with a presence penalty of 1, as its front was measured."
    monkeypatch.setenv("PARETOAPP_PRESENCE_PENALTY", "1")
    assert decoding_note(plain) == ("This family answers with a presence penalty of 1 (`PARETOAPP_PRESENCE_PENALTY`); "
                                    "its front was measured with none.")
    assert decoding_note(measured) == "This family answers with a presence penalty of 1, as its front was measured."
    monkeypatch.setenv("PARETOAPP_PRESENCE_PENALTY", "0")
    assert decoding_note(measured) == ("This family answers with no presence penalty (`PARETOAPP_PRESENCE_PENALTY`), "
                                       "though its front was measured with 1.")
    monkeypatch.setenv("PARETOAPP_REPETITION_PENALTY", "1.2")
    assert decoding_note(plain) == ("This family answers with a repetition penalty of 1.2 "
                                    "(`PARETOAPP_REPETITION_PENALTY`); its front was measured with none.")


def test_a_family_answers_with_the_penalties_its_front_was_measured_with(monkeypatch):
    from types import SimpleNamespace

    from paretoapp.ui.catalog import FamilyEntry
    from paretoapp.ui.chat import settings_from

    def entry(settings):
        return FamilyEntry("f", None, None, results=SimpleNamespace(meta={"settings": settings}))

    assert entry({"max_new_tokens": 48}).measured_penalties == {}                      # off: left out of the record
    assert FamilyEntry("f", None, None).measured_penalties == {}                        # no results: nothing measured
    fam = entry({"max_new_tokens": 48, "presence_penalty": 1, "frequency_penalty": 0.5})
    assert fam.measured_penalties == {"presence_penalty": 1.0, "frequency_penalty": 0.5}
    got = settings_from(0, 32, fam.measured_penalties)
    assert (got.presence_penalty, got.frequency_penalty, got.repetition_penalty) == (1.0, 0.5, 1.0)
    monkeypatch.setenv("PARETOAPP_PRESENCE_PENALTY", "0.25")                              # the environment wins
    assert settings_from(0, 32, fam.measured_penalties).presence_penalty == 0.25
    monkeypatch.setenv("PARETOAPP_PRESENCE_PENALTY", "")                                  # empty is unset
    assert settings_from(0, 32, fam.measured_penalties).presence_penalty == 1.0
