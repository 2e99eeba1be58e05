"""Old entry points, kept so ``python -m trainers.<method> --config ...`` still works from a checkout.

The trainers live in ``paretoapp/trainers/``; use ``paretoapp train METHOD --config ...``.
"""
