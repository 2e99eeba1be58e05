"""Shared set-up for the app's tests: a tiny family with results, a launched app, a browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def tiny_family_dir(tmp_root: Path) -> Path:
    """The app's fallback family (tiny random Llama + results), built once per test session root."""
    from paretoapp.ui.fallback import fallback_family_dir
    return fallback_family_dir(tmp_root / "fallback")


def second_family(src: Path, dst: Path) -> Path:
    """A copy of a family under another name (to test overlays and switching)."""
    import json
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "family.json").read_text())
    manifest["name"] = "tiny-random-copy"
    (dst / "family.json").write_text(json.dumps(manifest, indent=2))
    return dst


def launch(catalog):
    from paretoapp.ui import build_app, launch_kwargs
    demo = build_app(catalog)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **launch_kwargs())
    return demo


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    """A running app on two tiny families; yields (demo, url, catalog, export_dir)."""
    from paretoapp.ui import Catalog

    root = tmp_path_factory.mktemp("ui")
    fam = tiny_family_dir(root)
    copy = second_family(fam, root / "copy")
    export_dir = root / "exports"
    old = os.environ.get("PARETOAPP_EXPORT_DIR")
    os.environ["PARETOAPP_EXPORT_DIR"] = str(export_dir)
    catalog = Catalog()
    catalog.add(fam, note="tiny random model (tests)")
    catalog.add(copy)
    catalog.get(catalog.keys[0]).policy()
    demo = launch(catalog)
    try:
        yield demo, demo.local_url, catalog, export_dir
    finally:
        demo.close()
        if old is None:
            os.environ.pop("PARETOAPP_EXPORT_DIR", None)
        else:
            os.environ["PARETOAPP_EXPORT_DIR"] = old
