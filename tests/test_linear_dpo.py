"""Linear-scalarised DPO: one adapter per grid point, the loss is sum_i w_i L_i, the gate picks the nearest."""

from __future__ import annotations

import pytest
import torch
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import OBJECTIVES, PAIRS, write_config

from paretoapp.family import Family
from paretoapp.trainers import linear_dpo
from paretoapp.trainers.lora import LoraSettings, attach_lora, load_base
from paretoapp.trainers.losses import dpo_batch_loss
from paretoapp.trainers.multi_objective import MultiObjectiveCollator


@pytest.fixture(scope="module")
def ls_run(tmp_path_factory, tiny_base, pref_jsonl):
    out = tmp_path_factory.mktemp("ls")
    cfg = write_config(out / "ls.yaml", tiny_base, pref_jsonl, out / "run", grid=[[1, 0], [0.5, 0.5], [0, 1]],
                       train={"max_steps": 2, "batch_size": 2})
    return out / "run", linear_dpo.main(["--config", str(cfg)])


def test_nearest_grid_point_serves_a_preference(ls_run, tiny_base):
    run, family_dir = ls_run
    m = Family.load(family_dir).manifest
    assert m.method == "linear_dpo" and m.gate.kind == "anchors" and m.gate.mode == "nearest"
    assert m.gate.points == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    mid = adapter_delta(tiny_base, run / "adapters" / "linear-w50-50" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.6, 0.4]), mid)   # nearest: (0.5, 0.5)
    vertex = adapter_delta(tiny_base, run / "adapters" / "linear-w100-0" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.9, 0.1]), vertex)


def test_loss_is_the_weighted_sum_of_dpo_losses(tiny_base):
    model, tok = load_base(str(tiny_base))
    torch.manual_seed(0)
    model = attach_lora(model, LoraSettings(r=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    names = list(OBJECTIVES)
    rows = [{n: {"prompt": PAIRS[n][j][0], "chosen": " " + PAIRS[n][j][1], "rejected": " " + PAIRS[n][j][2]}
             for n in names} for j in range(3)]
    batch = MultiObjectiveCollator(tok, names, max_length=64)(rows)
    each = [dpo_batch_loss(model, batch[n], beta=0.1).loss.item() for n in names]
    loss, results = linear_dpo.linear_dpo_loss(model, batch, [0.25, 0.75], names, 0.1)
    assert loss.item() == pytest.approx(0.25 * each[0] + 0.75 * each[1], rel=1e-5)
    loss, results = linear_dpo.linear_dpo_loss(model, batch, [1.0, 0.0], names, 0.1)
    assert list(results) == ["helpful"] and loss.item() == pytest.approx(each[0], rel=1e-5)

    # the RPO option: each objective's term is DPO + lambda * NLL per token of its chosen answers
    from paretoapp.trainers.losses import sequence_logprobs

    def nll(sub):
        chosen = sequence_logprobs(model, sub).chunk(2)[0]
        tokens = sub["completion_mask"][: len(chosen), 1:].sum(-1).float()
        return (-chosen / tokens).mean().item()

    loss, _ = linear_dpo.linear_dpo_loss(model, batch, [0.25, 0.75], names, 0.1, sft_weight=0.5)
    want = sum(w * (each[i] + 0.5 * nll(batch[n])) for i, (w, n) in enumerate(zip([0.25, 0.75], names)))
    assert loss.item() == pytest.approx(want, rel=1e-5) and nll(batch[names[0]]) > 0.1


def test_family_generates_per_row(ls_run):
    from paretoapp.generate import GenerationSettings, load_policy
    policy = load_policy(ls_run[1])
    out = policy.generate(["Hi.", "Hi.", "Hi."], [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], GenerationSettings(max_new_tokens=3))
    assert len(out) == 3


def test_each_grid_point_trains_its_weighted_sum_on_both_objectives_from_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                                 monkeypatch):
    """The trainer itself: each point's run trains sum_i w_i DPO_i (train.beta, reference theta_0) on every
    objective's own pairs, from theta_0; a zero weight's objective is not even evaluated."""
    from trainer_spies import chosen_nll_per_token, dpo_losses, nearly, pair_texts, probe_logits, record_runs
    from transformers import AutoTokenizer

    from paretoapp.trainers.config import load_config

    names = list(OBJECTIVES)
    points = {"linear-w25-75": [0.25, 0.75], "linear-w100-0": [1.0, 0.0]}

    def oracle(run, model, batch, metrics):  # DPO_i + lambda NLL_i (RPO), label smoothing 0.1, lambda 0.5
        each = [float(dpo_losses(model, batch[n], 0.3, label_smoothing=0.1).mean())
                + 0.5 * chosen_nll_per_token(model, batch[n]) for n in names]
        w = points[run.name]
        return {"loss": sum(a * b for a, b in zip(w, each)), "w_reversed": sum(a * b for a, b in zip(w[::-1], each))}

    path = write_config(tmp_path / "ls.yaml", tiny_base, pref_jsonl, tmp_path / "run", grid=list(points.values()),
                        train={"learning_rate": 5e-2, "max_steps": 3, "batch_size": 3, "beta": 0.3,
                               "label_smoothing": 0.1, "sft_weight": 0.5})
    rec = record_runs(monkeypatch, oracle)
    linear_dpo.train(load_config(linear_dpo.LinearDPOConfig, str(path)))
    assert rec.names() == list(points)
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base, _ = load_base(str(tiny_base))
    for run in rec.runs:
        w = points[run.name]
        assert all(set(row) == set(names) for row in run.rows)
        for n in names:
            assert sorted((r[n]["prompt"], r[n]["chosen"].strip(), r[n]["rejected"].strip()) for r in run.rows) == \
                sorted(PAIRS[n])
        for step in run.steps:
            for n in names:
                assert set(pair_texts(tok, step.batch[n])) <= set(PAIRS[n])
            assert nearly(step.loss, step.expected["loss"]), (run.name, step.loss, step.expected)
            assert step.metrics["loss"] == pytest.approx(step.loss)
        torch.testing.assert_close(run.start_logits, probe_logits(base))
        assert {(c.kwargs["beta"], c.kwargs["label_smoothing"]) for c in rec.calls_of("dpo_loss", run.name)} == \
            {(0.3, 0.1)}
        kept = [v for v in w if v != 0.0]
        scalarised = rec.calls_of("scalarise", run.name)
        assert len(scalarised) == 3 and all(c.args[1].tolist() == kept and c.args[2] == "linear" for c in scalarised)
        assert len(rec.calls_of("dpo_loss", run.name)) == 3 * len(kept)
    assert max(abs(s.expected["loss"] - s.expected["w_reversed"]) for s in rec["linear-w25-75"].steps) > 1e-3


def test_a_default_grid_the_interpolating_gate_and_bad_settings(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError, load_config

    def cfg(**extra):
        path = write_config(tmp_path / "ls.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                            train={"max_steps": 1, "batch_size": 6}, **extra)
        return load_config(linear_dpo.LinearDPOConfig, str(path))

    with pytest.raises(ConfigError, match=r"^gate_mode must be 'nearest' or 'interpolate', got 'both'$"):
        cfg(gate_mode="both")
    with pytest.raises(ConfigError, match="must lie on the simplex"):
        cfg(grid=[[0.5, 0.6]])
    with pytest.raises(ConfigError, match=r"^grid_resolution must be at least 1, got 0$"):  # at load, not at train
        cfg(grid_resolution=0)
    rec = record_runs(monkeypatch)
    family_dir = linear_dpo.train(cfg(gate_mode="interpolate", grid_resolution=2))
    assert rec.names() == ["linear-w100-0", "linear-w50-50", "linear-w0-100"]
    m = Family.load(family_dir).manifest
    assert m.gate.mode == "interpolate" and m.gate.points == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    assert m.description == "Linear-scalarised DPO: one LoRA adapter per grid point (3), gate: interpolate trained point"


def test_a_pairs_budget_gives_every_point_the_same_pairs(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """budget: pairs trains a point mixing m objectives max_steps // m steps (each step draws batch_size pairs
    of each), so the middle sees as many pairs as an end; run.json records the steps the point trained."""
    import json

    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError, load_config

    def cfg(train=None, **extra):
        path = write_config(tmp_path / "ls.yaml", tiny_base, pref_jsonl, tmp_path / "run", overwrite=True,
                            grid=[[1.0, 0.0], [0.5, 0.5]], train=train or {"max_steps": 4, "batch_size": 2}, **extra)
        return load_config(linear_dpo.LinearDPOConfig, str(path))

    with pytest.raises(ConfigError, match=r"^budget must be 'steps' or 'pairs', got 'tokens'$"):
        cfg(budget="tokens")
    rec = record_runs(monkeypatch)
    linear_dpo.train(cfg(budget="pairs"))
    assert {r.name: len(r.steps) for r in rec.runs} == {"linear-w100-0": 4, "linear-w50-50": 2}
    weighted = {"linear-w100-0": [OBJECTIVES[0]], "linear-w50-50": list(OBJECTIVES)}
    pairs = {r.name: sum(len(s.batch[n]["input_ids"]) // 2 for s in r.steps for n in weighted[r.name])
             for r in rec.runs}
    assert pairs == {"linear-w100-0": 8, "linear-w50-50": 8}
    saved = json.loads((tmp_path / "run" / "adapters" / "linear-w50-50" / "run.json").read_text())
    assert saved["train"]["max_steps"] == 2
    by_epochs = cfg(budget="pairs", train={"max_steps": None, "epochs": 3.0, "batch_size": 2})
    assert linear_dpo.point_train(by_epochs, [0.5, 0.5]).epochs == 1.5
    assert linear_dpo.point_train(by_epochs, [1.0, 0.0]).epochs == 3.0
    assert linear_dpo.point_train(cfg(), [0.5, 0.5]).max_steps == 4  # budget: steps, the default


def test_a_finished_point_is_reused_and_a_changed_one_refused(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """run.json records the point's w, objectives and data: the same settings reuse the adapter, others stop."""
    import json

    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError, load_config

    def cfg(limit=None):
        data = {"source": str(pref_jsonl), **({"limit": limit} if limit else {})}
        path = write_config(tmp_path / "ls.yaml", tiny_base, pref_jsonl, tmp_path / "run", grid=[[0.25, 0.75]],
                            train={"max_steps": 1, "batch_size": 6}, overwrite=True,
                            objectives=[{"name": o, "data": data} for o in OBJECTIVES])
        return load_config(linear_dpo.LinearDPOConfig, str(path))

    linear_dpo.train(cfg())
    saved = json.loads((tmp_path / "run" / "adapters" / "linear-w25-75" / "run.json").read_text())
    assert saved["w"] == [0.25, 0.75] and saved["objectives"] == list(OBJECTIVES)
    assert [d["objective"] for d in saved["data"]] == list(OBJECTIVES)
    rec = record_runs(monkeypatch)
    linear_dpo.train(cfg())
    assert rec.runs == []  # reused, not retrained
    with pytest.raises(ConfigError, match="holds a run made with different settings \\(data\\)"):
        linear_dpo.train(cfg(limit=4))


def test_the_trainer_truncates_as_configured_and_evaluates_the_held_out_pairs(tmp_path, tiny_base, pref_jsonl,
                                                                              monkeypatch):
    import json

    from trainer_spies import record_runs

    from paretoapp.trainers.config import load_config

    data = {"source": str(pref_jsonl), "eval_fraction": 0.34}
    path = write_config(tmp_path / "ls.yaml", tiny_base, pref_jsonl, tmp_path / "run", grid=[[0.5, 0.5]],
                        train={"max_steps": 2, "batch_size": 2, "max_length": 9, "max_prompt_length": 4},
                        objectives=[{"name": o, "data": data} for o in OBJECTIVES])
    rec = record_runs(monkeypatch)
    linear_dpo.train(load_config(linear_dpo.LinearDPOConfig, str(path)))
    run = rec["linear-w50-50"]
    assert len(run.rows) == 4  # six pairs per objective, two held out
    for step in run.steps:
        for sub in step.batch.values():
            real = sub["attention_mask"].sum(-1)
            prompt = real - sub["completion_mask"].sum(-1)
            assert real.max() == 9 and prompt.max() == 4  # cut to max_length, the prompt to max_prompt_length
    final = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["final"] and {"eval_loss", "eval_helpful/loss", "eval_harmless/loss"} <= set(final)
