"""``python -m paretoapp ...``: the same as the ``paretoapp`` command (see cli/)."""

from .cli import main

raise SystemExit(main())
