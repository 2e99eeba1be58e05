"""Which families the app can show: discovered under ``assets/``, given on the command line, or added later.

A family folder is any folder with ``family.json``. Its evaluation results are
looked up next to it, in the folder layout ``paretoapp evaluate``
writes (``rows.parquet``, ``means.csv``, ``meta.json``):

    <family>/results/                   one results folder, or
    <family>/results/<run>/             several (the newest is shown), or
    <parent>/results/<family name>/     the CLI's default ``--out``

Models are loaded lazily (``load_policy`` shares them per process), so listing
many families costs only their manifests. A family is checked in full when it is
added (``family_check.check_family_base``: its base is here, safetensors only, with
a tokenizer, and the bank fits it), so "Added" means it can answer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from ..evaluate import EvalResult, EvaluationError, load_results
from ..family import MANIFEST_FILE, Family, FamilyError, FamilyManifest
from ..generate import PENALTY_NONE
from ..methods import method_names

log = logging.getLogger(__name__)


@dataclass
class FamilyEntry:
    key: str                      # unique label shown in the picker
    path: Path
    manifest: FamilyManifest
    results: EvalResult | None = None
    note: str = ""                # a banner, e.g. for the fallback family
    device: str = "cpu"
    allow_pickle: bool | None = None  # a base with only pickle weights (--allow-pickle); None: the environment's
    wrap_policy: Callable | None = None  # (policy, key) -> the policy the app answers with (--backend vllm)

    @property
    def k(self) -> int:
        return self.manifest.k

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.manifest.objectives]

    @property
    def measured_penalties(self) -> dict[str, float]:
        """The decoding penalties the family's front was measured with (its results' generation settings; a
        penalty left out there was off), so the chat can answer as the card says. Empty without results."""
        settings = (self.results.meta.get("settings") or {}) if self.results is not None else {}
        return {k: float(settings[k]) for k in PENALTY_NONE if k in settings}

    _scorers: list | None = field(default=None, init=False, repr=False)
    _scorer_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    _policy: object = field(default=None, init=False, repr=False)

    def policy(self):
        """The family on its base model, loaded once (``load_policy`` would re-read and re-hash the bank each call)."""
        if self._policy is None:
            from ..generate import load_policy
            policy = load_policy(self.path, device=self.device, allow_pickle=self.allow_pickle)
            self._policy = self.wrap_policy(policy, self.key) if self.wrap_policy else policy
        return self._policy

    def live_scorers(self) -> list:
        """The scorers of the family's evaluation that can run here (offline ones; Hub reward models only
        with ``PARETOAPP_APP_REWARD_MODELS=1``), built once per family; [] if none."""
        with self._scorer_lock:
            if self._scorers is None:
                self._scorers = self._build_live_scorers()
            return self._scorers

    def _build_live_scorers(self) -> list:
        from ..scorers import PRESETS, REGISTRY, ScorerContext, build_scorer

        names = []
        if self.results is not None:
            names = self.results.meta.get("live_scorers") or [s["name"] for s in self.results.meta.get("scorers", [])]
        allow_hf = settings.APP_REWARD_MODELS.get()
        policy = self.policy()
        ctx = ScorerContext(causal_lm=policy.model, tokenizer=policy.tokenizer,
                            model_id=self.manifest.base_model.name_or_path, system_prompt=self.manifest.system_prompt,
                            device=str(policy.device), show_progress=False)
        scorers = []
        for name in names:
            if name in REGISTRY or (allow_hf and name in PRESETS):
                try:
                    scorers.append(build_scorer(name, ctx))
                except Exception as exc:  # a scorer that cannot load here is skipped, not fatal
                    log.warning("scorer %s unavailable in the app: %s", name, exc)
        return scorers


def find_results(family_dir: Path, name: str) -> Path | None:
    """The results folder for a family, following the conventions in the module docstring."""
    candidates = []
    for root in (family_dir / "results", family_dir.parent / "results" / name):
        if (root / "meta.json").is_file():
            candidates.append(root)
        elif root.is_dir():
            candidates += [p for p in root.iterdir() if (p / "meta.json").is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p / "meta.json").stat().st_mtime)


def load_entry(path: str | Path, key: str | None = None, note: str = "", device: str = "cpu",
               allow_pickle: bool | None = None) -> FamilyEntry:
    """Read a family's manifest and tensors (checked in full, with its base) and its results, if any."""
    from ..family_check import check_family_base

    path = Path(path).expanduser().resolve()
    family = Family.load(path)  # validates manifest and tensors, with errors naming the fix
    check_family_base(family, allow_pickle)
    results = None
    rdir = find_results(path, family.manifest.name)
    if rdir is not None:
        try:
            results = load_results(rdir)
        except (EvaluationError, OSError, ValueError) as exc:
            log.warning("ignoring unreadable results %s: %s", rdir, exc)
    return FamilyEntry(key or family.manifest.name, path, family.manifest, results, note, device, allow_pickle)


def discover(root: str | Path) -> list[Path]:
    """Family folders directly under ``root`` (or ``root`` itself), in the registry's method order
    (so the app opens on the simplest method, Rewarded Soups, when it is there), then by name."""
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    order = {name: i for i, name in enumerate(method_names())}

    def rank(path: Path) -> tuple:
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            return (len(order), 1, path.name)
        objectives = len(manifest.get("objectives") or [])
        return (objectives != 2, order.get(manifest.get("method"), len(order)), path.name)

    return sorted((p for p in root.iterdir() if (p / MANIFEST_FILE).is_file()), key=rank)


@dataclass
class Catalog:
    """The families of this app process, in picker order. Shared by all sessions (read-mostly)."""

    entries: dict[str, FamilyEntry] = field(default_factory=dict)
    allow_pickle: bool | None = None  # for every family added (--allow-pickle); None: PARETOAPP_ALLOW_PICKLE decides
    wrap_policy: Callable | None = None  # every family answers through it (paretoapp app --backend vllm)
    root: Path | None = None  # the folder it lists families from (--assets): where visitors may add more
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def family_root(self) -> Path | None:
        """Where a visitor may add family folders from: ``PARETOAPP_FAMILY_ROOT``, else ``root``."""
        root = settings.FAMILY_ROOT.get() or self.root
        return Path(root).expanduser().resolve() if root else None

    def add_visitors(self, text: str, device: str = "cpu") -> FamilyEntry:
        """A visitor's "Add a family folder": a folder inside ``family_root`` (its name there, or a full path
        inside it) or a Hub family. A path outside the root is refused with the same words whether it exists or
        not, so the refusal says nothing about the server's other folders."""
        from ..hub import download_family, has_hub_form

        text = (text or "").strip()
        root = self.family_root()
        if root is None:
            raise FamilyError("adding family folders is off: this app lists no families folder; set "
                              "PARETOAPP_FAMILY_ROOT to the folder visitors may add families from")
        if not text:
            raise FamilyError("give the name of a family folder inside the app's families folder, or a Hub family "
                              "owner/repo")
        folder = (root / Path(text).expanduser()).resolve()  # an absolute path replaces the root here
        if not folder.is_relative_to(root):
            raise FamilyError("this app adds families only from its own families folder; give the name of a folder "
                              "inside it (PARETOAPP_FAMILY_ROOT sets which folder), or a Hub family owner/repo")
        if not folder.exists() and not Path(text).is_absolute() and has_hub_form(text):
            return self.add(download_family(text), device=device)
        return self.add(folder, device=device)

    def add(self, path: str | Path, note: str = "", device: str = "cpu") -> FamilyEntry:
        """Add a family folder, or a Hub family ``owner/repo[/subfolder][@revision]`` (downloaded once)."""
        from ..hub import download_family, is_hub_spec

        if isinstance(path, str) and is_hub_spec(path):
            path = download_family(path)
        resolved = Path(path).expanduser().resolve()
        with self._lock:
            for e in self.entries.values():
                if e.path == resolved:
                    return e
        entry = load_entry(resolved, note=note, device=device, allow_pickle=self.allow_pickle)
        with self._lock:
            key, n = entry.key, 2
            while key in self.entries:
                key, n = f"{entry.key} ({n})", n + 1
            entry.key = key
            entry.wrap_policy = self.wrap_policy
            self.entries[key] = entry
        return entry

    def get(self, key: str) -> FamilyEntry:
        try:
            return self.entries[key]
        except KeyError:
            raise FamilyError(f"no family named {key!r} is loaded; pick one of {', '.join(self.entries)}") from None

    @property
    def keys(self) -> list[str]:
        return list(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def build_catalog(family_paths: list[str] | None = None, assets: str | Path | None = "assets",
                  device: str = "cpu", allow_fallback: bool = True, allow_pickle: bool | None = None,
                  wrap_policy: Callable | None = None) -> Catalog:
    """Command-line families first, then everything under ``assets``; the tiny fallback if nothing is found.

    ``wrap_policy(policy, key)``: what each family answers with instead of its local policy (the vLLM gateway).
    """
    cat = Catalog(allow_pickle=allow_pickle, wrap_policy=wrap_policy, root=Path(assets) if assets is not None else None)
    for p in family_paths or []:
        cat.add(p, device=device)  # a bad --family is the user's error: let it raise
    if assets is not None:
        for p in discover(assets):
            try:
                cat.add(p, device=device)
            except FamilyError as exc:
                log.warning("skipping %s: %s", p, exc)
    if not len(cat) and allow_fallback:
        from ..demo.fallback import FALLBACK_NOTE, fallback_family_dir
        cat.add(fallback_family_dir(), note=FALLBACK_NOTE, device=device)
    return cat
