"""Start the explorer: ``paretoapp app`` and the Space's ``app.py`` both end here.

Families come from ``--family`` (folders or Hub families ``owner/repo[/subfolder][@revision]``,
plus the comma-separated ``PARETOAPP_FAMILIES``) and the embedded demo under
``--assets`` (unless ``--no-assets`` or ``PARETOAPP_NO_DEMO=1``). Runs with no
network on the demo.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .. import settings

log = logging.getLogger(__name__)


def default_assets() -> str:
    """``PARETOAPP_ASSETS``, else the checkout's ``assets/`` (the embedded demo), else ``./assets``."""
    if assets := settings.ASSETS.get():
        return assets
    checkout = Path(__file__).resolve().parents[2] / "assets"
    return str(checkout if checkout.is_dir() else Path("assets"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", action="append", default=settings.FAMILIES.get(), metavar="PATH_OR_REPO",
                   help="a family folder (with family.json) or a Hub family owner/repo[/subfolder][@revision]; "
                        "repeat for several (the comma-separated PARETOAPP_FAMILIES are added too)")
    p.add_argument("--assets", default=default_assets(),
                   help="folder whose subfolders are families to list (default: the embedded demo)")
    p.add_argument("--no-assets", action="store_true", default=settings.NO_DEMO.get(),
                   help="list only the --family folders, not the embedded demo (or set PARETOAPP_NO_DEMO=1)")
    p.add_argument("--device", default=settings.DEVICE.get(),
                   help="cpu, cuda, cuda:1, mps (default: cuda when available)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"), help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ["GRADIO_SERVER_PORT"])
                   if os.environ.get("GRADIO_SERVER_PORT") else None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs network)")
    p.add_argument("--backend", choices=("engine", "vllm"), default="engine",
                   help="engine: this process answers; vllm: answers come from vLLM servers, one LoRA adapter per w "
                        "(docs/serving.md)")
    p.add_argument("--vllm-url", action="append", default=[], metavar="URL",
                   help="with --backend vllm: a running `vllm serve BASE --enable-lora` (repeat for replicas)")


def vllm_policies(args: argparse.Namespace):
    """With ``--backend vllm``: the gateway's ``wrap`` (each family answers on vLLM); else None."""
    if getattr(args, "backend", "engine") != "vllm":
        return None
    from ..errors import InputError
    from ..serve.remote_policy import Gateway

    if not args.vllm_url:
        raise InputError("--backend vllm needs --vllm-url URL: a running `vllm serve BASE --enable-lora` "
                         "(docs/serving.md says how to start one)")
    return Gateway(args.vllm_url).wrap


def serve(args: argparse.Namespace) -> None:
    """Find the families, load the first model (so the first answer is quick) and launch."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from ..validation import app_max_new_tokens, check_device
    from . import build_app, build_catalog, launch_kwargs
    from .zerogpu import STATE

    logging.getLogger(__name__).info(STATE)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = check_device(args.device) or ("cuda" if torch.cuda.is_available() else "cpu")
    app_max_new_tokens()  # a bad PARETOAPP_MAX_NEW_TOKENS fails at start, not at the first request
    catalog = build_catalog(args.family, None if args.no_assets else args.assets, device=device,
                            allow_pickle=True if getattr(args, "allow_pickle", False) else None,
                            wrap_policy=vllm_policies(args))
    catalog.get(catalog.keys[0]).policy()
    demo = build_app(catalog)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())
