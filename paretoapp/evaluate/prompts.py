"""Evaluation prompts from a local file or a Hub dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import EvaluationError


def load_prompts(source: str | os.PathLike, split: str = "test", column: str = "prompt",
                 limit: int | None = None, config: str | None = None) -> list[str]:
    """Prompts from a JSONL/JSON/CSV file with a ``column`` column, a .txt file (one per line), or a Hub dataset.

    A source that is not an existing file is read as a Hugging Face dataset id
    (``datasets.load_dataset(source, config, split=split)``), which needs a network.
    """
    path = Path(source)
    if path.is_file():
        try:
            prompts = _read_prompt_file(path, column)
        except UnicodeDecodeError as exc:
            raise EvaluationError(f"prompt file {path} is not UTF-8 text (byte {exc.start} is "
                                  f"{exc.object[exc.start]:#04x}); save it as UTF-8") from None
    elif str(source).endswith((".jsonl", ".json", ".csv", ".txt", ".parquet", ".tsv")):
        raise EvaluationError(f"prompt file {source} does not exist")
    else:
        prompts = _load_hub_prompts(str(source), split, column, config)
    prompts = [p for p in prompts if p.strip()]
    if limit is not None:
        prompts = prompts[:limit]
    if not prompts:
        raise EvaluationError(f"no prompts found in {source}")
    return prompts


def _read_prompt_file(path: Path, column: str) -> list[str]:
    """The prompts of a local file (raises UnicodeDecodeError for text that is not UTF-8)."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix in (".jsonl", ".ndjson"):
        df = pd.read_json(path, lines=True)
    elif suffix == ".json":
        df = pd.read_json(path)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise EvaluationError(f"prompt file {path} must be .jsonl, .json, .csv, .tsv, .parquet or .txt")
    if column not in df.columns:
        raise EvaluationError(f"prompt file {path} has no {column!r} column (columns: {list(df.columns)})")
    return [str(p) for p in df[column].tolist()]


def _load_hub_prompts(dataset_id: str, split: str, column: str, config: str | None) -> list[str]:
    try:
        import datasets
    except ImportError as e:  # pragma: no cover
        raise EvaluationError("loading prompts from the Hub needs `pip install datasets`") from e
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # network, unknown id, unknown split: say which
        raise EvaluationError(
            f"cannot load Hub dataset {dataset_id!r} (split {split!r}): {e}. Pass a local JSONL/CSV file instead"
        ) from e
    if column not in ds.column_names:
        raise EvaluationError(f"dataset {dataset_id} has no {column!r} column; choose one of {ds.column_names}")
    return [str(x) for x in ds[column]]
