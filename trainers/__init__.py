"""The checkout's entry points: ``python -m trainers.<method>`` and ``python -m trainers.demo``.

Each module runs ``paretoapp train <method>`` / ``paretoapp demo`` (see trainers/README.md); the code
lives in ``paretoapp/trainers/`` and ``paretoapp/demo/``.
"""
