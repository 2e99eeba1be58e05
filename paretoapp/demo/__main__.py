"""``python -m paretoapp.demo``: the same as ``paretoapp demo``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(0 if main() else 1)
