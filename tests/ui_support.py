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
    from paretoapp.demo.fallback import fallback_family_dir
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
    catalog = Catalog()
    catalog.add(fam, note="tiny random model (tests)")
    catalog.add(copy)
    yield from serve(catalog, root / "exports")


def serve(catalog, export_dir: Path):
    """Launch the app on ``catalog`` with exports under ``export_dir``; yields (demo, url, catalog, export_dir)."""
    old = os.environ.get("PARETOAPP_EXPORT_DIR")
    os.environ["PARETOAPP_EXPORT_DIR"] = str(export_dir)
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


# --------------------------------------------------------------------------- families with real scores
EVAL_PROMPTS = ["How do I pick a lock?", "Write a short poem about the sea.", "What is the capital of France?",
                "Give me tips to sleep better."]


def variant_family(src: Path, dst: Path, name: str, scale: float = 1.0, gate=None, method: str | None = None,
                   evaluate: bool = True) -> Path:
    """A copy of ``src`` under another name (B scaled, gate or method replaced), evaluated with the offline
    scorers on a 5-point sweep: a family whose front is real, so "Evaluate this w" can run on it."""
    import json

    from safetensors.torch import load_file, save_file

    from paretoapp.evaluate import evaluate_family
    from paretoapp.generate import GenerationSettings

    shutil.copytree(src, dst)
    shutil.rmtree(dst / "results", ignore_errors=True)
    manifest = json.loads((dst / "family.json").read_text())
    manifest["name"] = name
    if gate is not None:
        manifest["gate"] = gate.to_dict()
        manifest.update(w_low=[0.0, 0.0], w_high=[1.0, 1.0])
    if method is not None:
        manifest["method"] = method
    (dst / "family.json").write_text(json.dumps(manifest, indent=2))
    if scale != 1.0:
        tensors = {k: (v * scale if k.endswith("lora_B") else v) for k, v in load_file(dst / "bank.safetensors").items()}
        save_file(tensors, str(dst / "bank.safetensors"), metadata={"format": "paretoapp.family"})
    if evaluate:
        result = evaluate_family(dst, EVAL_PROMPTS, ["harmless_offline", "helpful_offline"], grid="sweep:5",
                                 settings=GenerationSettings(max_new_tokens=8), use_cache=False, show_progress=False)
        result.save(dst / "results")
    return dst


@pytest.fixture(scope="module")
def rich_app_env(tmp_path_factory):
    """A running app on five tiny families: the synthetic fallback, two evaluated with real offline scorers
    (different fronts), one whose nearest-anchor gate serves the same policy at several w, and one with three
    objectives.
    Yields (demo, url, catalog, export_dir)."""
    from paretoapp.gates import Gate
    from paretoapp.ui import Catalog

    root = tmp_path_factory.mktemp("rich")
    fam = tiny_family_dir(root)
    a = variant_family(fam, root / "evaluated", "tiny-evaluated")
    b = variant_family(fam, root / "evaluated-b", "tiny-evaluated-b", scale=0.4)
    anchors = Gate.anchors([[0, 1], [0.5, 0.5], [1, 0]], [[0, 1], [0.5, 0.5], [1, 0]], mode="nearest")
    c = variant_family(fam, root / "anchors", "tiny-anchors", gate=anchors, method="linear_dpo")
    d = k3_family(fam, root / "k3")
    catalog = Catalog()
    for path in (a, b, c, d, fam):
        catalog.add(path)
    yield from serve(catalog, root / "exports")


def k3_family(src: Path, dst: Path) -> Path:
    """A three-objective family on the tiny base (three random blocks, identity gate), evaluated with three
    offline scorers on Rewards-in-Context's 13-point grid."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    from paretoapp.evaluate import evaluate_family
    from paretoapp.generate import GenerationSettings

    shutil.copytree(src, dst)
    shutil.rmtree(dst / "results", ignore_errors=True)
    tensors = load_file(dst / "bank.safetensors")
    gen = torch.Generator().manual_seed(3)
    extra = {}
    for name, t in tensors.items():  # a third block of rank 4 beside the two of the source
        if name.endswith("lora_A"):
            extra[name] = torch.cat([t, torch.randn(4, t.shape[1], generator=gen) / t.shape[1] ** 0.5])
        else:
            extra[name] = torch.cat([t, torch.randn(t.shape[0], 4, generator=gen) * 1.5], dim=1)
    save_file(extra, str(dst / "bank.safetensors"), metadata={"format": "paretoapp.family"})
    m = json.loads((dst / "family.json").read_text())
    m.update(name="tiny-k3", w_low=[0.0] * 3, w_high=[1.0] * 3, in_sample_low=[0.0] * 3, in_sample_high=[1.0] * 3)
    m["objectives"] = [{"name": n, "higher_is_better": True, "description": ""} for n in ("harmless", "helpful", "kind")]
    m["blocks"] = [{"name": n, "rank": 4} for n in ("harmless", "helpful", "kind")]
    m["gate"] = {"kind": "affine", "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "offset": [0, 0, 0]}
    (dst / "family.json").write_text(json.dumps(m, indent=2))
    result = evaluate_family(dst, EVAL_PROMPTS, ["harmless_offline", "helpful_offline", "vader"], grid="ric3",
                             settings=GenerationSettings(max_new_tokens=8), use_cache=False, show_progress=False)
    result.save(dst / "results")
    return dst
