"""PEO end to end: experts, the interpolated generalist, and the searched anchors family."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch
from trainer_checks import adapter_delta, assert_deltas_close, base_state, family_delta
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from paretoapp.bank import PreferenceBank
from paretoapp.family import Family
from paretoapp.trainers import peo
from paretoapp.trainers.config import ConfigError, load_config


def length_scorer(prompts, responses):
    return [float(len(r)) for r in responses]


def vowel_scorer(prompts, responses):
    return [float(sum(ch in "aeiou" for ch in r)) - 0.5 * len(r) for r in responses]


def _config(tmp, tiny_base, pref_jsonl, **extra):
    settings = {"alpha": 0.3, "coef_generalist": [0.0, 1.0, 2.0], "coef_objective": [0.0, 1.0], "n_eval_prompts": 2,
                "max_new_tokens": 3, "anchor_step": 0.25, "extrapolate": 0.5, **extra}
    path = write_config(tmp / "peo.yaml", tiny_base, pref_jsonl, tmp / "run", **settings)
    return load_config(peo.PEOConfig, str(path))


@pytest.fixture(scope="module")
def peo_run(tmp_path_factory, tiny_base, pref_jsonl):
    tmp = tmp_path_factory.mktemp("peo")
    cfg = _config(tmp, tiny_base, pref_jsonl)
    return cfg, peo.train(cfg, scorers=[length_scorer, vowel_scorer])


def test_generalist_starts_at_the_interpolation(tmp_path, tiny_base, pref_jsonl, peo_run):
    """Phase 2's model before training computes theta_0 + a*delta_1 + (1-a)*delta_2 (a = 0.3)."""
    cfg, _ = peo_run
    adapters = cfg.adapters_path
    d1, d2 = adapters / "helpful-dpo" / "adapter", adapters / "harmless-dpo" / "adapter"
    model, tok = peo.generalist_model(cfg, d1, d2)
    delta1, delta2 = adapter_delta(tiny_base, d1), adapter_delta(tiny_base, d2)
    theta0 = base_state(tiny_base)
    plain = AutoModelForCausalLM.from_pretrained(tiny_base)
    plain.load_state_dict({k: theta0[k] + 0.3 * delta1[k] + 0.7 * delta2[k] for k in theta0})
    ids = tok(["How do I boil an egg?"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
        with peo.interpolated_start(model):  # the "init" reference is the same point
            torch.testing.assert_close(model(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".generalist." in n for n in trainable)
    # the "init" reference switches the correction off for the reference forward only
    from peft.tuners.lora import LoraLayer
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    before = [dict(m.scaling) for m in layers]
    with peo.interpolated_start(model):
        assert all(m.scaling["generalist"] == 0.0 for m in layers)
    assert [dict(m.scaling) for m in layers] == before and before[0]["generalist"] == 2.0  # alpha / r = 4 / 2


def test_trained_generalist_in_the_bank(peo_run, tiny_base):
    """Gains (a, 1-a, 1) on [delta_1, delta_2, delta_g] are the trained generalist theta_g."""
    cfg, family_dir = peo_run
    family = Family.load(family_dir)
    assert [b.name for b in family.manifest.blocks] == ["helpful", "harmless", "generalist"]
    adapters = cfg.adapters_path
    d1 = adapter_delta(tiny_base, adapters / "helpful-dpo" / "adapter")
    d2 = adapter_delta(tiny_base, adapters / "harmless-dpo" / "adapter")
    dg = adapter_delta(tiny_base, family_dir.parent / "generalist" / "adapter")
    cand = peo.candidate_family(AutoModelForCausalLM.from_pretrained(tiny_base), family.tensors,
                                family.manifest.blocks)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    merged = PreferenceBank(model, cand).merged_state_dict([0.3, 0.7, 1.0])
    theta0 = base_state(tiny_base)
    assert_deltas_close({k: merged[k] - theta0[k] for k in theta0},
                        {k: 0.3 * d1[k] + 0.7 * d2[k] + dg[k] for k in d1})


def test_anchor_family_in_sample_and_extrapolated(peo_run, tiny_base):
    cfg, family_dir = peo_run
    m = Family.load(family_dir).manifest
    assert m.method == "peo" and m.gate.kind == "anchors"
    assert m.in_sample_low == [0.0, 0.0] and m.in_sample_high == [1.0, 1.0]
    assert m.w_low == [-0.5, -0.5] and m.w_high == [1.5, 1.5]
    assert m.is_in_sample([0.5, 0.5]) and not m.is_in_sample([1.25, -0.25])
    search = m.training["search"]
    cands = search["candidates"]
    assert len(cands) == len(search["scores"]) == 3 * 4  # c_g in 3 values x (c_1, c_2) in {0, 1}^2
    # every in-sample anchor is a searched, non-dominated candidate
    for w1, c in zip(search["in_sample_w1"], search["chosen_candidate"]):
        assert c in search["nondominated"]
        got = m.gate.block_gains(torch.tensor([[w1, 1 - w1]], dtype=torch.float64))[0].tolist()
        assert got == pytest.approx(cands[c])
    # the trainer's choice, recomputed from its recorded scores: the non-dominated candidates, min-max
    # normalised per objective over them, and each anchor the argmax of w . normalised (the linear rule)
    s = np.array(search["scores"])
    nd = [i for i in range(len(s)) if not any(np.all(s[j] >= s[i]) and np.any(s[j] > s[i]) for j in range(len(s)))]
    assert sorted(search["nondominated"]) == nd and search["anchor_rule"] == cfg.anchor_rule == "linear"
    lo, hi = s[nd].min(axis=0), s[nd].max(axis=0)
    norm = (s - lo) / np.where(hi > lo, hi - lo, 1.0)
    assert search["in_sample_w1"] == [0.0, 0.25, 0.5, 0.75, 1.0]  # anchor_step 0.25
    for w1, c in zip(search["in_sample_w1"], search["chosen_candidate"]):
        w = np.array([w1, 1 - w1])
        assert norm[c] @ w == pytest.approx(max(norm[i] @ w for i in nd))
    # beyond a vertex the gains continue along g(1) - g(0)
    def g(w1):
        return m.gate.block_gains(torch.tensor([[w1, 1 - w1]], dtype=torch.float64))[0].numpy()

    slope = g(1.0) - g(0.0)
    if not np.any(slope):
        slope = np.array([1.0, -1.0, 0.0])
    np.testing.assert_allclose(g(1.5), g(1.0) + 0.5 * slope, atol=1e-9)
    np.testing.assert_allclose(g(-0.5), g(0.0) - 0.5 * slope, atol=1e-9)
    # the family's w maps to the stacked deltas exactly as its gains say
    d = {n: adapter_delta(tiny_base, p) for n, p in m.training["adapters"].items()}
    gains = g(0.25)
    assert_deltas_close(family_delta(tiny_base, family_dir, [0.25, 0.75]),
                        {k: gains[0] * d["helpful"][k] + gains[1] * d["harmless"][k] + gains[2] * d["generalist"][k]
                         for k in d["helpful"]})


def test_each_candidate_is_scored_on_its_own_answers(peo_run, tiny_base):
    """The search's answers for candidate c are what generating with c's gains gives, prompt by prompt."""
    from paretoapp.generate import GenerationSettings, Policy
    from paretoapp.trainers.lora import load_base
    cfg, family_dir = peo_run
    family = Family.load(family_dir)
    model, tok = load_base(str(tiny_base))
    cand = peo.candidate_family(model, family.tensors, family.manifest.blocks)
    candidates = [[0.0, 0.0, 0.0], [40.0, 0.0, 0.0], [0.0, 40.0, 0.0], [0.0, 0.0, 40.0], [-40.0, 0.0, 40.0]]
    prompts = peo.eval_prompts(cfg)[:2] + ["Name a colour."]
    answers = peo.generate_candidates(model, tok, cand, candidates, prompts, max_new_tokens=4, batch_size=4)
    assert len({tuple(a) for a in answers}) > 1, "the candidates must answer differently for this test to bite"
    policy = Policy(cand, model, tok)
    settings = GenerationSettings(max_new_tokens=4, do_sample=False)
    try:
        alone = [policy.generate(prompts, [c] * len(prompts), settings) for c in candidates]
    finally:
        policy.bank.detach()
    assert answers == alone

    def code(prompts, responses):  # a different number for (almost) every answer
        return [float(sum(map(ord, r)) + 1000 * len(r)) for r in responses]

    def cost(prompts, responses):
        return [float(len(r)) for r in responses]
    cost.higher_is_better = False
    per_prompt = peo.score_answers(answers, prompts, [code, cost])
    assert per_prompt.shape == (len(candidates), len(prompts), 2)
    for c, per_candidate in enumerate(alone):
        assert per_prompt[c, :, 0].tolist() == code(prompts, per_candidate)
        assert per_prompt[c, :, 1].tolist() == [-v for v in cost(prompts, per_candidate)]


def test_search_record_keeps_per_prompt_scores(peo_run):
    _, family_dir = peo_run
    m = Family.load(family_dir).manifest
    search = m.training["search"]
    per_prompt = np.array(search["per_prompt_scores"])
    assert per_prompt.shape == (len(search["candidates"]), search["n_prompts"], 2) == (12, 2, 2)
    assert len(search["prompts"]) == 2
    np.testing.assert_allclose(per_prompt.mean(axis=1), search["scores"])
    assert "this project's extension" in m.description and "interpolated" in m.description


def test_candidate_gains_by_hand():
    """theta_0 + c_g (theta_g - theta_0) + c_1 delta_1 + c_2 delta_2 with theta_g = a delta_1 + (1-a) delta_2 + delta_g."""
    got = peo.candidate_gains(0.25, [0.0, 2.0], [0.0, 1.0])
    assert got == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0],
                   [0.5, 1.5, 2.0], [0.5, 2.5, 2.0], [1.5, 1.5, 2.0], [1.5, 2.5, 2.0]]
    # coefficient sets that give the same gains twice are searched once
    assert peo.candidate_gains(0.5, [0.0], [1.0, 1.0]) == [[1.0, 1.0, 0.0]]


def test_score_answers_orients_per_objective():
    answers = [["a", "bb"], ["ccc", "d"]]

    def length(prompts, responses):
        return [float(len(r)) for r in responses]

    def prompt_len(prompts, responses):
        return [float(len(p)) for p in prompts]
    prompt_len.higher_is_better = False
    chat = [{"role": "user", "content": "xyz"}]
    got = peo.score_answers(answers, ["hello", chat], [length, prompt_len])
    assert got.tolist() == [[[1.0, -5.0], [2.0, -3.0]], [[3.0, -5.0], [1.0, -3.0]]]


def test_default_search_scores_sixteen_prompts():
    assert peo.PEOConfig.__dataclass_fields__["n_eval_prompts"].default >= 16


def test_anchors_use_normalised_scores():
    """Objective 2 on a scale 100x objective 1's: the anchors are chosen on min-max normalised scores."""
    scores = np.array([[1.0, 0.0], [0.0, 100.0], [0.6, 60.0]])
    cands = [[1, 0, 0], [0, 1, 0], [0.5, 0.5, 1]]
    _, _, record = peo.choose_anchors(scores, cands, step=0.25, extrapolate=0.0)
    # normalised: (1, 0), (0, 1), (.6, .6); raw scores would pick candidate 1 for every w_1 < 0.99
    assert record["chosen_candidate"] == [1, 1, 2, 0, 0]


def test_anchors_normalise_each_objective_by_its_own_min_and_range():
    """Objective 1 negative with a range under one, objective 2 in the hundreds: min-max per objective."""
    scores = np.array([[-3.0, 240.0], [-2.7, 80.0], [-2.9, 220.0], [-2.6, 60.0]])
    cands = [[1, 0, 0], [0, 1, 0], [0.5, 0.5, 1], [0, 0, 1]]
    _, _, record = peo.choose_anchors(scores, cands, step=0.25, extrapolate=0.0)
    # on [-3, -2.6] x [60, 240]: (0, 1), (.75, .11), (.25, .89), (1, 0); at w_1 = .5 candidate 2 scores .57
    assert record["chosen_candidate"] == [0, 0, 2, 3, 3]


def test_anchors_extrapolate_along_the_vertex_direction():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    cands = [[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    points, gains, record = peo.choose_anchors(scores, cands, step=0.5, extrapolate=1.0)
    assert points == [[-1.0, 2.0], [-0.5, 1.5], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [1.5, -0.5], [2.0, -1.0]]
    slope = np.array([2.0, -1.0, 0.0])  # g(w_1 = 1) - g(w_1 = 0)
    g0, g1 = np.array(cands[1]), np.array(cands[0])
    np.testing.assert_allclose(gains, [g0 - slope, g0 - 0.5 * slope, g0, g1, g1, g1 + 0.5 * slope, g1 + slope])
    assert record == {"in_sample_w1": [0.0, 0.5, 1.0], "chosen_candidate": [1, 0, 0], "nondominated": [0, 1],
                      "anchor_rule": "linear"}
    # one candidate best everywhere: extrapolate towards expert 1 and away from expert 2
    _, gains, _ = peo.choose_anchors(np.array([[1.0, 1.0], [0.0, 0.0]]), cands, step=0.5, extrapolate=0.5)
    np.testing.assert_allclose(gains[0], np.array(cands[0]) - 0.5 * np.array([1.0, -1.0, 0.0]))
    np.testing.assert_allclose(gains[-1], np.array(cands[0]) + 0.5 * np.array([1.0, -1.0, 0.0]))


def test_choose_anchors_picks_the_weighted_best(caplog):
    scores = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.6], [0.1, 0.1]])  # the last is dominated
    cands = [[0, 1, 0], [1, 0, 0], [0.5, 0.5, 1], [0, 0, 0]]
    with caplog.at_level("WARNING", logger=peo.log.name):
        points, gains, record = peo.choose_anchors(scores, cands, step=0.5, extrapolate=0.0)
    assert points == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    assert record["chosen_candidate"] == [0, 2, 1] and 3 not in record["nondominated"]
    assert caplog.messages == [] and "excluded" not in record  # no guard asked for: nothing excluded, no warning


def test_the_tchebycheff_rule_reaches_the_concave_part_of_the_front():
    """Candidates on a concave front: a linear argmax only takes the two ends (the convex hull), the Chebyshev
    distance to the ideal point takes every non-dominated candidate in turn as w moves."""
    scores = np.array([[0.0, 1.0], [0.3, 0.6], [0.6, 0.3], [1.0, 0.0], [0.2, 0.2]])  # the last is dominated
    cands = [[0, 1, 0], [0.3, 0.7, 1], [0.7, 0.3, 1], [1, 0, 0], [0, 0, 0]]
    _, _, linear = peo.choose_anchors(scores, cands, step=0.25, extrapolate=0.0)
    assert set(linear["chosen_candidate"]) == {0, 3}
    _, gains, cheb = peo.choose_anchors(scores, cands, step=0.25, extrapolate=0.0, rule="tchebycheff")
    # w_1 = 0.25: max(.25 * 1, .75 * 0) = .25 for candidate 0, max(.25 * .7, .75 * .4) = .3 for 1: candidate 0;
    # w_1 = 0.5: .5 * .7 = .35 for 1 and 2 (the augmented term .5 * 1.1 ties too: the first wins), .5 for 0 and 3
    assert cheb["chosen_candidate"] == [0, 0, 1, 3, 3] and cheb["anchor_rule"] == "tchebycheff"
    _, _, fine = peo.choose_anchors(scores, cands, step=0.1, extrapolate=0.0, rule="tchebycheff")
    assert set(fine["chosen_candidate"]) == {0, 1, 2, 3}
    # the rule sees the scores min-max normalised per objective: an offset per objective changes nothing (it
    # does under Tchebycheff if the minimum were added instead of subtracted: the ideal point would move)
    _, _, shifted = peo.choose_anchors(scores + [100.0, -50.0], cands, step=0.1, extrapolate=0.0, rule="tchebycheff")
    assert shifted["chosen_candidate"] == fine["chosen_candidate"]
    np.testing.assert_allclose(gains[2], cands[1])
    with pytest.raises(ConfigError, match="anchor_rule"):
        peo.anchor_choice(np.eye(2), np.array([0.5, 0.5]), "nearest")


def test_a_tchebycheff_tie_goes_to_the_smaller_total_shortfall():
    """Two candidates equally far from the ideal point in the weighted max norm: the augmented term (a small
    multiple of the summed shortfall) takes the one that is no worse anywhere, wherever it stands in the list."""
    norm = np.array([[0.5, 0.6], [0.5, 1.0]])  # shortfalls at (.5, .5): (.25, .2) and (.25, 0)
    assert peo.anchor_choice(norm, np.array([0.5, 0.5]), "tchebycheff") == 1
    assert peo.anchor_choice(norm[::-1], np.array([0.5, 0.5]), "tchebycheff") == 0


def test_an_hh_transcript_is_asked_as_its_turns():
    """A search prompt in HH's layout becomes its chat turns, every earlier turn kept (the last, empty
    ``Assistant:`` is what the candidates answer)."""
    hh = "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?\n\nHuman: Name a colour.\n\nAssistant:"
    assert peo._user_prompt(hh) == [{"role": "user", "content": "Hi there."},
                                   {"role": "assistant", "content": "Hello! How can I help?"},
                                   {"role": "user", "content": "Name a colour."}]
    assert peo._user_prompt("Name a colour.") == "Name a colour."


def test_a_candidate_with_degenerate_answers_is_not_offered_to_the_anchors(caplog):
    """The mean score hid a candidate that answers most harmful prompts with nothing (the demo's first Tchebycheff
    build): with the guard it is excluded, and the anchors take the next candidates."""
    scores = np.array([[0.0, 1.0], [0.9, 0.9], [1.0, 0.0], [0.5, 0.5]])
    cands = [[0, 1, 0], [1.5, 1.5, 1], [1, 0, 0], [0.5, 0.5, 1]]
    answers = [["Here is a safe answer to that."] * 4,
               ["", "", "", "Fine answer here, with words."],   # 3 of 4 empty
               ["Step one, then step two."] * 4,
               ["A balanced answer, in a few words."] * 4]
    rates = peo.degenerate_rates(answers)
    np.testing.assert_allclose(rates, [0.0, 0.75, 0.0, 0.0])
    _, _, unguarded = peo.choose_anchors(scores, cands, step=0.5, extrapolate=0.0, rule="tchebycheff")
    assert unguarded["chosen_candidate"] == [0, 1, 2] and "excluded" not in unguarded  # 1 takes the middle
    _, gains, guarded = peo.choose_anchors(scores, cands, step=0.5, extrapolate=0.0, rule="tchebycheff",
                                          eligible=rates <= 0.1)
    assert guarded["chosen_candidate"] == [0, 3, 2] and guarded["excluded"] == [1]
    assert 1 not in guarded["nondominated"] and gains[1] == cands[3]
    # nothing eligible: every candidate is offered again rather than no family at all
    with caplog.at_level("WARNING", logger=peo.log.name):
        _, _, none = peo.choose_anchors(scores, cands, step=0.5, extrapolate=0.0, eligible=np.zeros(4, bool))
    assert none["chosen_candidate"] == [0, 1, 2] and none["excluded"] == [0, 1, 2, 3]
    assert caplog.messages == ["no PEO candidate passed the degenerate-answer guard; all are offered"]
    assert peo.degenerate_rates([[], ["fine words here, a full answer."]]).tolist() == [0.0, 0.0]  # no answers: 0


def test_cli_with_registry_scorers(tmp_path, tiny_base, pref_jsonl, peo_run):
    """One command, scorers named in the config, phase-1 adapters reused from another run."""
    cfg, _ = peo_run
    path = write_config(tmp_path / "peo.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                        adapters_dir=str(cfg.adapters_path), scorers=["length_words", "refusal"],
                        coef_generalist=[1.0], coef_objective=[0.0, 1.0], n_eval_prompts=1, max_new_tokens=2)
    family_dir = peo.main(["--config", str(path)])
    m = Family.load(family_dir).manifest
    assert m.training["search"]["scorers"] == ["length_words", "refusal"]
    assert json.loads((cfg.adapters_path / "helpful-dpo" / "done.json").read_text())["step"] == 3


@contextlib.contextmanager
def _generalist_off(model):
    """The phase-2 start: the experts at their gains, the generalist's correction switched off."""
    from peft.tuners.lora import LoraLayer
    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and "generalist" in m.scaling]
    saved = [m.scaling["generalist"] for m in layers]
    for m in layers:
        m.scaling["generalist"] = 0.0
    try:
        yield
    finally:
        for m, s in zip(layers, saved):
            m.scaling["generalist"] = s


@pytest.mark.parametrize("reference", ["base", "init"])
def test_the_trainer_runs_both_phases_on_the_right_data_weights_and_reference(tmp_path, tiny_base, pref_jsonl,
                                                                             monkeypatch, reference):
    """The trainer itself: phase 1 is DPO on each objective's pairs from theta_0; phase 2 starts at
    theta_0 + a delta_1 + (1-a) delta_2, trains only its own correction, on both objectives' pairs, with the
    generalist's beta, against theta_0 (or, ``generalist_reference: init``, against that start)."""
    from trainer_spies import adapters_off, dpo_losses, nearly, pair_texts, probe_logits, record_runs

    from paretoapp.trainers.lora import load_base

    ref_ctx = adapters_off if reference == "base" else _generalist_off
    other_ctx = _generalist_off if reference == "base" else adapters_off

    def oracle(run, model, batch, metrics):
        if run.name == "generalist":
            return {"loss": float(dpo_losses(model, batch, 0.2, reference=ref_ctx).mean()),
                    "other_reference": float(dpo_losses(model, batch, 0.2, reference=other_ctx).mean())}
        return {"loss": float(dpo_losses(model, batch, 0.3).mean())}

    fast = {"learning_rate": 5e-2, "max_steps": 3, "batch_size": 3, "beta": 0.3}
    cfg = _config(tmp_path, tiny_base, pref_jsonl, train=fast, generalist_reference=reference,
                  generalist_train={**fast, "beta": 0.2, "max_steps": 4, "progress": False})
    rec = record_runs(monkeypatch, oracle)
    peo.train(cfg, scorers=[length_scorer, vowel_scorer])
    assert rec.names() == ["helpful-dpo", "harmless-dpo", "generalist"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base, _ = load_base(str(tiny_base))
    for name, objective in (("helpful-dpo", "helpful"), ("harmless-dpo", "harmless")):
        run = rec[name]
        assert sorted((r["prompt"], r["chosen"].strip(), r["rejected"].strip()) for r in run.rows) == \
            sorted(PAIRS[objective])
        torch.testing.assert_close(run.start_logits, probe_logits(base))
        assert all(nearly(s.loss, s.expected["loss"]) for s in run.steps) and len(run.steps) == 3

    g = rec["generalist"]
    both = PAIRS["helpful"] + PAIRS["harmless"]
    assert sorted((r["prompt"], r["chosen"].strip(), r["rejected"].strip()) for r in g.rows) == sorted(both)
    seen = [t for s in g.steps for t in pair_texts(tok, s.batch)]
    assert sorted(seen) == sorted(both)  # four steps of three pairs: the whole epoch, both objectives
    d1 = adapter_delta(tiny_base, cfg.adapters_path / "helpful-dpo" / "adapter")
    d2 = adapter_delta(tiny_base, cfg.adapters_path / "harmless-dpo" / "adapter")
    theta0 = base_state(tiny_base)
    start = AutoModelForCausalLM.from_pretrained(tiny_base)
    start.load_state_dict({k: theta0[k] + 0.3 * d1[k] + 0.7 * d2[k] for k in theta0})
    torch.testing.assert_close(g.start_logits, probe_logits(start), atol=1e-4, rtol=1e-4)
    assert g.trainable and all(".generalist." in n for n in g.trainable)
    assert {c.kwargs["beta"] for c in rec.calls_of("dpo_loss", "generalist")} == {0.2}
    for step in g.steps:
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    assert max(abs(s.expected["loss"] - s.expected["other_reference"]) for s in g.steps) > 1e-3


def test_bad_settings_are_named_and_the_edges_accepted(tmp_path, tiny_base, pref_jsonl):
    def config(**extra):
        return _config(tmp_path, tiny_base, pref_jsonl, **extra)

    three = [{"name": n, "data": {"source": str(pref_jsonl), "objective": "helpful"}} for n in ("a", "b", "c")]
    for bad, message in ((dict(objectives=three), "PEO is bi-factorial: give exactly 2 objectives, got 3"),
                         (dict(generalist_reference="start"), "generalist_reference must be one of ('base', 'init')"),
                         (dict(anchor_step=0.0), "need 0 < anchor_step <= 0.5 and extrapolate >= 0"),
                         (dict(anchor_step=0.6), "need 0 < anchor_step <= 0.5 and extrapolate >= 0"),
                         (dict(extrapolate=-0.1), "need 0 < anchor_step <= 0.5 and extrapolate >= 0"),
                         (dict(max_degenerate_rate=1.5), "max_degenerate_rate must be in [0, 1] or null, got 1.5"),
                         (dict(max_degenerate_rate=-0.5), "max_degenerate_rate must be in [0, 1] or null, got -0.5"),
                         (dict(anchor_rule="nearest"),
                          "anchor_rule must be one of ('linear', 'tchebycheff'), got 'nearest'"),
                         (dict(n_eval_prompts=0), "n_eval_prompts must be at least 1, got 0")):
        with pytest.raises(ConfigError) as e:
            config(**bad)
        assert str(e.value) == message
    for edge in (dict(anchor_step=0.5, extrapolate=0.0, max_degenerate_rate=0.0, n_eval_prompts=1,
                      generalist_reference="init", anchor_rule="tchebycheff"), dict(max_degenerate_rate=1.0)):
        cfg = config(**edge)
        assert all(getattr(cfg, k) == v for k, v in edge.items())


def test_phase_two_is_truncated_evaluated_reused_and_refused(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """The generalist's run: its own truncation settings, phase 1's split of the pairs (its own seed does not
    re-split them: it trains on both experts' training pairs and evaluates both held-out sets), a finished run
    reused with the same settings (run.json, without the logging settings) and refused with others."""
    from trainer_fixtures import OBJECTIVES
    from trainer_spies import record_runs

    data = {"source": str(pref_jsonl), "eval_fraction": 0.34}

    def config(alpha=0.3):
        return _config(tmp_path, tiny_base, pref_jsonl, objectives=[{"name": o, "data": data} for o in OBJECTIVES],
                       overwrite=True, train={"max_steps": 1, "batch_size": 2}, alpha=alpha,
                       generalist_train={"max_steps": 2, "batch_size": 2, "max_length": 9, "max_prompt_length": 4,
                                         "progress": False, "log_every": 1, "beta": 0.2, "seed": 1})

    rec = record_runs(monkeypatch)
    cfg = config()
    peo.train(cfg, scorers=[length_scorer, vowel_scorer])
    g = rec["generalist"]
    assert len(g.rows) == 8  # four of each objective's six pairs; two of each held out

    def pairs(rows):
        return sorted((r["prompt"], r["chosen"], r["rejected"]) for r in rows)

    experts = [rec[f"{o}-dpo"] for o in OBJECTIVES]
    assert pairs(g.rows) == pairs(experts[0].rows + experts[1].rows)
    assert pairs(g.eval_rows) == pairs(experts[0].eval_rows + experts[1].eval_rows) and len(g.eval_rows) == 4
    for step in g.steps:
        real = step.batch["attention_mask"].sum(-1)
        assert real.max() == 9 and (real - step.batch["completion_mask"].sum(-1)).max() == 4
    final = [json.loads(line) for line in (g.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["final"] and "eval_loss" in final
    saved = json.loads((g.run_dir / "run.json").read_text())
    assert saved["alpha"] == 0.3 and saved["reference"] == "base" and saved["base_model"] == str(tiny_base)
    assert saved["experts"] == [str((cfg.adapters_path / f"{o}-dpo" / "adapter").resolve()) for o in OBJECTIVES]
    assert [d["objective"] for d in saved["data"]] == list(OBJECTIVES) and saved["train"]["beta"] == 0.2
    assert saved["lora"]["r"] == 2 and saved["train"]["seed"] == 1
    assert not {"progress", "log_every", "eval_every", "save_every", "keep_checkpoints"} & set(saved["train"])
    n = len(rec.runs)
    peo.train(config(), scorers=[length_scorer, vowel_scorer])
    assert len(rec.runs) == n  # every phase reused
    with pytest.raises(ConfigError, match=r"different settings \(alpha\)"):
        peo.train(config(alpha=0.4), scorers=[length_scorer, vowel_scorer])


def test_search_prompts_come_from_the_file_or_the_held_out_pairs(tmp_path, tiny_base, pref_jsonl, caplog):
    from trainer_fixtures import OBJECTIVES, PAIRS

    txt = tmp_path / "p.txt"
    txt.write_text("First?\n\n  Second?  \nThird?\n")
    cfg = _config(tmp_path, tiny_base, pref_jsonl, eval_prompts=str(txt))
    assert peo.eval_prompts(cfg) == ["First?", "Second?"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("A?", "A?", "\n\nHuman: Hi\n\nAssistant:")))
    cfg = _config(tmp_path, tiny_base, pref_jsonl, eval_prompts=str(jsonl), n_eval_prompts=5)
    with caplog.at_level("WARNING"):
        assert peo.eval_prompts(cfg) == ["A?", [{"role": "user", "content": "Hi"}]]  # unique, HH as a chat
    assert caplog.messages == ["PEO search: only 2 prompts for n_eval_prompts = 5; give eval_prompts a larger file"]
    caplog.clear()
    with caplog.at_level("WARNING"):  # exactly as many as asked for: nothing to warn about
        assert len(peo.eval_prompts(_config(tmp_path, tiny_base, pref_jsonl, eval_prompts=str(jsonl),
                                            n_eval_prompts=2))) == 2
    assert caplog.messages == []
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(ConfigError, match="^no prompts for the PEO search; set eval_prompts to a .jsonl or .txt file$"):
        peo.eval_prompts(_config(tmp_path, tiny_base, pref_jsonl, eval_prompts=str(tmp_path / "empty.txt")))
    held = {"source": str(pref_jsonl), "eval_fraction": 0.34}
    cfg = _config(tmp_path, tiny_base, pref_jsonl, n_eval_prompts=16, train={"seed": 5},
                  objectives=[{"name": o, "data": held} for o in OBJECTIVES])
    got = peo.eval_prompts(cfg)
    assert len(got) == 4 and set(got) < {p for o in OBJECTIVES for p, _, _ in PAIRS[o]}  # two held out per objective
    # the pairs phase 1 held out, split with the run's seed (the search never scores what the experts trained on)
    from paretoapp.trainers.data import train_eval_pairs
    assert got == [p["prompt"] for o in cfg.objectives for p in train_eval_pairs(o.data, seed=5)[1]]
    cfg = _config(tmp_path, tiny_base, pref_jsonl, n_eval_prompts=16)
    assert peo.eval_prompts(cfg) == [p for o in OBJECTIVES for p, _, _ in PAIRS[o]]  # none held out: the pairs'


def test_the_search_scorers_are_built_with_the_run_context(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """The scorers named in the config get the run's model, tokenizer, model id, system prompt and progress
    setting (a judge scorer reads them); a count other than two is refused before any is built."""
    import paretoapp.scorers

    built = {}

    def fake_build(specs, context):
        built.update(specs=specs, context=context)
        return ["helpful scorer", "harmless scorer"]

    monkeypatch.setattr(paretoapp.scorers, "build_scorers", fake_build)
    model, tokenizer = object(), object()
    cfg = _config(tmp_path, tiny_base, pref_jsonl, scorers=["length_words", "refusal"], system_prompt="Be brief.")
    assert peo.build_scorers(cfg, model, tokenizer) == ["helpful scorer", "harmless scorer"]
    ctx = built["context"]
    assert built["specs"] == ["length_words", "refusal"]
    assert ctx.causal_lm is model and ctx.tokenizer is tokenizer and ctx.model_id == str(tiny_base)
    assert ctx.system_prompt == "Be brief." and ctx.show_progress is False
    built.clear()
    with pytest.raises(ConfigError) as e:
        peo.build_scorers(_config(tmp_path, tiny_base, pref_jsonl, scorers=["length_words"]), model, tokenizer)
    assert str(e.value) == ("PEO's search needs one scorer per objective: set scorers: [<helpful>, <harmless>] "
                            "(e.g. ray-helpful, ray-harmless; offline: helpful_offline, harmless_offline)")
    assert not built
