"""The demo build's work units and the workers that run them.

Families are built side by side on ``--jobs`` worker processes, each unit in a fresh process so that what a
worker built before cannot change a family's numbers. Methods registered at run time (in a test) exist only
in the process that registered them: build those with ``--jobs 1``.
"""

from __future__ import annotations

import argparse

import torch

from paretoapp.methods import get_method

from .family_build import build_method
from .log import log
from .presets import PRESETS


def plan_units(presets: dict[str, list[str]], costs: dict[tuple[str, str], float] | None = None) -> list[list]:
    """The build's work units, longest first: each unit is a list of (preset, method) one worker runs in order.

    The methods that share the per-objective adapters (``Method.reuses_objective_adapters``) are one unit, in
    the presets' order (two workers never train the same expert); every other family is a unit of its own.
    ``costs``: seconds per (preset, method), from the last build record (unknown: 1800 s).
    """
    costs = costs or {}

    def shares(method: str) -> bool:
        return get_method(method).reuses_objective_adapters

    chain = [(p, m) for p, methods in presets.items() for m in methods if shares(m)]
    units = [chain] if chain else []
    units += [[(p, m)] for p, methods in presets.items() for m in methods if not shares(m)]
    return sorted(units, key=lambda unit: -sum(costs.get(item, 1800.0) for item in unit))


def run_unit(args, unit: list, data, progress=None) -> list[dict]:
    """Build one work unit (plan_units) in this process: every method in order, the reference cache starting
    empty, so a family's numbers do not depend on which worker built it or what it built before."""
    from paretoapp.trainers.losses import cache_reference_logps

    cache_reference_logps(True)
    torch.manual_seed(args.seed)
    done = []
    try:
        for preset_name, method in unit:
            log(f"training {PRESETS[preset_name].family_dir(method)}")
            done.append(build_method(method, preset_name, args, data))
            if progress is not None:
                progress.put(PRESETS[preset_name].family_dir(method))
    finally:
        cache_reference_logps(False)  # emptied: the next unit (or the caller) starts without it
    return done


def _worker_unit(args, unit, data, progress) -> list[dict]:
    """A worker process's entry (its environment is the parent's, set by run()): its thread budget, then
    run_unit."""
    torch.set_num_threads(args.threads)
    return run_unit(args, unit, data, progress)


def run_units(units: list, args, data) -> list[dict]:
    """Every unit, on ``args.jobs`` worker processes (one fresh process per unit) or in this one (jobs = 1),
    with one progress bar over the families."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    total = sum(len(u) for u in units)
    if args.jobs <= 1:
        return [d for unit in units for d in run_unit(args, unit, data)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, tqdm(total=total, desc="families built", disable=args.quiet) as bar:
        progress = manager.Queue()

        def follow():
            for _ in range(total):
                name = progress.get()
                if name is None:
                    return
                bar.update(1)
                bar.set_postfix_str(name)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        worker_args = argparse.Namespace(**{**vars(args), "quiet": True})  # one bar, not one per worker
        with ProcessPoolExecutor(args.jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = [pool.submit(_worker_unit, worker_args, unit, data, progress) for unit in units]
            done = [d for f in futures for d in f.result()]
        progress.put(None)
        follower.join(timeout=5)
    return done
