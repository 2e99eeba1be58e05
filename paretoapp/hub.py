"""Families stored on the Hugging Face Hub: ``owner/repo[/subfolder][@revision]``.

A Space (or anyone with a network) serves its own families by naming them
instead of shipping them in the repository: the app downloads only the family
files (manifest, bank, evaluation results), never weights of another kind, so
nothing but JSON, safetensors and parquet reaches the machine.
"""

from __future__ import annotations

import re
from pathlib import Path

from .family import MANIFEST_FILE, TENSORS_FILE, FamilyError

_SPEC = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?P<sub>(?:/[\w.-]+)*)(?:@(?P<rev>[\w./-]+))?$")


def is_hub_spec(spec: str) -> bool:
    """A string that names a Hub family rather than a local folder."""
    return not Path(spec).expanduser().exists() and has_hub_form(spec)


def has_hub_form(spec: str) -> bool:
    """Whether ``spec`` is written like a Hub family (no look at the file system)."""
    return bool(_SPEC.match(spec.strip()))


def download_family(spec: str, token: str | None = None) -> Path:
    """Download one family (and its results) from the Hub; returns the local family folder."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise FamilyError(f"{spec!r} is neither a family folder nor a Hub family 'owner/repo[/subfolder][@revision]'")
    repo, sub, rev = m["repo"], m["sub"].strip("/"), m["rev"]
    prefix = f"{sub}/" if sub else ""
    patterns = [f"{prefix}{MANIFEST_FILE}", f"{prefix}{TENSORS_FILE}", f"{prefix}results/**"]
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(repo, revision=rev, allow_patterns=patterns, token=token)
    except Exception as exc:  # offline, unknown repo, no access: one line that says which
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FamilyError(f"cannot download the family {spec!r} from the Hub ({reason}); check the repo id, "
                          "your network and token, or pass a local family folder") from None
    folder = Path(local) / sub
    if not (folder / MANIFEST_FILE).is_file():
        raise FamilyError(f"the Hub repo {repo!r}{' folder ' + repr(sub) if sub else ''} holds no {MANIFEST_FILE}; "
                          "name the subfolder that holds the family, e.g. owner/repo/my-family")
    return folder
