"""A policy family on disk: a versioned JSON manifest plus the bank tensors.

Layout of a family folder::

    family.json          the manifest (this module's ``FamilyManifest``)
    bank.safetensors     per adapted module: ``{module}.lora_A`` [R, in] and
                         ``{module}.lora_B`` [out, R], LoRA scaling folded into B

Every trainer writes this, the evaluator and the app read it. Loading checks
everything it can before a model is touched and names the file and the fix in
its errors. Saving writes a temporary folder and renames it into place, so a
crash never leaves a half-written family. Nothing is ever unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_folder
from .conditioning import Conditioning
from .errors import FamilyError
from .gates import Gate, check_preferences
from .methods import UnknownMethodError, get_method

FORMAT = "paretoapp.family"
MANIFEST_VERSION = 1
MANIFEST_FILE = "family.json"
TENSORS_FILE = "bank.safetensors"
PROMPT_FORMATS = ("chat", "raw")


@dataclass
class Objective:
    name: str
    higher_is_better: bool = True
    description: str = ""


@dataclass
class Block:
    """A run of ranks on the stacked rank axis, e.g. one LoRA adapter."""
    name: str
    rank: int


@dataclass
class BaseModelRef:
    """Which base the bank was trained on; checked when the bank is attached."""
    name_or_path: str
    revision: str | None = None
    # model_type, hidden_size, num_hidden_layers, vocab_size: enough to tell two bases apart
    signature: dict = field(default_factory=dict)
    tokenizer: str | None = None  # defaults to name_or_path

    @classmethod
    def of(cls, model: Any, name_or_path: str, revision: str | None = None) -> BaseModelRef:
        """The reference to ``model`` (loaded from ``name_or_path``), with its signature."""
        return cls(name_or_path=name_or_path, revision=revision, signature=model_signature(model.config))


@dataclass
class FamilyManifest:
    name: str
    method: str
    base_model: BaseModelRef
    objectives: list[Objective]
    blocks: list[Block]
    gate: Gate
    w_low: list[float] | None = None        # allowed range per objective (None: any real value)
    w_high: list[float] | None = None
    in_sample_low: list[float] | None = None  # the range the method was trained on
    in_sample_high: list[float] | None = None
    on_simplex: bool = True                 # whether the UI should normalise w to sum 1
    conditioning: Conditioning | None = None
    system_prompt: str | None = None
    # how prompts were formatted in training, so generation formats them the same way:
    # "chat": the tokenizer's chat template (a Human/Assistant wrapper if it has none);
    # "raw": the prompt text verbatim (e.g. HH-RLHF transcripts that carry their own turns)
    prompt_format: str = "chat"
    description: str = ""
    training: dict = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    @property
    def k(self) -> int:
        return len(self.objectives)

    @property
    def total_rank(self) -> int:
        return sum(b.rank for b in self.blocks)

    def check_w(self, w) -> torch.Tensor:
        """Validate preferences against this family: [batch, k] float64."""
        return check_preferences(w, self.k, self.w_low, self.w_high)

    def is_in_sample(self, w) -> bool:
        if self.in_sample_low is None or self.in_sample_high is None:
            return True
        return all(lo - 1e-9 <= v <= hi + 1e-9 for v, lo, hi in zip(w, self.in_sample_low, self.in_sample_high))

    def rank_gains(self, w) -> torch.Tensor:
        """Preferences -> per-rank gains [batch, R] (each block's gain repeated over its rank)."""
        block = self.gate.block_gains(self.check_w(w))
        ranks = tuple(b.rank for b in self.blocks)
        return block[:, _rank_to_block(ranks)]

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict:
        d = {
            "format": FORMAT, "version": self.version, "name": self.name, "method": self.method,
            "description": self.description,
            "base_model": asdict(self.base_model),
            "objectives": [asdict(o) for o in self.objectives],
            "blocks": [asdict(b) for b in self.blocks],
            "gate": self.gate.to_dict(),
            "w_low": self.w_low, "w_high": self.w_high,
            "in_sample_low": self.in_sample_low, "in_sample_high": self.in_sample_high,
            "on_simplex": self.on_simplex,
            "conditioning": self.conditioning.to_dict() if self.conditioning else None,
            "system_prompt": self.system_prompt,
            "prompt_format": self.prompt_format,
            "training": self.training,
        }
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = MANIFEST_FILE) -> FamilyManifest:
        if d.get("format") != FORMAT:
            raise FamilyError(f"{where}: not a paretoapp family manifest (format is {d.get('format')!r}, expected {FORMAT!r})")
        version = d.get("version")
        if version != MANIFEST_VERSION:
            raise FamilyError(
                f"{where}: manifest version {version!r} is not supported by this paretoapp "
                f"(it reads version {MANIFEST_VERSION}); upgrade paretoapp or re-export the family")
        method = d.get("method")
        try:
            get_method(method)
        except UnknownMethodError as exc:
            raise FamilyError(f"{where}: {exc} (a method from a plugin must be registered with "
                              "paretoapp.methods.register before its families load)") from None
        try:
            m = cls(
                name=d["name"], method=method, description=d.get("description", ""),
                base_model=BaseModelRef(**d["base_model"]),
                objectives=[Objective(**o) for o in d["objectives"]],
                blocks=[Block(**b) for b in d["blocks"]],
                gate=Gate.from_dict(d["gate"]),
                w_low=d.get("w_low"), w_high=d.get("w_high"),
                in_sample_low=d.get("in_sample_low"), in_sample_high=d.get("in_sample_high"),
                on_simplex=d.get("on_simplex", True),
                conditioning=Conditioning.from_dict(d["conditioning"]) if d.get("conditioning") else None,
                system_prompt=d.get("system_prompt"),
                prompt_format=d.get("prompt_format", "chat"),
                training=d.get("training", {}),
            )
        except KeyError as exc:
            raise FamilyError(f"{where}: missing field {exc}; the manifest is incomplete, re-save the family") from None
        except (TypeError, ValueError) as exc:
            raise FamilyError(f"{where}: invalid field: {exc}") from None
        m.validate(where)
        return m

    def validate(self, where: str = MANIFEST_FILE) -> None:
        if not self.objectives:
            raise FamilyError(f"{where}: a family needs at least one objective")
        if self.prompt_format not in PROMPT_FORMATS:
            raise FamilyError(f"{where}: prompt_format {self.prompt_format!r} is not one of {PROMPT_FORMATS}")
        if self.gate.k != self.k:
            raise FamilyError(f"{where}: the gate takes {self.gate.k} preference values but there are {self.k} objectives")
        if self.gate.n_blocks != len(self.blocks):
            raise FamilyError(f"{where}: the gate drives {self.gate.n_blocks} blocks but {len(self.blocks)} are listed")
        if any(b.rank <= 0 for b in self.blocks):
            raise FamilyError(f"{where}: every block needs a positive rank")
        for lo, hi, label in ((self.w_low, self.w_high, "w"), (self.in_sample_low, self.in_sample_high, "in_sample")):
            if (lo is None) != (hi is None) or (lo is not None and (len(lo) != self.k or len(hi) != self.k)):
                raise FamilyError(f"{where}: {label}_low/{label}_high must both be given with one value per objective")
            for i, (a, b) in enumerate(zip(lo or [], hi or [])):
                if not a <= b:  # also NaN
                    raise FamilyError(f"{where}: {label}_low[{i}] = {a} is above {label}_high[{i}] = {b}, so no w "
                                      f"fits; give each objective's low end first (swap the two)")
        if self.conditioning and len(self.conditioning.tags) != self.k:
            raise FamilyError(f"{where}: conditioning has {len(self.conditioning.tags)} tags for {self.k} objectives")


@dataclass
class Family:
    manifest: FamilyManifest
    tensors: dict[str, torch.Tensor]
    path: Path | None = None

    @property
    def modules(self) -> list[str]:
        """Adapted module names, in a stable order."""
        return sorted(n[: -len(".lora_A")] for n in self.tensors if n.endswith(".lora_A"))

    def fingerprint(self) -> str:
        """A hash of the manifest and tensors: results computed on it are cached by it."""
        h = hashlib.sha256(json.dumps(self.manifest.to_dict(), sort_keys=True).encode())
        for name in sorted(self.tensors):
            t = self.tensors[name].detach().to("cpu").contiguous()
            h.update(name.encode())
            h.update(t.to(torch.float32).numpy().tobytes())
        return h.hexdigest()[:16]

    def validate_tensors(self, where: str = TENSORS_FILE) -> None:
        """Every module has A [R, in] and B [out, R] with R the manifest's total rank."""
        rank = self.manifest.total_rank
        names = set(self.tensors)
        if not names:
            if self.manifest.conditioning is None:
                raise FamilyError(f"{where}: holds no tensors and the family has no conditioning: nothing to serve")
            return
        for n in names:
            if not (n.endswith(".lora_A") or n.endswith(".lora_B")):
                raise FamilyError(f"{where}: unexpected tensor {n!r}; only '<module>.lora_A' and '<module>.lora_B' belong here")
        for mod in self.modules:
            a, b = self.tensors.get(f"{mod}.lora_A"), self.tensors.get(f"{mod}.lora_B")
            if b is None:
                raise FamilyError(f"{where}: {mod}.lora_A has no matching {mod}.lora_B; the file is incomplete, re-save the family")
            if a.dim() != 2 or b.dim() != 2 or a.shape[0] != rank or b.shape[1] != rank:
                raise FamilyError(
                    f"{where}: {mod} has A {tuple(a.shape)} and B {tuple(b.shape)} but the manifest's blocks add up "
                    f"to rank {rank}; the manifest and tensors do not belong together")
            for part, t in (("lora_A", a), ("lora_B", b)):
                if not t.is_floating_point():
                    raise FamilyError(f"{where}: {mod}.{part} holds {str(t.dtype).removeprefix('torch.')} numbers; "
                                      "a bank holds float weights (float32, bfloat16 or float16): save the family "
                                      "from the trained float tensors")
            if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
                raise FamilyError(f"{where}: {mod} holds NaN or infinite values; the family is corrupt, retrain or re-export it")
        orphans = [n for n in names if n.endswith(".lora_B") and n[: -len(".lora_B")] not in self.modules]
        if orphans:
            raise FamilyError(f"{where}: {orphans[0]} has no matching lora_A; the file is incomplete, re-save the family")

    # ------------------------------------------------------------------- disk
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write atomically: a temp folder next to ``path``, renamed into place."""
        path = Path(path)
        self.manifest.validate()
        self.validate_tensors()
        if path.exists() and not overwrite:
            raise FamilyError(f"{path} already exists; pass overwrite=True or choose another folder")
        with atomic_folder(path) as tmp:
            tensors = {n: t.detach().to("cpu").contiguous() for n, t in self.tensors.items()}
            save_file(tensors, str(tmp / TENSORS_FILE), metadata={"format": FORMAT})
            (tmp / MANIFEST_FILE).write_text(json.dumps(self.manifest.to_dict(), indent=2))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Family:
        path = Path(path)
        if not path.is_dir():
            raise FamilyError(f"{path}: no such family folder; pass a folder that holds {MANIFEST_FILE} and {TENSORS_FILE}")
        mfile = path / MANIFEST_FILE
        if not mfile.is_file():
            raise FamilyError(f"{mfile}: missing; this folder is not a family (or a save was interrupted): re-save it")
        try:
            raw = json.loads(mfile.read_text())
        except json.JSONDecodeError as exc:
            raise FamilyError(f"{mfile}: not valid JSON ({exc}); the file is corrupt, re-save the family") from None
        manifest = FamilyManifest.from_dict(raw, where=str(mfile))
        tfile = path / TENSORS_FILE
        if not tfile.is_file():
            raise FamilyError(f"{tfile}: missing; the family has a manifest but no bank tensors: re-save it")
        try:
            tensors = load_file(str(tfile))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise FamilyError(f"{tfile}: unreadable safetensors file ({exc}); it is corrupt or half-written, re-save the family") from None
        family = cls(manifest=manifest, tensors=tensors, path=path)
        family.validate_tensors(where=str(tfile))
        return family


@functools.lru_cache(maxsize=64)
def _rank_to_block(ranks: tuple[int, ...]) -> torch.Tensor:
    """Index of the block each rank belongs to (cached: the slider path needs it per request)."""
    return torch.repeat_interleave(torch.arange(len(ranks)), torch.tensor(ranks))


def make_family(name: str, method: str, base_model: BaseModelRef, objectives: list[Objective | str],
                tensors: dict[str, torch.Tensor], blocks: list[Block], gate: Gate, **fields: Any) -> Family:
    """The one way a family is assembled: trainers, the app's fallback and the benchmarks all call it.

    ``fields`` are the other ``FamilyManifest`` fields (ranges, description,
    training record, ...). The manifest and tensors are checked here, so a bad
    family fails where it is made, not where it is served.
    """
    try:
        get_method(method)
    except UnknownMethodError as exc:
        raise FamilyError(str(exc)) from None
    manifest = FamilyManifest(name=name, method=method, base_model=base_model,
                              objectives=[o if isinstance(o, Objective) else Objective(o) for o in objectives],
                              blocks=list(blocks), gate=gate, **fields)
    manifest.validate(where=f"family {name!r}")
    family = Family(manifest, tensors)
    family.validate_tensors(where=f"family {name!r}")
    return family


def load_family(path_or_family: str | os.PathLike | Family) -> Family:
    return path_or_family if isinstance(path_or_family, Family) else Family.load(path_or_family)


def model_signature(config: Any) -> dict:
    """The few config numbers that tell two base architectures apart."""
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "n_embd", "n_layer")
    return {k: getattr(config, k) for k in keys if getattr(config, k, None) is not None}
