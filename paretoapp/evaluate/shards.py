"""Splitting a front's (w, prompt) rows over processes: ``accelerate launch -m paretoapp evaluate ...``.

Under ``accelerate launch`` (or ``torchrun``) every process generates and
scores rows ``rank::world`` of the front, then the answers and scores are
gathered so that every process holds the whole table, identical to a
single-process run (the main process writes it). Rows are dealt round-robin in
the evaluator's length order, so each process gets prompts of every length.
A row's answer does not depend on where it ran: the engine's greedy decoding
is per row, and a sampled row's seed is its index in the front.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shard:
    """This process's part of the work: every ``world``-th item from ``rank``."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def take(self, items: list) -> list:
        return items[self.rank::self.world]

    def gather(self, items: list) -> list:
        """Every process's ``items``, concatenated in rank order, on every process."""
        if self.world == 1:
            return list(items)
        from accelerate.utils import gather_object
        return gather_object(list(items))

    def agree(self, value: Any) -> Any:
        """The main process's ``value`` on every process (e.g. whether a cache file exists)."""
        if self.world == 1:
            return value
        from accelerate.utils import broadcast_object_list
        return broadcast_object_list([value], from_process=0)[0]


def current_shard() -> Shard:
    """This process's shard when launched as several processes (WORLD_SIZE > 1), else the whole front."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard()
    state = _state()
    return Shard(state.process_index, state.num_processes)


def shard_device() -> str | None:
    """The device accelerate gives this process (its own GPU), or None in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return str(_state().device)


def _state():
    import torch
    from accelerate import PartialState
    return PartialState(cpu=not torch.cuda.is_available())  # gloo between CPU processes
