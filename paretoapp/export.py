"""Export one member of a family: merged weights, a LoRA adapter, a zip, the Hub.

The bank serves every w from one model; a user who picked a preference wants
a plain checkpoint that loads anywhere with ``AutoModelForCausalLM``. Export
materialises W0 + B diag(g(w)) A once (``PreferenceBank.merged_state_dict``),
writes it with safetensors into a temporary folder and renames that into
place, so an interrupted export never leaves a half-written folder. Names
that could escape the export folder are rejected.

``EXPORTERS`` is the one list of export targets: the CLI's ``--kind``, the
app's "What" choice and ``export_as`` all read it, so a new target is one
entry there.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_file, atomic_folder, check_writable
from .errors import ExportError, is_network_error, one_line

if TYPE_CHECKING:  # torch is imported where it is used: `paretoapp export --help` reads EXPORTERS, and stays instant
    import torch

    from .family import Family
    from .generate import Policy
    from .models import BaseSource

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def check_export_name(name: str) -> str:
    """A folder name that stays inside the export folder: letters, digits, . _ -"""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ExportError(
            f"export name {name!r} is not allowed: use 1-96 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit (no '/', '..' or absolute paths)")
    return name


def check_destination(parent: str | os.PathLike, name: str, overwrite: bool = False) -> Path:
    """``parent/name`` if an export can be written there: a safe name, not taken (unless overwriting), writable.

    Checked before anything is merged or written, so a bad destination costs nothing.
    """
    target = Path(parent).expanduser() / check_export_name(name)
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; choose another name or allow overwriting (--overwrite)")
    check_writable(target.parent)
    return target


def check_push_target(repo_id: str, token: str | None) -> str:
    """A Hub model repo id 'owner/name' and a token, checked before anything is exported or sent."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id


    repo_id = (repo_id or "").strip() if isinstance(repo_id, str) else repo_id
    if not repo_id or not isinstance(repo_id, str):
        raise ExportError("give a Hub repository id like 'your-name/model-name'")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ExportError(f"invalid Hub repo id {repo_id!r}: {one_line(exc)}; use 'user-or-org/model-name'") from None
    if "/" not in repo_id:
        raise ExportError(f"Hub repo id {repo_id!r} needs an owner: use 'user-or-org/model-name'")
    if not token:
        raise ExportError("pushing to the Hub needs a write token: log in, or paste a token with write access "
                          "(the CLI reads --token or the HF_TOKEN variable)")
    return repo_id


def check_hub_access(repo_id: str, token: str) -> None:
    """Ask the Hub, before anything is merged or written, whether it answers and this token may write to
    ``repo_id``'s owner: a push that cannot happen then costs a request, not a checkpoint on disk."""
    from huggingface_hub import HfApi

    try:
        me = HfApi(token=token).whoami()
    except Exception as exc:  # HTTP refusals (a bad token: 401) and network errors, from whichever client
        raise ExportError(f"push to {repo_id} cannot start: {_hub_failure(exc)}") from None
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise ExportError(f"push to {repo_id} cannot start: the token is read-only; paste a token with write access")
    owner, names = repo_id.split("/")[0], {me.get("name")} | {o.get("name") for o in me.get("orgs") or []}
    if owner not in names:
        raise ExportError(f"push to {repo_id} cannot start: the token's account ({me.get('name')}) is not {owner!r} "
                          f"nor one of its organisations; use a repo id under {me.get('name')}/")


def _hub_failure(exc: BaseException) -> str:
    """Why a Hub request failed and what to do, in words; re-raises what is not the Hub's refusal or the network."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"the Hub answered HTTP {status}: {one_line(exc)[:160]}; check the token's write access and the repo id"
    if is_network_error(exc):
        return f"cannot reach the Hub ({type(exc).__name__}: {one_line(exc)[:120]}); check your network and try again"
    raise exc


def _atomic_folder(parent: Path, name: str, write, overwrite: bool = False) -> Path:
    """Run ``write(tmp_folder)`` and rename the folder to ``parent/name`` when it succeeds."""
    target = check_destination(parent, name, overwrite)
    with atomic_folder(target) as tmp:
        write(tmp)
    return target


def _w_text(w: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in w) + ")"


def load_snippet(source: BaseSource, kind: str) -> list[str]:
    """The card's "Load it" section: the commands that make the base (when it is not on the Hub as is), then
    Python that loads the export; ``THIS_FOLDER`` is where the reader put it."""
    if kind != "lora":
        return ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                "model = AutoModelForCausalLM.from_pretrained('THIS_FOLDER')",
                "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')", "```"]
    out = []
    if source.setup:
        out += ["First make the base model this adapter was trained on (once; the second line needs paretoapp):",
                "", "```bash", *source.setup, "```", ""]
    rev = f", revision='{source.revision}'" if source.revision else ""
    return out + ["```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  f"base = AutoModelForCausalLM.from_pretrained('{source.load_from}'{rev})",
                  "model = PeftModel.from_pretrained(base, 'THIS_FOLDER')",
                  "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')", "```"]


def model_card(policy: Policy, w: Sequence[float], scores: dict[str, float] | None = None, kind: str = "merged") -> str:
    """README.md for the exported model: what it is, where it came from, how it scored, how to load it."""
    from .models import base_source

    m = policy.manifest
    source = base_source(m.base_model.name_or_path, m.base_model.revision)
    on_hub = source.load_from == m.base_model.name_or_path and not source.setup and "/" in source.load_from \
        and not os.path.isabs(source.load_from)
    objectives = ", ".join(f"{o.name} ({'higher' if o.higher_is_better else 'lower'} is better)" for o in m.objectives)
    lines = [
        "---",
        f"base_model: {m.base_model.name_or_path}" if on_hub else "# base model: see below",
        "library_name: " + ("peft" if kind == "lora" else "transformers"),
        "tags:", "- paretoapp", "- multi-objective-alignment", f"- {m.method.replace('_', '-')}",
        "---", "",
        f"# {m.name} at preference w = {_w_text(w)}", "",
        f"One member of the **{m.name}** policy family ({m.method.replace('_', ' ')}), exported by paretoapp"
        + (" as merged full weights." if kind == "merged" else " as one LoRA adapter equal to the weighted mix."), "",
        f"- base model: {source.description}",
        f"- method: `{m.method}`",
        f"- objectives: {objectives}",
        "- preference w: " + ", ".join(f"{o.name} = {float(v):g}" for o, v in zip(m.objectives, w)),
        f"- in the range the family was trained on: {'yes' if m.is_in_sample(w) else 'no (extrapolated)'}",
        f"- family fingerprint: `{policy.family.fingerprint()}`",
        f"- exported: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
    ]
    if m.description:
        lines += ["", m.description]
    if scores:
        lines += ["", "## Reward scores at this preference", "", "| objective | mean score |", "|---|---|"]
        lines += [f"| {k} | {float(v):.4f} |" for k, v in scores.items()]
    if m.conditioning is not None:
        cond = m.conditioning.apply("{your prompt}", list(w))
        lines += ["", "This family is prompt-conditioned: add the preference to every user message like this:",
                  "", f"    {cond}"]
    lines += ["", "## Load it", "", *load_snippet(source, kind), ""]
    return "\n".join(lines)


def _provenance(policy, w, scores, kind) -> str:
    return json.dumps({"family": policy.manifest.name, "method": policy.manifest.method,
                       "fingerprint": policy.family.fingerprint(), "w": [float(v) for v in w],
                       "objectives": [o.name for o in policy.manifest.objectives],
                       "scores": scores or {}, "kind": kind}, indent=2)


def export_dtype(policy: Policy, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype an export is written in: the one asked for, else the base's published dtype, else the model's."""
    from .models import published_dtype, resolve_dtype

    if dtype not in (None, "", "auto"):
        return resolve_dtype(dtype)
    ref = policy.manifest.base_model
    return published_dtype(ref.name_or_path, ref.revision) or next(policy.model.parameters()).dtype


def _cast(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}


def export_merged(policy: Policy, w: Sequence[float], parent: str | os.PathLike, name: str,
                  scores: dict[str, float] | None = None, overwrite: bool = False,
                  dtype: str | torch.dtype | None = None) -> Path:
    """A plain checkpoint folder (safetensors, tokenizer, model card) for preference w, in ``export_dtype``."""
    w = policy.manifest.check_w(w)[0].tolist()
    check_destination(parent, name, overwrite)
    dtype = export_dtype(policy, dtype)
    state = _cast(policy.bank.merged_state_dict(w), dtype)

    def write(tmp: Path):
        policy.model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        config = json.loads((tmp / "config.json").read_text())
        config["dtype"] = str(dtype).removeprefix("torch.")  # the weights' dtype, not the app's
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        policy.tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(policy, w, scores, "merged"))
        (tmp / "paretoapp_export.json").write_text(_provenance(policy, w, scores, "merged"))

    return _atomic_folder(Path(parent), name, write, overwrite)


def lora_adapter(family: Family, w: Sequence[float], dtype: torch.dtype | None = None, fan_in_fan_out: bool = False):
    """The mix at w as one PEFT LoRA: (tensors, LoraConfig). A stacked, B scaled by g(w), alpha = rank.

    B diag(g(w)) A is one low-rank update, so one adapter serves w exactly. Ranks
    whose gain is zero for this w are dropped, so the adapter's rank is at most
    the family's total rank. Made from the family's tensors alone (no model), so
    ``export_lora`` and the vLLM gateway (``paretoapp.serve.adapters``) share it.
    """
    import torch
    from peft import LoraConfig

    dtype = dtype or torch.float32
    manifest = family.manifest
    w = manifest.check_w(w)[0].tolist()
    g = manifest.rank_gains(w)[0]
    keep = (g != 0).nonzero().flatten()
    if len(keep) == 0:
        raise ExportError(f"every gain is zero at w = {_w_text(w)}: the adapter would be empty; export the merged model instead")
    tensors, targets = {}, set()
    for module in family.modules:
        a, b = family.tensors[f"{module}.lora_A"], family.tensors[f"{module}.lora_B"]
        gk = g[keep].to(torch.float64)
        tensors[f"base_model.model.{module}.lora_A.weight"] = a[keep].to(dtype).contiguous()
        tensors[f"base_model.model.{module}.lora_B.weight"] = (b[:, keep].to(torch.float64) * gk).to(dtype).contiguous()
        targets.add(module.rsplit(".", 1)[-1])
    rank = len(keep)
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=sorted(targets), lora_dropout=0.0,
                        fan_in_fan_out=fan_in_fan_out, base_model_name_or_path=manifest.base_model.name_or_path,
                        task_type="CAUSAL_LM")
    return tensors, config


def write_lora_weights(folder: Path, tensors: dict[str, torch.Tensor], config) -> None:
    """The two files a LoRA loader reads: adapter_config.json and adapter_model.safetensors."""
    from safetensors.torch import save_file

    config.save_pretrained(folder)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})


def export_lora(policy: Policy, w: Sequence[float], parent: str | os.PathLike, name: str,
                scores: dict[str, float] | None = None, overwrite: bool = False,
                dtype: str | torch.dtype | None = None) -> Path:
    """One PEFT LoRA adapter folder equal to the mix at w (``lora_adapter``), with tokenizer and model card."""
    from .bank import bank_layers

    w = policy.manifest.check_w(w)[0].tolist()
    check_destination(parent, name, overwrite)
    conv1d = any(layer.transposed for layer in bank_layers(policy.model).values())
    tensors, config = lora_adapter(policy.family, w, export_dtype(policy, dtype), fan_in_fan_out=conv1d)

    def write(tmp: Path):
        write_lora_weights(tmp, tensors, config)
        policy.tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(policy, w, scores, "lora"))
        (tmp / "paretoapp_export.json").write_text(_provenance(policy, w, scores, "lora"))

    return _atomic_folder(Path(parent), name, write, overwrite)


@dataclass(frozen=True)
class Exporter:
    """One export target: the function that writes it and what each door says about it."""

    write: Callable[..., Path]  # (policy, w, parent, name, scores=, overwrite=, dtype=) -> the folder written
    label: str        # the app's choice ("What")
    description: str  # the CLI's --kind help
    writes: str       # what the folder holds, said after an export ("merged weights (safetensors)")
    step: str         # the app's progress line while it writes
    hint: str = ""    # a line under the app's choice when the label alone does not say enough


EXPORTERS: dict[str, Exporter] = {
    "merged": Exporter(export_merged, "Merged checkpoint", "full weights W0 + B diag(g(w)) A, a plain checkpoint",
                       "merged weights (safetensors)", "merging W0 + B·diag(g(w))·A"),
    "lora": Exporter(export_lora, "LoRA adapter (a few MB)", "one LoRA adapter equal to the mix, on the base",
                     "one LoRA adapter (PEFT, safetensors) equal to the mix", "writing B·diag(g(w))·A as one adapter",
                     hint="LoRA: the exact mix at this w as one adapter on the base"),
}


def exporter(kind: str) -> Exporter:
    """The export target named ``kind``, or an ``ExportError`` that lists the known ones."""
    try:
        return EXPORTERS[kind]
    except (KeyError, TypeError):
        raise ExportError(f"unknown export kind {kind!r}; use one of: {', '.join(EXPORTERS)}") from None


def export_as(kind: str, policy: Policy, w: Sequence[float], parent: str | os.PathLike, name: str,
              scores: dict[str, float] | None = None, overwrite: bool = False,
              dtype: str | torch.dtype | None = None) -> Path:
    """Export ``policy`` at ``w`` as the target ``kind`` (a key of ``EXPORTERS``) into ``parent/name``."""
    return exporter(kind).write(policy, w, parent, name, scores=scores, overwrite=overwrite, dtype=dtype)


def zip_folder(folder: str | os.PathLike) -> Path:
    """``folder.zip`` beside the folder, written to a temp file and renamed."""
    folder = Path(folder)
    target = folder.parent / f"{folder.name}.zip"  # with_suffix would cut "w0.50" to "w0.zip"
    with atomic_file(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):  # weights do not compress: store them
            if path.is_file():
                zf.write(path, arcname=f"{folder.name}/{path.relative_to(folder)}")
    return target


def push_to_hub(folder: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Upload an exported folder to a Hub model repo; returns the repo URL. The token is never logged.

    The Hub's refusals and network failures become one ``ExportError`` line
    (``check_hub_access`` asks the same before an export is built).
    """
    from huggingface_hub import HfApi


    repo_id = check_push_target(repo_id, token)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload model exported by paretoapp")
    except Exception as exc:  # HTTP refusals (401, 403, 404 ...) and network errors, from whichever client
        raise ExportError(f"push to {repo_id} failed: {_hub_failure(exc)}") from None
    return str(url)
