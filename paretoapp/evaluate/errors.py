"""The evaluator's error type."""


class EvaluationError(ValueError):
    """Bad evaluation input (prompts, grid, results folder), with what to do about it."""
