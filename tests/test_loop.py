"""trainers/loop.py on a two-weight model: data order, step counts, logs, evals, checkpoints, resuming, the end.

Every method trains through ``train_adapter``; these tests pin what the loop does with a config (which rows
each step sees, when it logs, evaluates and saves, what a resumed run repeats) on a model small enough that a
whole run takes milliseconds. The loss function records what it was given, so each test asserts on what the
loop did, not on a config string.
"""

from __future__ import annotations

import json

import pytest
import torch
from trainer_fixtures import tiny_base  # noqa: F401  (fixture)

from paretoapp.trainers import loop
from paretoapp.trainers.checkpoint import list_checkpoints
from paretoapp.trainers.config import TrainConfig

ROWS = [{"i": i, "x": torch.tensor([1.0, float(i)])} for i in range(8)]


def collate(rows):
    """The run's own collator (marked, so a loader that dropped it for torch's default would be caught)."""
    return {"i": torch.tensor([r["i"] for r in rows]), "x": torch.stack([r["x"] for r in rows]), "collated": True}


class Recorder:
    """A loss over a linear model that records each batch's row ids and whether the model was in train mode."""

    def __init__(self, fail_at: int | None = None):
        self.batches: list[list[int]] = []
        self.modes: list[bool] = []
        self.dtypes: list[torch.dtype] = []
        self.losses: list[float] = []
        self.fail_at = fail_at

    def __call__(self, model, batch):
        if self.fail_at is not None and len(self.batches) + 1 == self.fail_at:
            raise KeyboardInterrupt("interrupted on purpose")
        assert batch["collated"] is True
        self.batches.append(batch["i"].tolist())
        self.modes.append(model.training)
        out = model(batch["x"]).squeeze(-1)
        self.dtypes.append(getattr(model, "module", model).computed_in)
        loss = ((out - 1.0) ** 2).mean()
        self.losses.append(loss.item())
        return loss, {"loss": loss.item(), "call": float(len(self.batches))}


class Linear(torch.nn.Linear):
    """A linear layer that notes the dtype it computed in (accelerate casts a model's outputs back to float32)."""

    def forward(self, x):
        out = super().forward(x)
        self.computed_in = out.dtype
        return out


def tiny_model():
    torch.manual_seed(0)
    model = Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.3, -0.2]]))
    return model


def save_weights(model, folder):
    folder.mkdir(parents=True)
    (folder / "w.json").write_text(json.dumps(model.weight.detach().tolist()))


def cfg(**kw) -> TrainConfig:
    base = dict(learning_rate=0.05, batch_size=2, epochs=1, log_every=0, scheduler="constant", warmup_ratio=0.0,
                max_grad_norm=None, progress=False, seed=3)
    return TrainConfig(**{**base, **kw})


def run(tmp_path, config, loss=None, rows=ROWS, model=None, name="run", eval_rows=()):
    loss = loss or Recorder()
    model = model or tiny_model()
    out = loop.train_adapter(model, "default", rows, collate, loss, config, tmp_path / name, eval_rows=eval_rows,
                             save_fn=save_weights)
    return loss, model, out


def records(tmp_path, name="run"):
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def permutation(seed: int, n: int = 8) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def test_each_epoch_sees_every_row_once_in_a_permutation_seeded_by_seed_plus_epoch(tmp_path):
    loss, _, _ = run(tmp_path, cfg(epochs=3))
    seen = [i for b in loss.batches for i in b]
    assert [seen[e * 8:(e + 1) * 8] for e in range(3)] == [permutation(3 + e) for e in range(3)]
    assert [len(b) for b in loss.batches] == [2] * 12
    assert len({tuple(permutation(3 + e)) for e in range(3)}) == 3  # the test tells the epochs apart


@pytest.mark.parametrize("kw, calls, steps", [
    ({"max_steps": 3}, 3, 3),                      # max_steps overrides epochs
    ({"epochs": 1.5}, 6, 6),                       # ceil(1.5 x 4 batches)
    ({"epochs": 1, "grad_accum": 2}, 4, 2),        # 4 micro-batches, an optimizer step every 2
    ({"epochs": 1, "batch_size": 3}, 3, 3),        # the last batch is the 2 rows left over
    ({"epochs": 0.1}, 1, 1),                       # at least one step
])
def test_the_run_takes_the_steps_its_config_asks_for(tmp_path, kw, calls, steps):
    loss, _, out = run(tmp_path, cfg(**kw))
    assert len(loss.batches) == calls
    assert json.loads((tmp_path / "run" / loop.DONE_FILE).read_text())["step"] == steps
    assert out == tmp_path / "run" / "adapter" and (out / "w.json").is_file()
    assert records(tmp_path)[-1] == {"step": steps, "final": True}
    done = json.loads((tmp_path / "run" / loop.DONE_FILE).read_text())
    assert set(done) == {"step", "elapsed_s"} and isinstance(done["elapsed_s"], float) and 0 <= done["elapsed_s"] < 600
    assert done["elapsed_s"] == round(done["elapsed_s"], 2)


def test_the_weights_move_with_the_learning_rate_and_the_model_trains_in_train_mode(tmp_path):
    _, still, _ = run(tmp_path, cfg(learning_rate=0.0), name="zero")
    _, moved, _ = run(tmp_path, cfg(learning_rate=0.05), name="moved")
    _, further, _ = run(tmp_path, cfg(learning_rate=0.2), name="further")
    start = tiny_model().weight
    assert torch.equal(still.weight, start)
    step = (moved.weight - start).abs().max().item()
    assert 0 < step < (further.weight - start).abs().max().item()
    loss, _, _ = run(tmp_path, cfg(), name="modes")
    assert all(loss.modes)


def test_gradient_clipping_uses_max_grad_norm(tmp_path):
    """Adam's first step is about lr x sign(g); a gradient clipped to 1e-12 is under eps, so the step all but vanishes."""
    _, free, _ = run(tmp_path, cfg(max_steps=1, max_grad_norm=None), name="free")
    _, clipped, _ = run(tmp_path, cfg(max_steps=1, max_grad_norm=1e-12), name="clipped")
    start = tiny_model().weight
    assert (free.weight - start).abs().min().item() > 0.04
    assert (clipped.weight - start).abs().max().item() < 1e-3


def test_weight_decay_reaches_the_optimizer(tmp_path):
    def no_gradient(model, batch):
        return (model.weight * 0).sum(), {}

    _, kept, _ = run(tmp_path, cfg(max_steps=1), loss=no_gradient, name="kept")
    _, decayed, _ = run(tmp_path, cfg(max_steps=1, weight_decay=0.5), loss=no_gradient, name="decayed")
    start = tiny_model().weight
    assert torch.equal(kept.weight, start)
    assert torch.allclose(decayed.weight, start * (1 - 0.05 * 0.5))


def test_logs_fall_on_every_log_every_steps_with_the_mean_of_the_batches_since(tmp_path):
    run(tmp_path, cfg(epochs=2, grad_accum=2, log_every=2, scheduler="linear", warmup_ratio=0.5))
    logs = [r for r in records(tmp_path) if "lr" in r]
    assert [r["step"] for r in logs] == [2, 4]
    # the call counter's mean over the 4 micro-batches (2 steps x grad_accum 2) since the last log
    assert [r["call"] for r in logs] == [2.5, 6.5]
    assert [(r["epoch"], r["batch"]) for r in logs] == [(0, 4), (1, 4)]
    # linear warmup over half of the 4 steps, then linear decay to 0: the lr after steps 2 and 4
    assert [r["lr"] for r in logs] == pytest.approx([0.05, 0.0])
    assert all(isinstance(r["elapsed_s"], float) and 0 <= r["elapsed_s"] < 600 for r in logs)
    assert all(r["elapsed_s"] == round(r["elapsed_s"], 2) for r in logs)


def test_warmup_is_a_share_of_the_total_steps(tmp_path):
    run(tmp_path, cfg(epochs=2, log_every=1, scheduler="linear", warmup_ratio=0.5))
    lrs = [r["lr"] for r in records(tmp_path) if "lr" in r]
    assert lrs[:4] == pytest.approx([0.05 * k / 4 for k in (1, 2, 3, 4)])
    assert lrs[-1] == pytest.approx(0.0)


def test_evals_fall_on_every_eval_every_steps_and_once_at_the_end_in_eval_mode(tmp_path):
    eval_rows = ROWS[:4]
    loss, _, _ = run(tmp_path, cfg(epochs=1, eval_every=2, max_steps=3), eval_rows=eval_rows)
    evals = [r for r in records(tmp_path) if any(k.startswith("eval_") for k in r)]
    assert [r["step"] for r in evals] == [2, 3] and evals[-1]["final"] is True
    # each eval is two batches of eval rows, run with the model in eval mode, in order and unshuffled
    first_eval = loss.batches[2:4]
    assert first_eval == [[0, 1], [2, 3]] and loss.modes[2:4] == [False, False]
    assert loss.modes[4] is True  # training resumes in train mode
    # the eval metric is the mean over its batches: the call counter was 3 and 4 during the first eval
    assert evals[0]["eval_call"] == pytest.approx(3.5)
    assert set(evals[0]) >= {"eval_loss", "eval_call", "step", "epoch", "batch"}


def test_an_eval_on_the_last_step_is_the_final_one_only(tmp_path):
    run(tmp_path, cfg(epochs=1, eval_every=2, max_steps=4), eval_rows=ROWS[:2])
    assert [r["step"] for r in records(tmp_path) if "eval_loss" in r] == [2, 4]


def test_no_eval_without_eval_rows(tmp_path):
    loss, _, _ = run(tmp_path, cfg(eval_every=1))
    assert len(loss.batches) == 4 and records(tmp_path) == [{"step": 4, "final": True}]


def test_checkpoints_fall_on_every_save_every_steps_and_only_the_newest_are_kept(tmp_path):
    run(tmp_path, cfg(epochs=2, save_every=2, keep_checkpoints=3, max_steps=7))
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-000002", "step-000004", "step-000006"]
    run(tmp_path, cfg(epochs=2, save_every=2, keep_checkpoints=1, max_steps=7), name="one")
    assert [p.name for p in list_checkpoints(tmp_path / "one")] == ["step-000006"]
    run(tmp_path, cfg(epochs=2, save_every=4, keep_checkpoints=5, max_steps=8), name="at-end")
    assert [p.name for p in list_checkpoints(tmp_path / "at-end")] == ["step-000004"]  # none at the last step


@pytest.mark.parametrize("fail_at", [4, 6])   # mid-epoch (after step 3) and at an epoch boundary (after 5)
def test_an_interrupted_run_resumes_to_the_same_batches_and_weights(tmp_path, fail_at):
    config = cfg(epochs=2, save_every=2, max_steps=8)
    whole, whole_model, _ = run(tmp_path, config, name="whole")
    first = Recorder(fail_at=fail_at)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, config, loss=first, name="cut")
    saved = (fail_at - 1) // 2 * 2
    assert [p.name for p in list_checkpoints(tmp_path / "cut")][-1] == f"step-{saved:06d}"
    second, resumed_model, _ = run(tmp_path, config, name="cut", model=tiny_model())
    assert second.batches == whole.batches[saved:]
    assert torch.allclose(resumed_model.weight, whole_model.weight, atol=1e-7)


def test_a_finished_run_is_returned_without_training(tmp_path):
    run(tmp_path, cfg())
    again = Recorder()
    model = tiny_model()
    out = loop.train_adapter(model, "default", ROWS, collate, again, cfg(), tmp_path / "run", save_fn=save_weights)
    assert out == tmp_path / "run" / "adapter" and again.batches == []
    assert torch.equal(model.weight, tiny_model().weight)
    assert loop.is_finished(tmp_path / "run")


def test_a_done_marker_without_an_adapter_is_not_finished(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / loop.DONE_FILE).write_text("{}")
    assert not loop.is_finished(tmp_path / "run")
    loss, _, _ = run(tmp_path, cfg())
    assert len(loss.batches) == 4


def test_no_rows_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no training rows"):
        run(tmp_path, cfg(), rows=[])
    assert not (tmp_path / "run").exists()


def test_the_loss_hears_of_each_whole_epoch_and_its_records_are_logged(tmp_path):
    class EpochLoss(Recorder):
        def __init__(self):
            super().__init__()
            self.epochs: list[int] = []

        def on_epoch_end(self, epoch):
            self.epochs.append(epoch)
            return [{"clamped": epoch * 10}]

    loss = EpochLoss()
    run(tmp_path, cfg(epochs=2), loss=loss)
    assert loss.epochs == [0, 1]
    assert [r for r in records(tmp_path) if "clamped" in r] == [
        {"step": 4, "epoch": 0, "clamped": 0}, {"step": 8, "epoch": 1, "clamped": 10}]
    cut = EpochLoss()
    run(tmp_path, cfg(max_steps=6), loss=cut, name="cut")  # epoch 1 stops after 2 of its 4 batches
    assert cut.epochs == [0]


def test_evaluate_averages_each_metric_and_restores_train_mode():
    from accelerate import Accelerator

    model = tiny_model()
    model.train()
    loss = Recorder()
    loader = torch.utils.data.DataLoader(ROWS[:6], batch_size=2, collate_fn=collate)
    result = loop.evaluate(model, Accelerator(), loader, loss)
    assert result["eval_call"] == pytest.approx(2.0) and set(result) == {"eval_loss", "eval_call"}
    assert loss.modes == [False] * 3 and model.training
    model.eval()
    assert loop.evaluate(model, Accelerator(), loader, lambda m, b: (torch.zeros(()), {})) == {}
    assert not model.training


def test_mean_metrics_of_nothing_is_empty():
    assert loop._mean_metrics([]) == {}
    assert loop._mean_metrics([{"a": 1.0}, {"a": 3.0}]) == {"a": 2.0}


def test_start_run_writes_the_config_and_on_main_process_returns_the_result(tmp_path, monkeypatch):
    import paretoapp.trainers.config as config_module

    saved = []
    monkeypatch.setattr(config_module, "save_config", lambda c, path: saved.append((c, path)))
    config = type("Cfg", (), {"output_dir": str(tmp_path / "new" / "run")})()
    out = loop.start_run(config)
    assert out == tmp_path / "new" / "run" and out.is_dir() and saved == [(config, out / "config.yaml")]
    assert loop.start_run(config) == out  # a run folder that exists already is fine (a resumed run)
    assert loop.on_main_process(lambda: 7) == 7


@pytest.fixture()
def fresh_accelerate_state():
    """accelerate keeps one process-wide state whose mixed precision cannot change; start and leave it clean."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_mixed_precision_reaches_the_forward_pass(tmp_path, fresh_accelerate_state):
    plain, _, _ = run(tmp_path, cfg(max_steps=1), name="fp32")
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    bf16, _, _ = run(tmp_path, cfg(max_steps=1, mixed_precision="bf16"), name="bf16")
    assert plain.dtypes == [torch.float32] and bf16.dtypes == [torch.bfloat16]


def test_a_run_folder_is_made_with_its_parents(tmp_path):
    run(tmp_path, cfg(max_steps=1), name="a/b/run")
    assert loop.is_finished(tmp_path / "a" / "b" / "run")


def test_without_save_fn_the_named_peft_adapter_is_saved_as_trained(tmp_path, tiny_base):  # noqa: F811
    from safetensors.torch import load_file

    from paretoapp.trainers import lora

    model, _ = lora.load_base(str(tiny_base))
    model = lora.attach_lora(model, lora.LoraSettings(r=2, alpha=4.0, target_modules=["q_proj"]), adapter_name="mine")

    def lm_loss(m, batch):
        ids = torch.tensor([[1, 5, 9, 14, 3]])
        loss = m(input_ids=ids, labels=ids).loss
        return loss, {"loss": loss.item()}

    rows = [{"i": i} for i in range(4)]
    out = loop.train_adapter(model, "mine", rows, lambda r: {"collated": True}, lm_loss, cfg(max_steps=2, learning_rate=0.1),
                             tmp_path / "run")
    saved = load_file(str(out / "adapter_model.safetensors"))
    trained = {n: p for n, p in model.named_parameters() if "lora_B" in n}
    assert saved and (out / "adapter_config.json").is_file()
    b = next(v for k, v in saved.items() if "lora_B" in k)
    assert b.abs().max() > 0  # trained weights, not a fresh adapter's zeros
    assert any(torch.equal(b, p.detach()) for p in trained.values())


def test_the_progress_bar_counts_optimizer_steps_from_where_the_run_resumes(tmp_path, capsys):
    config = cfg(epochs=2, save_every=2, max_steps=8, progress=True)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, config, loss=Recorder(fail_at=6), name="bar")  # checkpoint at step 4 of 8
    first = capsys.readouterr().err.replace("\r", "\n")
    assert "bar:   0%" in first and "4/8" in first
    resumed, _, _ = run(tmp_path, config, name="bar", model=tiny_model())
    shown = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    assert shown[0].startswith("bar:  50%") and "4/8" in shown[0], shown[0]  # starts at the checkpoint's step
    assert shown[-1].startswith("bar: 100%") and "8/8" in shown[-1], shown[-1]
    assert f"loss={resumed.losses[-1]:.4f}]" in shown[-1]  # the last batch's loss, 4 decimals
    run(tmp_path, cfg(max_steps=1, progress=False), name="quiet")
    assert capsys.readouterr().err == ""
