"""UPO: the loss is DPO at auxiliary weight 0 and DPO minus the advantage-weighted likelihood otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from trainer_checks import adapter_delta, assert_deltas_close, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config

from paretoapp.family import Family
from paretoapp.trainers import upo
from paretoapp.trainers.config import load_config
from paretoapp.trainers.lora import LoraSettings, attach_lora, load_base
from paretoapp.trainers.losses import dpo_batch_loss, sequence_logprobs
from paretoapp.trainers.objective_adapter import train_objective_adapter


def shortness(prompts, responses):
    """Designer objective for the tests: shorter answers score higher."""
    return [-float(len(r)) for r in responses]


def _cfg(tmp, tiny_base, pref_jsonl, **extra):
    path = write_config(tmp / "upo.yaml", tiny_base, pref_jsonl, tmp / "run",
                        objectives=[{"name": "helpful", "data": {"source": str(pref_jsonl)}}],
                        auxiliary=[{"name": "short", "scorer": "length_words", "higher_is_better": False}],
                        grid=[[1.0, 0.0], [0.0, 1.0]], gamma=2.0, train={"max_steps": 2, "batch_size": 3}, **extra)
    return path


@pytest.fixture(scope="module")
def upo_run(tmp_path_factory, tiny_base, pref_jsonl):
    tmp = tmp_path_factory.mktemp("upo")
    path = _cfg(tmp, tiny_base, pref_jsonl)
    return load_config(upo.UPOConfig, str(path)), upo.main(["--config", str(path)])


def _model_and_batch(tiny_base):
    model, tok = load_base(str(tiny_base))
    torch.manual_seed(0)
    model = attach_lora(model, LoraSettings(r=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    pairs = [{"prompt": p, "chosen": " " + c, "rejected": " " + r} for p, c, r in PAIRS["helpful"][:3]]
    pairs = upo.score_pairs(pairs, [upo._Directed(shortness, True), upo._Directed(shortness, False)])
    return model, upo.UPOCollator(tok, max_length=64)(pairs)


def test_loss_is_dpo_when_auxiliary_weight_is_zero(tiny_base):
    model, batch = _model_and_batch(tiny_base)
    want = dpo_batch_loss(model, batch, beta=0.1).loss
    loss, pref, _ = upo.upo_loss(model, batch, c=[1.0, 0.0], gamma=0.0, beta=0.1)
    assert loss.item() == want.item() and pref.loss.item() == want.item()
    # gamma > 0: DPO minus gamma * sum_b softmax_b(A / tau) * mean log pi(y_b | x_b), by hand
    gamma, tau, c = 0.7, 0.5, [0.3, 0.7]
    loss, _, _ = upo.upo_loss(model, batch, c=c, gamma=gamma, tau=tau, beta=0.1)
    with torch.no_grad():
        logp = sequence_logprobs(model, batch, average=True)
    a = batch["aux"] @ torch.tensor(c)
    weights = F.softmax((a - a.mean()) / tau, dim=0)
    assert a.std() > 0 and batch["aux"].shape == (6, 2)
    assert loss.item() == pytest.approx(want.item() - gamma * float((weights * logp).sum()), rel=1e-5)


def test_weights_for_grid_points():
    assert upo.weights_for([1.0, 0.0], 2.0) == (0.0, [0.0])
    gamma, c = upo.weights_for([0.25, 0.5, 0.25], 2.0)
    assert gamma == pytest.approx(1.5) and c == pytest.approx([2 / 3, 1 / 3])


def test_family_vertex_is_plain_dpo(upo_run, tiny_base):
    """w = (1, 0) trains with gamma = 0: the same adapter as plain DPO on the same pairs and seed."""
    cfg, family_dir = upo_run
    m = Family.load(family_dir).manifest
    assert m.method == "upo" and [o.name for o in m.objectives] == ["helpful", "short"]
    assert not m.objectives[1].higher_is_better  # length_words: lower is better for "short"
    assert m.training["weights"]["w100-0"]["gamma"] == 0.0 and m.training["weights"]["w0-100"]["gamma"] == 2.0
    dpo_dir = train_objective_adapter(cfg, cfg.objectives[0], "dpo")
    assert_deltas_close(family_delta(tiny_base, family_dir, [1.0, 0.0]), adapter_delta(tiny_base, dpo_dir), atol=1e-5)
    upo_aux = adapter_delta(tiny_base, cfg.adapters_path / "upo-w0-100" / "adapter")
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.0, 1.0]), upo_aux)


def test_family_generates_per_row(upo_run):
    from paretoapp.generate import GenerationSettings, load_policy
    policy = load_policy(upo_run[1])
    out = policy.generate(["Hi.", "Hi."], [[1.0, 0.0], [0.4, 0.6]], GenerationSettings(max_new_tokens=3))
    assert len(out) == 2


def test_callable_scorers(tmp_path, tiny_base, pref_jsonl):
    path = _cfg(tmp_path, tiny_base, pref_jsonl, adapters_dir=str(tmp_path / "ad"))
    cfg = load_config(upo.UPOConfig, str(path))
    cfg.grid = [[0.0, 1.0]]
    cfg.train.max_steps = 1
    family = upo.train(cfg, scorers=[shortness])
    assert Family.load(family).manifest.training["scorers"] == ["length_words"]
