"""Spies on a real trainer run: what each training run was given, what it started from, what its loss computed.

The method tests run the trainer itself (``linear_dpo.train(cfg)``, ``peo.train(cfg)``, ...) under
``record_runs(monkeypatch)`` and then assert on what it did, not on its config:

* ``Run.rows``: the rows the run trained on (as handed to the one training loop);
* ``Run.start_logits`` / ``Run.trainable``: the model it started from (its logits on a fixed probe) and the
  parameters it trained;
* ``Run.steps``: every training batch the loss saw (the tensors), the loss value and metrics the loss returned,
  and, when the test gives an ``oracle``, the test's own value of the loss on that batch at the same weights;
* ``Recorder.calls``: every call of the leaf losses (``dpo_loss``, ``kto_loss``, ``sft_loss``, ``scalarise``)
  with its arguments, so a test sees the beta and the w that reached them.

The oracle helpers below recompute log-probabilities, DPO and SFT from the logits, independently of
``paretoapp.trainers.losses`` (whose formulas have their own tests against TRL and by hand).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from paretoapp.trainers import loop, losses, multi_objective

PROBE = torch.arange(200, 216).unsqueeze(0)  # fixed token ids: the model's logits on them say which weights it has
LEAVES = {"dpo_loss": losses, "kto_loss": losses, "sft_loss": losses, "scalarise": multi_objective}


@dataclass
class Call:
    name: str
    args: tuple
    kwargs: dict
    result: Any
    run: str | None  # the run folder's name while a training run was going on

    def arg(self, index: int, name: str, default=None):
        return self.args[index] if len(self.args) > index else self.kwargs.get(name, default)


@dataclass
class Step:
    batch: dict
    loss: float
    metrics: dict
    expected: dict = field(default_factory=dict)  # the oracle's values at the same weights


@dataclass
class Run:
    run_dir: Path
    rows: list
    cfg: Any
    trainable: list[str]
    start_logits: torch.Tensor
    steps: list[Step] = field(default_factory=list)
    eval_rows: list = field(default_factory=list)  # the held-out rows the run evaluates (never trains on)

    @property
    def name(self) -> str:
        return self.run_dir.name


class Recorder:
    def __init__(self, oracle: Callable | None = None):
        self.runs: list[Run] = []
        self.calls: list[Call] = []
        self.oracle = oracle
        self.active: Run | None = None

    def __getitem__(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"no training run named {name!r}; runs: {[r.name for r in self.runs]}")

    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    def calls_of(self, name: str, run: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.name == name and (run is None or c.run == run)]


def _clone(batch):
    if isinstance(batch, dict):
        return {k: _clone(v) for k, v in batch.items()}
    return batch.detach().clone() if isinstance(batch, torch.Tensor) else batch


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    return value


def probe_logits(model) -> torch.Tensor:
    inner = getattr(model, "module", model)
    with torch.no_grad():
        return inner(input_ids=PROBE).logits.detach().clone()


def assert_loss_on_real_tokens(batch) -> None:
    """No padding under the loss: ``completion_mask`` only where ``attention_mask`` is 1, in every
    (sub-)batch the loop hands a loss (a test's oracle reads the batch's own masks, so it cannot see this)."""
    if not isinstance(batch, dict):
        return
    if "completion_mask" in batch and "attention_mask" in batch:
        mask, attn = batch["completion_mask"].bool(), batch["attention_mask"].bool()
        assert not (mask & ~attn).any(), "the loss covers padding: completion_mask is 1 where attention_mask is 0"
    for value in batch.values():
        assert_loss_on_real_tokens(value)


class _RecordingLoss:
    """The loss the loop is given, recording every training call (and the oracle's values at the same weights)."""

    def __init__(self, loss_fn, run: Run, recorder: Recorder):
        self.loss_fn, self.run, self.recorder = loss_fn, run, recorder

    def __getattr__(self, name):  # on_epoch_end and the like, where the real loss has them
        return getattr(self.loss_fn, name)

    def __call__(self, model, batch):
        assert_loss_on_real_tokens(batch)
        loss, metrics = self.loss_fn(model, batch)
        if getattr(model, "training", True):
            step = Step(_clone(batch), float(loss.detach()), dict(metrics))
            if self.recorder.oracle is not None:
                with torch.no_grad():
                    step.expected = self.recorder.oracle(self.run, model, batch, dict(metrics))
            self.run.steps.append(step)
        return loss, metrics


def record_runs(monkeypatch, oracle: Callable | None = None) -> Recorder:
    """Record every training run started in this test and every call of the leaf losses.

    ``oracle(run, model, batch, metrics) -> {name: value}`` is called after each training loss, under no_grad,
    at the same weights.
    """
    recorder = Recorder(oracle)
    start, finish = loop._AdapterRun.start.__func__, loop._AdapterRun.finish

    def recording_start(cls, model, train_rows, collate, loss_fn, cfg, run_dir, eval_rows):
        trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
        run = Run(Path(run_dir), list(train_rows), cfg, trainable, probe_logits(model), eval_rows=list(eval_rows))
        recorder.runs.append(run)
        recorder.active = run
        return start(cls, model, train_rows, collate, _RecordingLoss(loss_fn, run, recorder), cfg, run_dir, eval_rows)

    def recording_finish(self, *args, **kwargs):
        try:
            return finish(self, *args, **kwargs)
        finally:
            recorder.active = None

    monkeypatch.setattr(loop._AdapterRun, "start", classmethod(recording_start))
    monkeypatch.setattr(loop._AdapterRun, "finish", recording_finish)
    for name, home in LEAVES.items():
        _spy(monkeypatch, recorder, name, getattr(home, name))
    return recorder


def _spy(monkeypatch, recorder: Recorder, name: str, original) -> None:
    """Replace ``original`` wherever a paretoapp module holds it (``from .losses import dpo_loss`` included)."""
    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        recorder.calls.append(Call(name, _detached(args), dict(kwargs), result,
                                   recorder.active.name if recorder.active else None))
        return result

    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("paretoapp") and module is not None:
            for attr, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attr, spy)


# --------------------------------------------------------------------------- reading the recorded batches
def response_texts(tokenizer, batch: dict) -> list[str]:
    """Each row's tokens under ``completion_mask`` (what the loss trains on), decoded without special tokens."""
    return [tokenizer.decode(ids[mask.bool()], skip_special_tokens=True).strip()
            for ids, mask in zip(batch["input_ids"], batch["completion_mask"])]


def prompt_texts(tokenizer, batch: dict) -> list[str]:
    """Each row's real (not padding) tokens outside ``completion_mask``, decoded without special tokens."""
    return [tokenizer.decode(ids[(attn.bool()) & ~mask.bool()], skip_special_tokens=True).strip()
            for ids, attn, mask in zip(batch["input_ids"], batch["attention_mask"], batch["completion_mask"])]


def pair_texts(tokenizer, batch: dict) -> list[tuple[str, str, str]]:
    """A PreferenceCollator batch as (prompt, chosen, rejected) per pair: rows [chosen..., rejected...]."""
    prompts, responses = prompt_texts(tokenizer, batch), response_texts(tokenizer, batch)
    n = len(responses) // 2
    assert prompts[:n] == prompts[n:], "a pair's chosen and rejected rows must share the prompt"
    return list(zip(prompts[:n], responses[:n], responses[n:]))


def strip_pairs(pairs) -> set[tuple[str, str, str]]:
    return {(p.strip(), c.strip(), r.strip()) for p, c, r in pairs}


# --------------------------------------------------------------------------- the oracle's own losses
def logps(model, batch: dict, average: bool = False) -> torch.Tensor:
    """Sum (or mean) of log p(token) over each row's completion tokens, from the logits."""
    inner = getattr(model, "module", model)
    logits = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    token = torch.log_softmax(logits, dim=-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    mask = batch["completion_mask"][:, 1:].float()
    total = (token * mask).sum(-1)
    return total / mask.sum(-1) if average else total


def sft_nll(model, batch: dict, key: str = "completion_mask") -> float:
    """Mean NLL per token over the tokens marked by ``key`` (completion: the loss SFT should have)."""
    inner = getattr(model, "module", model)
    logits = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    token = torch.log_softmax(logits, dim=-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    mask = batch[key][:, 1:].float()
    return float(-(token * mask).sum() / mask.sum())


@contextlib.contextmanager
def adapters_off(model):
    """theta_0: every PEFT adapter switched off."""
    with getattr(model, "module", model).disable_adapter():
        yield


def dpo_losses(model, batch: dict, beta: float, reference=adapters_off, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pair DPO losses (Rafailov et al. eq. 7) with the reference given as a context manager."""
    policy = logps(model, batch)
    with reference(model):
        ref = logps(model, batch)
    n = len(policy) // 2
    h = beta * ((policy[:n] - ref[:n]) - (policy[n:] - ref[n:]))
    return -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)


def chosen_nll_per_token(model, batch: dict) -> float:
    """RPO's term: mean over pairs of the chosen answer's NLL per completion token."""
    mean = logps(model, batch, average=True)
    return float(-mean[: len(mean) // 2].mean())


def nearly(a: float, b: float, tol: float = 2e-5) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))
