"""The one training loop: accelerate-based, seeded, resumable, with eval and checkpoints.

``train_adapter`` optimises whatever parameters of ``model`` require grad (the
LoRA adapter being trained) on ``loss_fn(model, batch) -> (loss, metrics)``.
DPO, SFT and every multi-objective loss plug in through ``loss_fn``; the loop
knows nothing about preferences. A ``loss_fn`` with an ``on_epoch_end(epoch)``
method is told when an epoch's last batch is trained; the records it returns go
into metrics.jsonl (Panacea reports Tchebycheff terms clamped all epoch).

The same code runs on CPU, one GPU, or several GPUs/nodes::

    paretoapp train rewarded_soups --config rs.yaml             # CPU or one GPU
    accelerate launch -m paretoapp.trainers.rewarded_soups --config rs.yaml  # data-parallel

Run folder layout (``run_dir``)::

    config.yaml        the settings of this run (written by the caller)
    metrics.jsonl      one line per log / eval event
    checkpoints/       step-N folders (see checkpoint.py); resumed from automatically
    adapter/           the trained adapter (PEFT format, safetensors), written last
    done.json          marks a finished run; a finished run is reused, not retrained

Data order is a seeded permutation per epoch (seed + epoch), so a resumed run
sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from .checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .lora import save_adapter, trainable_parameters

LossFn = Callable[[Any, dict], "tuple[torch.Tensor, dict[str, float]]"]
DONE_FILE = "done.json"


def start_run(cfg) -> Path:
    """Create the run folder and keep the run's config in it (main process only); returns the folder."""
    from .config import save_config

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    on_main_process(lambda: save_config(cfg, out / "config.yaml"))
    return out


def on_main_process(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the main process only (writing a family, a search); the others wait.

    Returns ``fn``'s result on the main process and None elsewhere.
    """
    from accelerate import PartialState

    state = PartialState()
    result = fn() if state.is_main_process else None
    state.wait_for_everyone()
    return result


def is_finished(run_dir: str | Path) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / DONE_FILE).is_file() and (run_dir / "adapter").is_dir()


def _log(run_dir: Path, record: dict) -> None:
    with (run_dir / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _mean_metrics(items: list[dict[str, float]]) -> dict[str, float]:
    keys = items[0].keys() if items else []
    return {k: sum(m[k] for m in items) / len(items) for k in keys}


def evaluate(model, accelerator, loader, loss_fn: LossFn) -> dict[str, float]:
    """Mean of the loss function's metrics over ``loader`` (averaged across processes)."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), device=accelerator.device)
    with torch.no_grad():
        for batch in loader:
            _, metrics = loss_fn(model, batch)
            for k, v in metrics.items():
                sums[k] = sums.get(k, torch.zeros((), device=accelerator.device)) + float(v)
            count += 1
    model.train(was_training)
    if not sums:
        return {}
    total = accelerator.reduce(count, "sum")
    return {f"eval_{k}": (accelerator.reduce(v, "sum") / total).item() for k, v in sums.items()}


def train_adapter(model, adapter_name: str, train_rows: Sequence, collate: Callable, loss_fn: LossFn,
                  cfg: TrainConfig, run_dir: str | Path, eval_rows: Sequence = (),
                  save_fn: Callable[[Any, Path], Any] | None = None) -> Path:
    """Train, checkpoint, and save ``adapter_name`` to ``run_dir/adapter``; returns that folder.

    Resumes from the newest checkpoint in ``run_dir`` if there is one. If the
    run is already finished, returns its adapter without touching the model.
    ``save_fn(model, folder)`` writes the trained weights for models that are not
    PEFT LoRA (Panacea's SVD-LoRA); by default the PEFT adapter is saved.
    """
    run_dir = Path(run_dir)
    if is_finished(run_dir):
        return run_dir / "adapter"
    if not train_rows:
        raise ValueError(f"{run_dir}: no training rows; check the data source and objective")
    run_dir.mkdir(parents=True, exist_ok=True)

    run = _AdapterRun.start(model, train_rows, collate, loss_fn, cfg, run_dir, eval_rows)
    step, epoch = run.position["step"], run.position["epoch"]
    while step < run.total_steps:
        step = run.train_epoch(epoch, step)
        if step >= run.total_steps:
            break
        epoch += 1
    run.bar.close()
    return run.finish(step, adapter_name, save_fn)


@dataclass
class _AdapterRun:
    """One adapter's run once set up (prepared model, optimizer, schedule, where it resumes): its steps and its end."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    cfg: TrainConfig
    run_dir: Path
    loss_fn: LossFn
    collate: Callable
    train_rows: Sequence
    total_steps: int
    position: dict
    eval_loader: Any = None
    bar: Any = None
    started: float = 0.0
    epoch_end: Callable | None = None   # optional: loss_fn.on_epoch_end(epoch) -> records to log
    recent: list[dict] = field(default_factory=list)

    @classmethod
    def start(cls, model, train_rows: Sequence, collate: Callable, loss_fn: LossFn, cfg: TrainConfig,
              run_dir: Path, eval_rows: Sequence) -> _AdapterRun:
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from tqdm.auto import tqdm
        from transformers import get_scheduler

        accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, mixed_precision=cfg.mixed_precision)
        set_seed(cfg.seed)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        optimizer = torch.optim.AdamW(trainable_parameters(model), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

        batches_per_epoch = math.ceil(len(train_rows) / (cfg.batch_size * accelerator.num_processes))
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
        total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        scheduler = get_scheduler(cfg.scheduler, optimizer, num_warmup_steps=int(cfg.warmup_ratio * total_steps),
                                  num_training_steps=total_steps)
        model, optimizer = accelerator.prepare(model, optimizer)
        model.train()

        position = {"step": 0, "epoch": 0, "batch": 0}
        checkpoints = list_checkpoints(run_dir)
        if checkpoints:
            position = load_checkpoint(checkpoints[-1], accelerator.unwrap_model(model), optimizer, scheduler)
            accelerator.print(f"resumed {run_dir} from {checkpoints[-1].name}")

        run = cls(accelerator, model, optimizer, scheduler, cfg, run_dir, loss_fn, collate, train_rows, total_steps,
                  position)
        run.eval_loader = run.loader(eval_rows, None) if eval_rows else None
        run.bar = tqdm(total=total_steps, initial=position["step"], desc=run_dir.name,
                       disable=not (cfg.progress and accelerator.is_local_main_process))
        run.epoch_end = getattr(loss_fn, "on_epoch_end", None)
        run.started = time.time()
        return run

    def loader(self, rows, shuffle_epoch: int | None):
        if shuffle_epoch is not None:
            g = torch.Generator().manual_seed(self.cfg.seed + shuffle_epoch)
            rows = [rows[i] for i in torch.randperm(len(rows), generator=g).tolist()]
        return self.accelerator.prepare(DataLoader(list(rows), batch_size=self.cfg.batch_size, shuffle=False,
                                                   collate_fn=self.collate))

    def train_epoch(self, epoch: int, step: int) -> int:
        """One epoch from where the run stands (mid-epoch after a resume); returns the optimizer step reached."""
        accelerator = self.accelerator
        train_loader = self.loader(self.train_rows, epoch)
        skip = self.position["batch"] if epoch == self.position["epoch"] else 0
        batches = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        batch_index = skip
        for batch in batches:
            loss, metrics = self.train_batch(batch)
            batch_index += 1
            self.recent.append(metrics)
            if not accelerator.sync_gradients:
                continue
            step += 1
            self.after_optimizer_step(loss, metrics, {"step": step, "epoch": epoch, "batch": batch_index})
            if step >= self.total_steps:
                break
        if self.epoch_end is not None and batch_index >= len(train_loader):  # every batch of the epoch was trained on
            for record in self.epoch_end(epoch) or ():
                if accelerator.is_main_process:
                    _log(self.run_dir, {"step": step, "epoch": epoch, **record})
        return step

    def train_batch(self, batch) -> tuple[torch.Tensor, dict]:
        accelerator, cfg = self.accelerator, self.cfg
        with accelerator.accumulate(self.model):
            loss, metrics = self.loss_fn(self.model, batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm:
                accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        return loss, metrics

    def after_optimizer_step(self, loss: torch.Tensor, metrics: dict, here: dict) -> None:
        """The schedule, the progress bar, and the log, eval and checkpoint that fall due at step ``here["step"]``."""
        accelerator, cfg, step = self.accelerator, self.cfg, here["step"]
        self.scheduler.step()
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{metrics.get('loss', loss.item()):.4f}")
        if cfg.log_every and step % cfg.log_every == 0 and accelerator.is_main_process:
            _log(self.run_dir, {**here, "lr": self.scheduler.get_last_lr()[0],
                                "elapsed_s": round(time.time() - self.started, 2), **_mean_metrics(self.recent)})
            self.recent = []
        if self.eval_loader is not None and cfg.eval_every and step % cfg.eval_every == 0 and step < self.total_steps:
            result = evaluate(self.model, accelerator, self.eval_loader, self.loss_fn)
            if accelerator.is_main_process:
                _log(self.run_dir, {**here, **result})
        if cfg.save_every and step % cfg.save_every == 0 and step < self.total_steps:
            if accelerator.is_main_process:
                save_checkpoint(self.run_dir, accelerator.unwrap_model(self.model), self.optimizer, self.scheduler, here,
                                keep=cfg.keep_checkpoints)
            accelerator.wait_for_everyone()

    def finish(self, step: int, adapter_name: str, save_fn: Callable[[Any, Path], Any] | None) -> Path:
        """The final eval, the trained adapter written last, then the done marker."""
        accelerator, run_dir = self.accelerator, self.run_dir
        final = {"step": step}
        if self.eval_loader is not None:
            final.update(evaluate(self.model, accelerator, self.eval_loader, self.loss_fn))
        adapter_dir = run_dir / "adapter"
        if accelerator.is_main_process:
            _log(run_dir, {**final, "final": True})
            unwrapped = accelerator.unwrap_model(self.model)
            if self.cfg.gradient_checkpointing:
                unwrapped.gradient_checkpointing_disable()
            if save_fn is not None:
                save_fn(unwrapped, adapter_dir)
            else:
                save_adapter(unwrapped, adapter_name, adapter_dir)
            (run_dir / DONE_FILE).write_text(json.dumps({**final, "elapsed_s": round(time.time() - self.started, 2)}))
        accelerator.wait_for_everyone()
        return adapter_dir
