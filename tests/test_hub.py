"""Hub families (``owner/repo[/subfolder][@revision]``): what is downloaded, and the errors."""

from __future__ import annotations

import shutil

import pytest

from paretoapp.family import FamilyError
from paretoapp.hub import download_family, is_hub_spec


def test_specs_that_name_a_hub_family(tmp_path):
    assert is_hub_spec("me/my-family") and is_hub_spec("me/families/rs@v1") and is_hub_spec("me/x@main")
    assert not is_hub_spec(str(tmp_path))          # an existing folder stays a folder
    assert not is_hub_spec("just-a-name") and not is_hub_spec("/abs/path") and not is_hub_spec("me/x@")


def test_download_fetches_only_family_files_from_the_subfolder(tmp_path, monkeypatch):
    from ui_support import tiny_family_dir

    src = tiny_family_dir(tmp_path)
    calls = {}

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, token=None):
        calls.update(repo_id=repo_id, revision=revision, patterns=allow_patterns)
        root = tmp_path / "hub-cache"
        shutil.copytree(src, root / "families" / "rs", dirs_exist_ok=True)
        return str(root)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    folder = download_family("me/repo/families/rs@v2")
    assert folder == tmp_path / "hub-cache" / "families" / "rs"
    assert calls == {"repo_id": "me/repo", "revision": "v2",
                     "patterns": ["families/rs/family.json", "families/rs/bank.safetensors", "families/rs/results/**"]}

    from paretoapp.ui.catalog import Catalog
    entry = Catalog().add("me/repo/families/rs@v2")
    assert entry.path == folder.resolve() and entry.results is not None


def test_offline_or_unknown_repo_is_one_line_that_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FamilyError) as err:
        download_family("nobody-here/no-such-family")
    msg = str(err.value)
    assert "\n" not in msg and "nobody-here/no-such-family" in msg and "local family folder" in msg


def test_a_repo_without_a_manifest_says_to_name_the_subfolder(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: str(tmp_path))
    with pytest.raises(FamilyError, match="holds no family.json; name the subfolder"):
        download_family("me/repo")
