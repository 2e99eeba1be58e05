"""`python -m paretoapp ...`: see cli.py."""

from .cli import main

raise SystemExit(main())
