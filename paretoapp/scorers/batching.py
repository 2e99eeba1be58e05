"""Batching helpers shared by the scorers that run a torch model (relevance, Hub reward models)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices grouped into batches of similar length (less padding); results are put back in order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def right_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded on the right into one tensor, with the attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def progress(iterable, desc: str, show: bool):
    return tqdm(iterable, desc=desc, disable=not show, leave=False)
