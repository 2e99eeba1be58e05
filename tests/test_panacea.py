"""Panacea end to end on a tiny model, the preference block at the vertices, and both aggregations."""

from __future__ import annotations

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


def test_vertex_reduces_to_stated_form(panacea_run, tiny_base):
    """At w = e_i the bank's delta is c (U_r diag(sigma) V_r^T + s u_{r+i} v_{r+i}^T), by hand from the saved layers."""
    run, family_dir = panacea_run
    layers, meta = panacea.load_svd_lora(run / "panacea" / "adapter")
    r, c = meta["r"], meta["scaling"]
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
    panacea.inject_svd_lora(model, ["q_proj", "v_proj"], r, 2, meta["alpha"])
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


def test_linear_and_tchebycheff_losses_match_hand_computation(tiny_base):
    tok = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    torch.manual_seed(1)
    panacea.inject_svd_lora(model, ["q_proj", "v_proj"], 2, 2, 4.0)
    with torch.no_grad():  # a non-zero adapter, so policy != reference
        for layer in panacea.svd_layers(model).values():
            layer.U.mul_(20), layer.V.mul_(20), layer.sigma.fill_(0.7), layer.s.fill_(-1.3)
    names = list(OBJECTIVES)
    rows = [{n: {"prompt": PAIRS[n][j][0], "chosen": " " + PAIRS[n][j][1], "rejected": " " + PAIRS[n][j][2]}
             for n in names} for j in range(2)]
    batch = MultiObjectiveCollator(tok, names, max_length=64)(rows)
    w = torch.tensor([0.3, 0.7])
    beta = 0.5

    def hand_dpo(sub):
        with torch.no_grad():
            panacea.set_preference(model, w)
            pol = sequence_logprobs(model, sub)
            with panacea.svd_disabled(model):
                ref = sequence_logprobs(model, sub)
        pc, pr = pol.chunk(2)
        rc, rr = ref.chunk(2)
        return float((-F.logsigmoid(beta * ((pc - rc) - (pr - rr)))).mean())

    L = [hand_dpo(batch[n]) for n in names]
    assert abs(L[0] - L[1]) > 1e-4  # the two objectives disagree, so max and sum differ
    ls, _ = panacea.panacea_loss(model, batch, w, names, beta, "linear")
    assert ls.item() == pytest.approx(0.3 * L[0] + 0.7 * L[1], rel=1e-5)
    z = [0.1, 0.2]
    tch, _ = panacea.panacea_loss(model, batch, w, names, beta, "tchebycheff", ideal=z)
    assert tch.item() == pytest.approx(max(0.3 * (L[0] - z[0]), 0.7 * (L[1] - z[1])), rel=1e-5)
    tch.backward()  # Tchebycheff's gradient reaches the trainable layers
    assert any(layer.s.grad is not None and layer.s.grad != 0 for layer in panacea.svd_layers(model).values())


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
