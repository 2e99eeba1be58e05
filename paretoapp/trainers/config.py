"""Run configuration: dataclasses that load from YAML and take ``--set key=value`` overrides.

One config file describes one run (base model, LoRA shape, optimisation,
objectives and their data); it is copied into the run folder so a family on
disk says how it was made. Unknown keys are errors, not silently ignored.

    paretoapp train rewarded_soups --config rs.yaml --set train.learning_rate=1e-5 --set output_dir=runs/x
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paretoapp.errors import ConfigError
from paretoapp.validation import check_adapter_folder

from .data import DataSpec
from .lora import LoraSettings


@dataclass
class TrainConfig:
    """How one adapter is optimised (shared by every method)."""
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int | None = None        # optimizer steps; overrides epochs when set
    batch_size: int = 4                 # pairs per device per micro-batch
    grad_accum: int = 1
    beta: float = 0.1                   # DPO temperature
    label_smoothing: float = 0.0
    # DPO + sft_weight * NLL per token of the chosen answer (RPO, Pang et al. 2024, arXiv 2404.19733):
    # keeps the chosen answers likely instead of only pushing the rejected ones down. Used by the
    # per-objective DPO runs (objective_adapter: RS, Preference Vector, PEO phases 1-2); 0 = plain DPO
    sft_weight: float = 0.0
    max_length: int | None = 512        # prompt + response tokens
    max_prompt_length: int | None = 256
    scheduler: str = "cosine"           # any transformers get_scheduler name
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    eval_every: int = 0                 # optimizer steps between evals (0: only at the end)
    save_every: int = 0                 # optimizer steps between checkpoints (0: none)
    keep_checkpoints: int = 2
    log_every: int = 10
    mixed_precision: str = "no"         # "no" | "bf16" | "fp16"
    gradient_checkpointing: bool = False
    progress: bool = True


@dataclass
class ObjectiveSpec:
    """One objective: its name, its pairs, and optionally an adapter already trained on them.

    ``adapter`` (a folder holding adapter_model.safetensors) skips training that
    objective: the demo recipe trains the phase-1 adapters once and hands them
    to every method. ``neg_adapter`` is the same for Preference Vector's
    opposite-preference run.
    """
    name: str
    data: DataSpec | None = None
    higher_is_better: bool = True
    adapter: str | None = None
    neg_adapter: str | None = None


@dataclass
class MethodConfig:
    """Fields every method shares. Methods subclass this with their own knobs."""
    name: str = "family"
    base_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    revision: str | None = None
    dtype: str = "float32"
    trust_remote_code: bool = False
    allow_pickle: bool | None = None    # a base with only pickle weights; None: PARETOAPP_ALLOW_PICKLE decides
    output_dir: str = "runs/family"
    adapters_dir: str | None = None     # where per-objective runs live (default: output_dir/adapters)
    family_dir: str | None = None       # where the family is written (default: output_dir/family)
    overwrite: bool = False
    objectives: list[ObjectiveSpec] = field(default_factory=list)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    system_prompt: str | None = None

    @property
    def prompt_format(self) -> str:
        """How the training data formatted prompts; the family records it so generation matches.

        "chat" when every objective's data goes through the chat template, else "raw".
        """
        specs = [o.data for o in self.objectives if o.data is not None]
        return "chat" if all(d.chat for d in specs) else "raw"

    @property
    def adapters_path(self) -> Path:
        return Path(self.adapters_dir or Path(self.output_dir) / "adapters")

    @property
    def family_path(self) -> Path:
        return Path(self.family_dir or Path(self.output_dir) / "family")

    def check(self) -> None:
        if not self.objectives:
            raise ConfigError("the config lists no objectives; add 'objectives:' with a name and data for each")
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ConfigError(f"objective names must be unique, got {names}")
        for o in self.objectives:
            if o.data is None and o.adapter is None:
                raise ConfigError(f"objective {o.name!r} has neither data nor a trained adapter")
            for key in ("adapter", "neg_adapter"):  # a given adapter is checked now, not after the run starts
                if getattr(o, key):
                    check_adapter_folder(getattr(o, key), f"objective {o.name!r} {key}")
            if o.data is not None and o.data.objective is None:
                o.data.objective = o.name


# --------------------------------------------------------------------------- dict <-> dataclass
def _convert(tp, value, where: str):
    """``value`` (from YAML or a --set override) as the field type ``tp`` asks, or a ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(tp, value, where)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        return [_convert(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        return _convert_bool(value, where)
    if tp in (int, float):
        return _convert_number(tp, value, where)
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _convert_union(tp, value, where: str):
    """``X | None`` and other unions: None where allowed, else the first option that takes the value."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    for i, a in enumerate(options):
        try:
            return _convert(a, value, where)
        except (ConfigError, TypeError, ValueError):
            if i == len(options) - 1:
                raise
    return value


def _convert_dataclass(tp, value, where: str):
    if isinstance(value, tp):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
    return from_dict(tp, value, where)


def _convert_bool(value, where: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    return value


def _convert_number(tp, value, where: str):
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        out = tp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    if tp is int and isinstance(value, float) and value != out:
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return out
    return value


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass ``cls`` from a (YAML) mapping, checking every key and type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; {cls.__name__} takes {sorted(known)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def _set_dotted(data: dict, dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a mapping")
    node[keys[-1]] = _yaml(raw, f"--set {dotted}")  # "1e-5" -> float, "true" -> bool, "[a, b]" -> list


def _yaml(text: str, where: str):
    """YAML text as data, or one line naming the place of the syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: not valid YAML ({problem}{at}); check the syntax there (indentation, "
                          "quotes, a ':' after every key)") from None


def merge_config(base: dict, over: dict) -> dict:
    """``over`` merged into ``base``: a mapping key by key, anything else (a list included) replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge_config(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def read_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML run config as a mapping. ``extends: other.yaml`` (relative to this file) reads that file first and
    merges this one over it (:func:`merge_config`), so recipes that differ in a few keys share one base."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = _yaml(p.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must name a config file, got {parent!r}")
    base = (p.parent / parent).resolve()
    if base in _seen:
        raise ConfigError(f"{path}: 'extends: {parent}' comes back to a file already read; break the cycle")
    return merge_config(read_config(base, (*_seen, p.resolve())), data)


def load_config(cls, path: str | None = None, overrides: list[str] = (), values: dict | None = None) -> Any:
    """The config in ``path`` (see :func:`read_config`), then ``values`` merged over it (what a caller fills in:
    the demo's paths), then each ``--set key=value``; checked against ``cls``."""
    data = read_config(path) if path else {}
    data = merge_config(data, values or {})
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.learning_rate=1e-5")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), raw)
    cfg = from_dict(cls, data, where=path or "config")
    cfg.check()
    return cfg


def save_config(cfg, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(json.loads(json.dumps(to_dict(cfg))), sort_keys=False))

