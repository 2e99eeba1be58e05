"""Evaluation: a family on disk -> a front with its hypervolume, as a results table.

One module per job: ``grids`` (which w), ``prompts`` (which prompts),
``front`` (generate and score every (w, prompt), cached), ``results`` (the
table, its statistics and the folder it is saved in). The text checks that
need no reward model (``is_collapsed``) live with the scorers and are
re-exported here. The names below are the public API.
"""

from ..errors import EvaluationError
from ..scorers import is_collapsed
from .front import evaluate_family, generate_front
from .grids import parse_grid, ric_grid_k3, simplex_grid, sweep_grid
from .prompts import load_prompts
from .results import (
                      EvalResult,
                      assemble_result,
                      compare_results,
                      front_metrics,
                      hypervolume_interval,
                      load_results,
                      per_w_means,
                      training_time_text,
                      worst_degenerate_rate,
)

__all__ = [
    "EvalResult", "EvaluationError", "assemble_result", "compare_results", "evaluate_family", "front_metrics",
    "generate_front", "hypervolume_interval", "is_collapsed", "load_prompts", "load_results", "parse_grid", "per_w_means", "ric_grid_k3",
    "simplex_grid", "sweep_grid", "training_time_text", "worst_degenerate_rate",
]
