"""Panacea end to end on a tiny model, the preference block at the vertices, and both aggregations."""

from __future__ import annotations

import contextlib
import json
import logging
import re

import pytest
import torch
import torch.nn.functional as F
from trainer_checks import base_state, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import OBJECTIVES, PAIRS, write_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from paretoapp.family import Family
from paretoapp.trainers import panacea
from paretoapp.trainers.losses import sequence_logprobs
from paretoapp.trainers.multi_objective import MultiObjectiveCollator


@pytest.fixture(scope="module")
def panacea_run(tmp_path_factory, tiny_base, pref_jsonl):
    out = tmp_path_factory.mktemp("panacea")
    cfg = write_config(out / "p.yaml", tiny_base, pref_jsonl, out / "run", aggregation="tchebycheff",
                       vertex_prob=0.5, train={"max_steps": 3, "batch_size": 2, "learning_rate": 2e-2})
    family_dir = panacea.main(["--config", str(cfg)])
    return out / "run", family_dir


def test_family_is_one_svd_adapter_with_a_preference_block(panacea_run):
    run, family_dir = panacea_run
    m = Family.load(family_dir).manifest
    assert m.method == "panacea" and [b.name for b in m.blocks] == ["singular_values", "preference_0", "preference_1"]
    assert [b.rank for b in m.blocks] == [2, 1, 1]
    g = m.rank_gains([[0.3, 0.7]])[0].tolist()
    assert g == pytest.approx([1.0, 1.0, 0.3, 0.7])
    log = (run / "panacea" / "metrics.jsonl").read_text()
    assert '"vertex"' in log and '"w_helpful"' in log
    assert m.on_simplex is True and (m.w_low, m.w_high) == ([0.0, 0.0], [1.0, 1.0])
    assert (m.in_sample_low, m.in_sample_high) == ([0.0, 0.0], [1.0, 1.0])
    assert {k: v for k, v in m.training.items() if k != "config"} == {"adapter": str((run / "panacea" / "adapter").resolve()), "r": 2, "k": 2, "alpha": 4,
                          "scaling": 2.0, "objectives": ["helpful", "harmless"], "target_modules": ["q_proj", "v_proj"],
                          "aggregation": "tchebycheff", "ideal": None}
    assert m.description == ("Panacea: one SVD-LoRA (r=2) with a preference block s*w, tchebycheff aggregation of "
                             "per-objective DPO losses")


def test_vertex_reduces_to_stated_form(panacea_run, tiny_base):
    """At w = e_i the bank's delta is c (U_r diag(sigma) V_r^T + s u_{r+i} v_{r+i}^T), by hand from the saved layers."""
    run, family_dir = panacea_run
    layers, meta = panacea.load_svd_lora(run / "panacea" / "adapter")
    # the config's LoRA (r = 2, alpha = 4), not the saved meta alone: the family takes its c from the meta
    assert meta == {"r": 2, "k": 2, "alpha": 4, "scaling": 2.0, "objectives": list(OBJECTIVES),
                    "target_modules": ["q_proj", "v_proj"]}
    r, c = 2, 4 / 2
    assert any(p["sigma"].abs().max() > 0 for p in layers.values()), "sigma did not train"
    assert any(p["s"].abs() > 0 for p in layers.values()), "the preference scale s did not train"
    for i, w in enumerate(([1.0, 0.0], [0.0, 1.0])):
        got = family_delta(tiny_base, family_dir, w)
        for module, p in layers.items():
            U, V, sigma, s = p["U"], p["V"], p["sigma"], p["s"]
            want = c * ((U[:, :r] * sigma) @ V[:, :r].T + s * torch.outer(U[:, r + i], V[:, r + i]))
            torch.testing.assert_close(got[f"{module}.weight"], want, atol=1e-6, rtol=1e-5)
    # the training layer computes the same model as the bank at an interior w
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    panacea.inject_svd_lora(model, ["q_proj", "v_proj"], r, 2, 4.0)
    with torch.no_grad():
        for name, layer in panacea.svd_layers(model).items():
            for key in ("U", "V", "sigma", "s"):
                getattr(layer, key).copy_(layers[name][key])
        panacea.set_preference(model, [0.25, 0.75])
        theta0 = base_state(tiny_base)
        bank = family_delta(tiny_base, family_dir, [0.25, 0.75])
        for name, layer in panacea.svd_layers(model).items():
            torch.testing.assert_close(layer.delta_weight(), bank[f"{name}.weight"], atol=1e-6, rtol=1e-5)
        assert set(bank) == set(theta0)


def _nonzero_model_and_batch(tiny_base):
    """A Panacea model whose adapter is far from zero (policy != reference) and a two-objective batch."""
    tok = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    torch.manual_seed(1)
    panacea.inject_svd_lora(model, ["q_proj", "v_proj"], 2, 2, 4.0)
    with torch.no_grad():
        for layer in panacea.svd_layers(model).values():
            layer.U.mul_(20), layer.V.mul_(20), layer.sigma.fill_(0.7), layer.s.fill_(-1.3)
    names = list(OBJECTIVES)
    rows = [{n: {"prompt": PAIRS[n][j][0], "chosen": " " + PAIRS[n][j][1], "rejected": " " + PAIRS[n][j][2]}
             for n in names} for j in range(2)]
    return model, MultiObjectiveCollator(tok, names, max_length=64)(rows), names


def test_linear_and_tchebycheff_losses_match_hand_computation(tiny_base):
    model, batch, names = _nonzero_model_and_batch(tiny_base)
    w = torch.tensor([0.3, 0.7])
    beta = 0.5

    def hand_dpo(sub, eps=0.0):
        with torch.no_grad():
            panacea.set_preference(model, w)
            pol = sequence_logprobs(model, sub)
            with panacea.svd_disabled(model):
                ref = sequence_logprobs(model, sub)
        pc, pr = pol.chunk(2)
        rc, rr = ref.chunk(2)
        h = beta * ((pc - rc) - (pr - rr))
        return float((-(1 - eps) * F.logsigmoid(h) - eps * F.logsigmoid(-h)).mean())

    L = [hand_dpo(batch[n]) for n in names]
    assert abs(L[0] - L[1]) > 1e-4  # the two objectives disagree, so max and sum differ
    ls, _ = panacea.panacea_loss(model, batch, w, names, beta, "linear")
    assert ls.item() == pytest.approx(0.3 * L[0] + 0.7 * L[1], rel=1e-5)
    z = [0.1, 0.2]
    tch, _ = panacea.panacea_loss(model, batch, w, names, beta, "tchebycheff", ideal=z)
    assert tch.item() == pytest.approx(max(0.3 * (L[0] - z[0]), 0.7 * (L[1] - z[1])), rel=1e-5)
    # the adaptive ideal is a function of the batch's losses: here z_i = L_i - 0.05, so the max is 0.7 * 0.05
    ada, _ = panacea.panacea_loss(model, batch, w, names, beta, "tchebycheff",
                                  ideal=lambda losses: (losses.detach() - 0.05).tolist())
    assert ada.item() == pytest.approx(0.7 * 0.05, rel=1e-4)
    # label smoothing (conservative DPO) reaches every objective's term
    smooth, _ = panacea.panacea_loss(model, batch, w, names, beta, "linear", label_smoothing=0.2)
    assert smooth.item() == pytest.approx(0.3 * hand_dpo(batch[names[0]], 0.2) + 0.7 * hand_dpo(batch[names[1]], 0.2),
                                          rel=1e-5)
    # RPO (train.sft_weight): each objective's term is DPO + lambda * NLL per token of its chosen answers
    def nll(sub):
        with torch.no_grad():
            chosen = sequence_logprobs(model, sub).chunk(2)[0]
        tokens = sub["completion_mask"][: len(chosen), 1:].sum(-1).float()
        return float((-chosen / tokens).mean())

    rpo, _ = panacea.panacea_loss(model, batch, w, names, beta, "linear", sft_weight=0.5)
    assert nll(batch[names[0]]) > 0.1
    assert rpo.item() == pytest.approx(sum(wi * (L[i] + 0.5 * nll(batch[n]))
                                           for i, (wi, n) in enumerate(zip([0.3, 0.7], names))), rel=1e-5)
    tch.backward()  # Tchebycheff's gradient reaches the trainable layers
    assert any(layer.s.grad is not None and layer.s.grad != 0 for layer in panacea.svd_layers(model).values())


@pytest.mark.parametrize("aggregation", ["linear", "tchebycheff"])
def test_the_loss_trains_at_the_w_it_is_given(tiny_base, aggregation):
    """Another w already in the layers: at w = e_1 the loss still puts zero gradient on objective 2's column."""
    model, batch, names = _nonzero_model_and_batch(tiny_base)
    layers = panacea.svd_layers(model)
    r = next(iter(layers.values())).r
    panacea.set_preference(model, [0.4, 0.6])
    loss, _ = panacea.panacea_loss(model, batch, torch.tensor([1.0, 0.0]), names, 0.5, aggregation)
    loss.backward()
    for layer in layers.values():
        assert layer.w.tolist() == [1.0, 0.0]
        assert torch.count_nonzero(layer.U.grad[:, r + 1]) == 0 and torch.count_nonzero(layer.V.grad[:, r + 1]) == 0
    assert any(torch.count_nonzero(layer.U.grad[:, r]) > 0 for layer in layers.values())  # objective 1's column trains


def test_training_loss_uses_the_sampled_w(tiny_base, tmp_path, pref_jsonl):
    """The loss the loop calls writes the w it logs into the layers, and trains with it (at the run's beta,
    label smoothing and RPO weight), and logs that loss as ``loss``."""
    from paretoapp.trainers.config import load_config
    model, batch, names = _nonzero_model_and_batch(tiny_base)
    cfg = load_config(panacea.PanaceaConfig, str(write_config(tmp_path / "p.yaml", tiny_base, pref_jsonl,
                                                                tmp_path / "run", vertex_prob=0.0,
                                                                train={"beta": 0.3, "label_smoothing": 0.2,
                                                                       "sft_weight": 0.4})))
    loss_fn = panacea.make_loss_fn(cfg, names)
    torch.manual_seed(3)
    for _ in range(2):
        panacea.set_preference(model, [0.5, 0.5])
        loss, metrics = loss_fn(model, batch)
        w = [metrics[f"w_{n}"] for n in names]
        assert w != pytest.approx([0.5, 0.5])
        for layer in panacea.svd_layers(model).values():
            assert layer.w.tolist() == pytest.approx(w)
        with torch.no_grad():
            want, _ = panacea.panacea_loss(model, batch, torch.tensor(w), names, 0.3, "linear", label_smoothing=0.2,
                                           sft_weight=0.4)
            plain, _ = panacea.panacea_loss(model, batch, torch.tensor(w), names, 0.3, "linear", label_smoothing=0.2)
        assert loss.item() == pytest.approx(want.item(), rel=1e-5) and abs(want.item() - plain.item()) > 1e-4
        assert metrics["loss"] == loss.item()


def test_sample_preference_vertices_and_interior():
    torch.manual_seed(0)
    for _ in range(5):
        w, vertex = panacea.sample_preference(3, vertex_prob=1.0, dirichlet_alpha=1.0)
        assert vertex and sorted(w.tolist()) == [0.0, 0.0, 1.0]
        w, vertex = panacea.sample_preference(3, vertex_prob=0.0, dirichlet_alpha=1.0)
        assert not vertex and w.shape == (3,) and (w > 0).all() and float(w.sum()) == pytest.approx(1.0)
    seen = {int(panacea.sample_preference(2, 1.0, 1.0)[0].argmax()) for _ in range(40)}
    assert seen == {0, 1}  # every vertex is drawn
    # a large alpha concentrates the interior draws at the centre
    w = torch.stack([panacea.sample_preference(2, 0.0, 500.0)[0] for _ in range(20)])
    assert (w - 0.5).abs().max() < 0.1


def test_adaptive_ideal_is_the_running_minimum():
    mon = panacea.TchebycheffMonitor(["a", "b"], "adaptive", margin=0.01)
    assert mon.ideal(torch.tensor([0.7, 0.6])) == pytest.approx([0.69, 0.59])
    assert mon.ideal(torch.tensor([0.5, 0.8])) == pytest.approx([0.49, 0.59])
    assert mon.ideal(torch.tensor([0.1, 0.1]), training=False) == pytest.approx([0.49, 0.59])  # eval: no update
    assert mon.ideal(torch.tensor([0.6, 0.4])) == pytest.approx([0.49, 0.39])
    fixed = panacea.TchebycheffMonitor(["a", "b"], [0.3, 0.2])
    assert fixed.ideal(torch.tensor([0.1, 0.1])) == [0.3, 0.2]
    # clamped: a zero-weight objective's 0 term wins the max
    assert panacea.is_clamped([1.0, 0.0], [0.5, 0.9], [0.6, 0.0])
    assert not panacea.is_clamped([1.0, 0.0], [0.7, 0.9], [0.6, 0.0])
    assert not panacea.is_clamped([0.5, 0.5], [0.1, 0.1], [0.6, 0.6])  # interior: a weighted term always wins
    assert not panacea.is_clamped([1.0, 0.0], [0.5, 0.9], None) and panacea.is_clamped([0.0, 1.0], [0.1, -0.2], None)
    assert not panacea.is_clamped([1.0, 0.0], [0.5, 0.9], [0.5, 0.0])  # L = z: a tie, the weighted term still counts


def test_svd_layer_with_a_w_per_row_is_each_row_at_its_own_w():
    """diag() [batch, r+k] for per-row w: each row's output is the layer's output at that row's w alone."""
    torch.manual_seed(0)
    layer = panacea.SVDLoRALinear(torch.nn.Linear(4, 3), r=2, k=2, scaling=1.5, init_std=0.5)
    with torch.no_grad():
        layer.sigma.copy_(torch.tensor([0.7, -0.4]))
        layer.s.fill_(2.0)
    x = torch.randn(3, 5, 4)  # [batch, tokens, features]: three rows, two objectives
    ws = [[1.0, 0.0], [0.2, 0.8], [0.5, 0.5]]
    layer.w = torch.tensor(ws)
    assert torch.allclose(layer.diag(), torch.tensor([[0.7, -0.4, 2.0, 0.0], [0.7, -0.4, 0.4, 1.6],
                                                      [0.7, -0.4, 1.0, 1.0]]))
    per_row = layer(x)
    for i, w in enumerate(ws):
        layer.w = torch.tensor(w)
        assert torch.allclose(per_row[i], layer(x[i : i + 1])[0], atol=1e-6)
        u, v = layer.U.detach(), layer.V.detach()
        by_hand = layer.base_layer(x[i]) + 1.5 * (x[i] @ v) * layer.diag().detach() @ u.T
        assert torch.allclose(per_row[i], by_hand, atol=1e-6)


def test_monitor_reports_a_vertex_clamped_all_epoch(caplog):
    mon = panacea.TchebycheffMonitor(["a", "b"], [0.5, 0.5])
    assert mon.ideal(torch.tensor([0.3, 0.9])) == [0.5, 0.5]
    assert mon.observe([1.0, 0.0], [0.3, 0.9]) is True            # L_a < z_a at e_a: clamped
    assert mon.observe(torch.tensor([1.0, 0.0]), [0.4, 0.1]) is True
    assert mon.observe([0.0, 1.0], [0.1, 0.7]) is False          # L_b > z_b at e_b: trains
    assert mon.observe([0.0, 1.0], [0.1, 0.2]) is True           # once clamped is not a whole epoch
    assert mon.observe([0.5, 0.5], [0.1, 0.1]) is False          # interior: never clamped
    with caplog.at_level(logging.WARNING, logger="paretoapp.trainers.panacea"):
        records = mon.on_epoch_end(3)
    assert records == [{"event": "tchebycheff_clamped", "objective": "a", "batches": 2, "ideal": 0.5}]
    assert len(caplog.messages) == 1 and "'a'" in caplog.messages[0] and "epoch 3 (2)" in caplog.messages[0]
    assert mon.on_epoch_end(4) == []  # counts start afresh each epoch
    assert mon.observe([1.0, 0.0], [0.6, 0.0]) is False and mon.on_epoch_end(5) == []
    assert panacea.TchebycheffMonitor(["a", "b"]).on_epoch_end(0) == []
    none = panacea.TchebycheffMonitor(["a", "b"])  # z = 0: clamped only below a zero loss
    none.observe([1.0, 0.0], [-0.1, 0.0])
    assert none.on_epoch_end(0) == [{"event": "tchebycheff_clamped", "objective": "a", "batches": 1, "ideal": 0.0}]


def _tchebycheff_run(tmp, tiny_base, pref_jsonl, ideal):
    tmp.mkdir()
    path = write_config(tmp / "p.yaml", tiny_base, pref_jsonl, tmp / "run", aggregation="tchebycheff", ideal=ideal,
                        vertex_prob=1.0, train={"max_steps": None, "epochs": 1, "batch_size": 2,
                                                "learning_rate": 2e-2})
    panacea.main(["--config", str(path)])
    run = tmp / "run" / "panacea"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    layers, _ = panacea.load_svd_lora(run / "adapter")
    return records, layers


def test_clamped_vertex_warns_and_adaptive_ideal_trains(tmp_path, tiny_base, pref_jsonl, caplog):
    """An ideal point above every reachable DPO loss: each vertex batch is clamped, nothing trains, and the
    run says so; the adaptive ideal point trains the same run."""
    with caplog.at_level(logging.WARNING, logger="paretoapp.trainers.panacea"):
        records, layers = _tchebycheff_run(tmp_path / "fixed", tiny_base, pref_jsonl, [5.0, 5.0])
    clamped = [r for r in records if r.get("event") == "tchebycheff_clamped"]
    assert clamped and {r["objective"] for r in clamped} <= set(OBJECTIVES)
    assert all(r["epoch"] == 0 and r["batches"] >= 1 and r["ideal"] == 5.0 for r in clamped)
    assert any("no gradient" in m for m in caplog.messages)
    assert all(float(p["s"]) == 0 and not p["sigma"].any() for p in layers.values())  # silently untrained
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paretoapp.trainers.panacea"):
        records, layers = _tchebycheff_run(tmp_path / "adaptive", tiny_base, pref_jsonl, "adaptive")
    assert not [r for r in records if r.get("event") == "tchebycheff_clamped"] and not caplog.messages
    logged = [r for r in records if "ideal_helpful" in r]
    assert logged and all(r["clamped"] == 0.0 for r in logged)
    assert any(float(p["s"]) != 0 for p in layers.values())


def test_fresh_layer_is_the_base_and_family_generates_per_row(panacea_run, tiny_base):
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        panacea.inject_svd_lora(model, ["q_proj", "v_proj"], 2, 2, 4.0)
        panacea.set_preference(model, [1.0, 0.0])
        torch.testing.assert_close(model(input_ids=ids).logits, before)  # sigma = s = 0: delta is 0
    from paretoapp.generate import GenerationSettings, load_policy
    _, family_dir = panacea_run
    policy = load_policy(family_dir)
    out = policy.generate(["Name a colour.", "Name a colour."], [[1.0, 0.0], [0.0, 1.0]],
                          GenerationSettings(max_new_tokens=4))
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


@contextlib.contextmanager
def _layers_off(model):
    layers = [m for m in model.modules() if isinstance(m, panacea.SVDLoRALinear)]
    for m in layers:
        m.enabled = False
    try:
        yield
    finally:
        for m in layers:
            m.enabled = True


@pytest.mark.parametrize("aggregation, ideal", [("linear", None), ("tchebycheff", [0.05, 0.1])])
def test_the_trainer_trains_each_batch_at_its_sampled_w(tmp_path, tiny_base, pref_jsonl, monkeypatch, aggregation,
                                                        ideal):
    """The trainer itself: each batch's loss is the aggregation, at the w the batch sampled, of DPO (train.beta,
    reference theta_0) on each objective's own pairs; the adapter starts at theta_0."""
    from trainer_spies import dpo_losses, nearly, pair_texts, probe_logits, record_runs

    from paretoapp.trainers.config import load_config

    names = list(OBJECTIVES)

    def aggregate(w, each):
        z = ideal or [0.0, 0.0]
        terms = [a * (b - c) for a, b, c in zip(w, each, z)]
        return sum(terms) if aggregation == "linear" else max(terms)

    def oracle(run, model, batch, metrics):
        w = [metrics[f"w_{n}"] for n in names]
        layers = [m for m in model.modules() if isinstance(m, panacea.SVDLoRALinear)]
        written = [m.w for m in layers]
        for m in layers:
            m.w = torch.tensor(w, dtype=m.w.dtype)
        each = [float(dpo_losses(model, batch[n], 0.3, reference=_layers_off).mean()) for n in names]
        for m, old in zip(layers, written):
            m.w = old
        return {"loss": aggregate(w, each), "w_reversed": aggregate(w[::-1], each), "w": w}

    extra = {"ideal": ideal} if ideal else {}
    path = write_config(tmp_path / "p.yaml", tiny_base, pref_jsonl, tmp_path / "run", aggregation=aggregation,
                        vertex_prob=0.25, train={"learning_rate": 5e-2, "max_steps": 4, "batch_size": 3, "beta": 0.3},
                        **extra)
    rec = record_runs(monkeypatch, oracle)
    family_dir = panacea.train(load_config(panacea.PanaceaConfig, str(path)))
    run = rec["panacea"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    for n in names:
        assert sorted((r[n]["prompt"], r[n]["chosen"].strip(), r[n]["rejected"].strip()) for r in run.rows) == \
            sorted(PAIRS[n])
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    torch.testing.assert_close(run.start_logits, probe_logits(base))
    scalarised = rec.calls_of("scalarise", "panacea")
    assert len(run.steps) == len(scalarised) == 4
    for step, call in zip(run.steps, scalarised):
        for n in names:
            assert set(pair_texts(tok, step.batch[n])) <= set(PAIRS[n])
        assert call.args[1].tolist() == pytest.approx(step.expected["w"]) and call.args[2] == aggregation
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    assert {c.kwargs["beta"] for c in rec.calls_of("dpo_loss", "panacea")} == {0.3}
    assert len({tuple(s.expected["w"]) for s in run.steps}) > 1  # w changes from batch to batch
    assert max(abs(s.expected["loss"] - s.expected["w_reversed"]) for s in run.steps) > 1e-3
    recorded = Family.load(family_dir).manifest.training  # the ideal point is a setting of Tchebycheff only
    assert recorded["aggregation"] == aggregation and recorded.get("ideal", "none") == (ideal or "none")


def test_truncation_held_out_pairs_init_std_and_a_changed_run_refused(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """The run: the configured truncation on every objective's pairs, the held-out pairs evaluated (not trained
    on), U and V drawn at ``init_std``; a finished run is reused with the same settings and refused with any
    setting of its recipe changed (``ideal_margin`` only under the adaptive ideal); ``use_rslora`` refused."""
    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError, load_config
    from paretoapp.trainers.data import DataSpec, train_eval_pairs

    held = {"source": str(pref_jsonl), "eval_fraction": 0.34}

    def config(out="run", **extra):
        settings = {"aggregation": "tchebycheff", "ideal": "adaptive", "init_std": 0.5, "overwrite": True,
                    "objectives": [{"name": o, "data": held} for o in OBJECTIVES],
                    "train": {"max_steps": 2, "batch_size": 2, "max_length": 9, "max_prompt_length": 4,
                              "learning_rate": 1e-4}, **extra}
        path = write_config(tmp_path / "p.yaml", tiny_base, pref_jsonl, tmp_path / out, **settings)
        return load_config(panacea.PanaceaConfig, str(path))

    rec = record_runs(monkeypatch)
    panacea.train(config())
    run = rec["panacea"]
    batches = [s.batch[n] for s in run.steps for n in OBJECTIVES]
    real = torch.cat([b["attention_mask"].sum(-1) for b in batches])
    prompt = real - torch.cat([b["completion_mask"].sum(-1) for b in batches])
    assert real.max() == 9 and prompt.max() == 4
    want = [train_eval_pairs(DataSpec(source=str(pref_jsonl), eval_fraction=0.34, objective=o), 0) for o in OBJECTIVES]
    for o, (train_pairs, held_out) in zip(OBJECTIVES, want):
        assert [r[o]["prompt"] for r in run.eval_rows] == [p["prompt"] for p in held_out]
        assert sorted(r[o]["prompt"] for r in run.rows) == sorted(p["prompt"] for p in train_pairs)
    layers, _ = panacea.load_svd_lora(tmp_path / "run" / "panacea" / "adapter")
    for factor in ("U", "V"):  # both drawn at init_std
        assert 0.4 < float(torch.cat([p[factor].flatten() for p in layers.values()]).std()) < 0.6

    panacea.train(config())
    assert len(rec.runs) == 1  # reused
    other_data = [{"name": o, "data": {**held, "eval_fraction": 0.5}} for o in OBJECTIVES]
    for changed in (dict(aggregation="linear"), dict(ideal=[0.1, 0.1]), dict(vertex_prob=0.3),
                    dict(dirichlet_alpha=2.0), dict(init_std=0.1), dict(ideal_margin=0.05), dict(objectives=other_data)):
        with pytest.raises(ConfigError, match=r"different settings") as err:
            panacea.train(config(**changed))
        key = "data" if "objectives" in changed else next(iter(changed))
        named = re.search(r"different settings \(([^)]*)\)", str(err.value)).group(1).split(", ")
        assert key in named  # the refusal names the setting that changed
    fixed = dict(out="fixed", ideal=[0.05, 0.1], train={"max_steps": 1})
    panacea.train(config(**fixed))
    panacea.train(config(**fixed, ideal_margin=0.05))  # the margin is no setting of a run with a fixed ideal
    assert len(rec.runs) == 2
    with pytest.raises(ConfigError) as e:
        panacea.train(config(out="rs", lora={"use_rslora": True}))
    assert str(e.value) == "Panacea's SVD-LoRA uses c = alpha / r; set lora.use_rslora: false"


def test_the_loss_monitors_only_tchebycheff_training_batches_and_bad_settings_are_named(tmp_path, tiny_base,
                                                                                        pref_jsonl):
    """The monitor exists for Tchebycheff only, with the configured margin, and an evaluation batch never
    moves the adaptive ideal point; each bad setting is refused with its message and the edges accepted."""
    from paretoapp.trainers.config import ConfigError, load_config

    def config(**extra):
        return load_config(panacea.PanaceaConfig, str(write_config(tmp_path / "p.yaml", tiny_base, pref_jsonl,
                                                                   tmp_path / "run", **extra)))

    names = list(OBJECTIVES)
    assert panacea.PanaceaLoss(config(aggregation="linear"), names).monitor is None
    loss_fn = panacea.PanaceaLoss(config(aggregation="tchebycheff", ideal="adaptive", ideal_margin=0.2,
                                         vertex_prob=1.0), names)  # every batch a vertex: each one is counted
    assert loss_fn.monitor.margin == 0.2
    model, batch, _ = _nonzero_model_and_batch(tiny_base)
    model.eval()
    with torch.no_grad():
        loss_fn(model, batch)
    assert loss_fn.monitor.running_min is None  # an evaluation batch: z from its losses, the minimum untouched
    assert loss_fn.monitor.seen == [0, 0]       # ... and it is not counted towards the epoch's clamp warning
    model.train()
    _, metrics = loss_fn(model, batch)
    assert loss_fn.monitor.running_min == pytest.approx([metrics[f"{n}/loss"] for n in names], abs=1e-6)
    assert sum(loss_fn.monitor.seen) == 1
    # an evaluation batch's clamp flag is read against the run's ideal point: a fixed one above every loss
    # clamps a vertex batch (the flag is logged, never trained from)
    above = panacea.PanaceaLoss(config(aggregation="tchebycheff", ideal=[100.0, 100.0], vertex_prob=1.0), names)
    model.eval()
    with torch.no_grad():
        _, metrics = above(model, batch)
    assert metrics["clamped"] == 1.0 and above.monitor.seen == [0, 0]

    for bad, message in ((dict(aggregation="sum"), "aggregation must be one of ('linear', 'tchebycheff'), got 'sum'"),
                         (dict(ideal="lowest"), "ideal must be a list (one value per objective) or 'adaptive', "
                                                "got 'lowest'"),
                         (dict(ideal=[0.1]), "ideal needs one value per objective (2), got [0.1]"),
                         (dict(ideal_margin=-0.1), "ideal_margin must be >= 0, got -0.1"),
                         (dict(vertex_prob=1.5), "need 0 <= vertex_prob <= 1 and dirichlet_alpha > 0"),
                         (dict(dirichlet_alpha=0.0), "need 0 <= vertex_prob <= 1 and dirichlet_alpha > 0")):
        with pytest.raises(ConfigError) as e:
            config(**bad)
        assert str(e.value) == message
    edge = dict(ideal_margin=0.0, vertex_prob=1.0)
    assert all(getattr(config(**edge), k) == v for k, v in edge.items())
    assert config(vertex_prob=0.0).vertex_prob == 0.0
    with pytest.raises(FileNotFoundError) as e:
        panacea.load_svd_lora(tmp_path)
    assert str(e.value) == f"{tmp_path}: no {panacea.WEIGHTS_FILE}; pass the 'adapter' folder of a Panacea run"


def test_injection_wraps_exactly_the_named_linear_layers_and_trains_only_them(tiny_base, tmp_path):
    """``inject_svd_lora``: every linear layer whose own name is a target (a list or one string) and nothing
    else (not a non-linear module of that name, not the output head); the base frozen, only U, V, sigma, s
    trainable; a target list that names no linear layer is one line; saved factors are float32 whatever the
    model's dtype."""
    from safetensors.torch import load_file

    from paretoapp.trainers.config import ConfigError

    def fresh(dtype=torch.float32):
        return AutoModelForCausalLM.from_pretrained(tiny_base, dtype=dtype)

    model = fresh()
    n_layers = model.config.num_hidden_layers
    layers = panacea.inject_svd_lora(model, ["q_proj", "v_proj"], r=2, k=2, alpha=4.0)
    assert sorted(layers) == sorted(f"model.layers.{i}.self_attn.{p}" for i in range(n_layers)
                                    for p in ("q_proj", "v_proj"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # w is a per-call setting, not a weight: the simplex's centre until set, and never in the state dict
    assert all(layer.w.tolist() == [0.5, 0.5] for layer in layers.values())
    assert not any(key.endswith(".w") for key in model.state_dict())
    assert trainable and all(n.rsplit(".", 1)[-1] in ("U", "V", "sigma", "s") for n in trainable)
    assert sorted(panacea.inject_svd_lora(fresh(), "o_proj", r=2, k=2, alpha=4.0)) == \
        [f"model.layers.{i}.self_attn.o_proj" for i in range(n_layers)]
    for targets in (["self_attn"], ["nothing_here"]):  # a module of that name that is not linear, or none at all
        with pytest.raises(ConfigError) as err:
            panacea.inject_svd_lora(fresh(), targets, r=2, k=2, alpha=4.0)
        assert str(err.value) == (f"no linear layer of the base model is named one of {sorted(targets)}; set "
                                  "lora.target_modules to the model's layer names (e.g. q_proj, v_proj)")
    with pytest.raises(TypeError, match="^SVD-LoRA wraps nn.Linear or Conv1D layers, got Embedding$"):
        panacea.SVDLoRALinear(torch.nn.Embedding(4, 4), r=2, k=2, scaling=1.0)
    bf16 = fresh(torch.bfloat16)
    panacea.inject_svd_lora(bf16, ["q_proj"], r=2, k=2, alpha=4.0)
    saved = load_file(str(panacea.save_svd_lora(bf16, tmp_path / "a", {"r": 2}) / panacea.WEIGHTS_FILE))
    assert saved and {t.dtype for t in saved.values()} == {torch.float32}


def test_a_conv1d_layer_is_wrapped_as_its_linear_twin():
    """GPT-2's ``Conv1D`` stores its weight as (in, out): the SVD-LoRA layer reads the shape the right way round,
    so it computes what the same layer as an ``nn.Linear`` (weight transposed) computes, at every w."""
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    conv = Conv1D(6, 4)  # 4 in, 6 out
    linear = torch.nn.Linear(4, 6)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.T)
        linear.bias.copy_(conv.bias)
    a, b = (panacea.SVDLoRALinear(layer, r=2, k=2, scaling=1.5) for layer in (conv, linear))
    assert a.U.shape == b.U.shape == (6, 4) and a.V.shape == b.V.shape == (4, 4)
    with torch.no_grad():
        for name in ("U", "V"):
            getattr(b, name).copy_(getattr(a, name))
        for layer in (a, b):
            layer.sigma.fill_(0.7)
            layer.s.fill_(1.3)
    x = torch.randn(3, 4)
    for w in ([1.0, 0.0], [0.3, 0.7]):
        a.w = b.w = torch.tensor(w)
        torch.testing.assert_close(a(x), b(x))
    assert not torch.allclose(a(x), conv(x))  # the low-rank term is on
