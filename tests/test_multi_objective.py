"""The multi-objective trainers' shared pieces, by hand: rows, batches, per-objective DPO, scalarisation,
scoring, grids, labels and the anchors family."""

from pathlib import Path

import numpy as np
import pytest
import torch
from test_losses import BATCH, FixedLM, reference_mode
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config

from paretoapp.trainers import multi_objective as mo
from paretoapp.trainers.config import ConfigError, MethodConfig, load_config
from paretoapp.trainers.losses import dpo_loss, policy_and_reference_logps


def message_of(fn, *args, error=ConfigError, **kwargs) -> str:
    with pytest.raises(error) as e:
        fn(*args, **kwargs)
    return str(e.value)


def test_zip_objectives_cycles_to_the_longest():
    rows = mo.zip_objectives({"a": [1, 2, 3], "b": ["x", "y"]})
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "x"}]
    assert mo.zip_objectives({}) == [] and mo.zip_objectives({"a": [1], "b": []}) == []


def test_objective_pairs_and_rows(tmp_path, tiny_base, pref_jsonl):
    objectives = [{"name": "h", "data": {"source": str(pref_jsonl), "objective": "helpful", "eval_fraction": 0.34}},
                  {"name": "harmless", "data": {"source": str(pref_jsonl), "eval_fraction": 0.34}}]
    cfg = load_config(MethodConfig, str(write_config(tmp_path / "c.yaml", tiny_base, pref_jsonl, tmp_path / "o",
                                                     objectives=objectives)))
    pairs = mo.objective_pairs(cfg)
    assert list(pairs) == ["h", "harmless"]
    # each objective's own pairs (selected by the data's objective, not the objective's name), split by the seed
    for name, data_objective in (("h", "helpful"), ("harmless", "harmless")):
        train, held = pairs[name]
        assert len(train) == 4 and len(held) == 2
        assert {p["prompt"] for p in train + held} == {row[0] for row in PAIRS[data_objective]}
    assert pairs == mo.objective_pairs(cfg, seed=cfg.train.seed)
    reseeded = mo.objective_pairs(cfg, seed=cfg.train.seed + 1)
    assert any(reseeded[n][1] != pairs[n][1] for n in pairs)  # another seed holds out other pairs
    cfg.train.seed += 1
    assert mo.objective_pairs(cfg) == reseeded  # the default seed is the config's
    train_rows, eval_rows = mo.multi_objective_rows(cfg)
    assert train_rows == mo.zip_objectives({n: v[0] for n, v in reseeded.items()})
    assert eval_rows == mo.zip_objectives({n: v[1] for n, v in reseeded.items()}) and len(eval_rows) == 2
    cfg.objectives[1].data = None
    assert message_of(mo.objective_pairs, cfg) == ("objective 'harmless' has no data; this method trains on every "
                                                   "objective's pairs")


def test_collator_and_per_objective_dpo(tokenizer_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = [{"a": {"prompt": "Hi there, how are you", "chosen": " yes", "rejected": " no"},
             "b": {"prompt": "Go away now", "chosen": " ok", "rejected": " never ever"}}]
    from paretoapp.trainers.data import PreferenceCollator
    for max_length, max_prompt_length in ((64, None), (3, 1), (None, 1)):  # truncation reaches every objective
        batch = mo.MultiObjectiveCollator(tok, ["a", "b"], max_length, max_prompt_length)(rows)
        assert set(batch) == {"a", "b"}
        for name in "ab":
            want = PreferenceCollator(tok, max_length, max_prompt_length)([rows[0][name]])
            assert all(torch.equal(batch[name][k], want[k]) for k in want)
            if max_length == 3:
                assert batch[name]["input_ids"].shape[1] <= 3
            if max_prompt_length == 1:  # the prompts are longer than one token: only their last token is kept
                prompt_tokens = batch[name]["attention_mask"] - batch[name]["completion_mask"]
                assert prompt_tokens.sum(1).tolist() == [1, 1]
    # per-objective DPO: each objective's sub-batch through the policy and the reference
    model = FixedLM()
    other = {k: v.flip(0) for k, v in BATCH.items()}
    results = mo.per_objective_dpo(model, {"a": BATCH, "b": other}, ["a", "b"], beta=0.4, label_smoothing=0.1,
                                   reference_context=reference_mode)
    for result, sub in zip(results, (BATCH, other)):
        want = dpo_loss(*policy_and_reference_logps(model, sub, reference_mode), beta=0.4, label_smoothing=0.1)
        assert result.loss.item() == pytest.approx(want.loss.item(), rel=1e-6)
    assert results[0].loss.item() != pytest.approx(results[1].loss.item())
    plain = mo.per_objective_dpo(model, {"a": BATCH}, ["a"], beta=0.4, reference_context=reference_mode)[0]
    want = dpo_loss(*policy_and_reference_logps(model, BATCH, reference_mode), beta=0.4)  # no label smoothing
    assert plain.loss.item() == pytest.approx(want.loss.item(), rel=1e-6)
    metrics = mo.dpo_metrics(results, ["a", "b"])
    assert metrics["a/loss"] == results[0].loss.item() and metrics["b/reward_margin"] == pytest.approx(
        results[1].metrics()["reward_margin"])
    assert set(metrics) == {f"{n}/{k}" for n in "ab" for k in results[0].metrics()}


def test_scalarise_by_hand():
    losses = torch.tensor([0.8, 0.3], dtype=torch.float32)
    w = torch.tensor([0.25, 0.75], dtype=torch.float64)
    lin = mo.scalarise(losses, w)
    assert lin.item() == pytest.approx(0.25 * 0.8 + 0.75 * 0.3) and lin.dtype == torch.float32
    assert mo.scalarise(losses, w, "tchebycheff").item() == pytest.approx(max(0.2, 0.225))
    assert mo.scalarise(losses, w, "tchebycheff", ideal=[0.7, 0.0]).item() == pytest.approx(max(0.025, 0.225))
    assert mo.scalarise(losses, w, "tchebycheff", ideal=[0.0, 0.5]).item() == pytest.approx(max(0.2, -0.15))
    # the ideal point is taken at the losses' precision (0.1 is not a float32 number)
    l64 = torch.tensor([0.8, 0.3], dtype=torch.float64)
    assert mo.scalarise(l64, w, "tchebycheff", ideal=[0.1, 0.2]).item() == max(0.25 * (0.8 - 0.1), 0.75 * (0.3 - 0.2))
    assert message_of(mo.scalarise, losses, w, "chebyshev") == ("aggregation must be one of ('linear', "
                                                                "'tchebycheff'), got 'chebyshev'")


def test_prompt_text_and_messages():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]
    assert mo.last_user_text("plain") == "plain" and mo.last_user_text(chat) == "second"
    copied = mo.prompt_messages(chat)
    assert copied == chat and copied[0] is not chat[0]
    assert mo.prompt_messages("Hello?") == [{"role": "user", "content": "Hello?"}]
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and you?\n\nAssistant:"
    assert mo.prompt_messages(hh) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                  {"role": "user", "content": "and you?"}]
    assert mo.prompt_messages("\n\nHuman: no assistant turn") == [{"role": "user", "content": "no assistant turn"}]


def test_score_responses_orients_and_checks():
    def length(prompts, responses):
        return [float(len(r)) for r in responses]

    def echo_prompt_len(prompts, responses):
        return [float(len(p)) for p in prompts]

    class Cost:
        name = "cost"
        higher_is_better = False

        def __call__(self, prompts, responses):
            return [1.0, 2.0]

    chat = [{"role": "user", "content": "abc"}]
    got = mo.score_responses([length, Cost(), echo_prompt_len], ["hello", chat], ["a", "bcd"])
    assert got.tolist() == [[1.0, -1.0, 5.0], [3.0, -2.0, 3.0]]
    raw = mo.score_responses([Cost()], ["x", "y"], ["a", "b"], oriented=False)
    assert raw.tolist() == [[1.0], [2.0]]
    assert mo.score_responses([], ["x", "y"], ["a", "b"]).shape == (2, 0)
    assert message_of(mo.score_responses, [Cost()], ["x"], ["a"], error=RuntimeError) == (
        "scorer 'cost' returned 2 scores for 1 rows")

    class Unnamed:
        def __repr__(self):
            return "<unnamed scorer>"

        def __call__(self, prompts, responses):
            return [[1.0], [2.0], [3.0]]  # a column: flattened to one score per row
    assert mo.score_responses([Unnamed()], ["x", "y", "z"], ["a", "b", "c"]).tolist() == [[1.0], [2.0], [3.0]]
    assert message_of(mo.score_responses, [Unnamed()], ["x"], ["a"], error=RuntimeError) == (
        "scorer <unnamed scorer> returned 3 scores for 1 rows")
    assert mo.scorer_names([Cost(), length]) == ["cost", "length"]
    assert mo.scorer_names([3]) == ["3"]


def test_build_objective_scorers(monkeypatch, tmp_path, tiny_base, pref_jsonl):
    cfg = load_config(MethodConfig, str(write_config(tmp_path / "c.yaml", tiny_base, pref_jsonl, tmp_path / "o",
                                                     system_prompt="Be kind.")))
    assert message_of(mo.build_objective_scorers, ["a"], cfg, 2, "ParetoHqD") == (
        "ParetoHqD needs 2 scorer(s) (one per objective) in 'scorers:', got ['a']; e.g. [ray-helpful, ray-harmless], "
        "or offline [helpful_offline, harmless_offline]")
    seen = {}
    import paretoapp.scorers as scorers
    import paretoapp.trainers.lora as lora
    monkeypatch.setattr(scorers, "build_scorers", lambda specs, ctx: seen.setdefault("call", (specs, ctx)))
    monkeypatch.setattr(lora, "load_base", lambda *a, **kw: seen.setdefault("load", a) and ("LM", "TOK"))
    specs, ctx = mo.build_objective_scorers(("length_words", "refusal"), cfg, 2, "x")
    assert specs == ["length_words", "refusal"] and ctx.causal_lm is None
    assert (ctx.model_id, ctx.system_prompt, ctx.show_progress) == (str(tiny_base), "Be kind.", False)
    seen.clear()
    cfg.revision, cfg.dtype, cfg.trust_remote_code = "r1", "bfloat16", True
    _, ctx = mo.build_objective_scorers(["relevance?x=1", "refusal"], cfg, 2, "x")
    assert (ctx.causal_lm, ctx.tokenizer) == ("LM", "TOK")
    assert seen["load"] == (str(tiny_base), "r1", "bfloat16", True)  # the run's own base, as configured
    seen.clear()
    _, ctx = mo.build_objective_scorers(["refusal", "helpful_offline"], cfg, 2, "x")
    assert ctx.causal_lm == "LM"
    # a scorer registered here alone gets the base model when its entry says it needs it, and only then
    monkeypatch.setitem(scorers.REGISTRY, "test_needs_lm", scorers.ScorerEntry("test_needs_lm", None, "t", True))
    monkeypatch.setitem(scorers.REGISTRY, "test_text_only", scorers.ScorerEntry("test_text_only", None, "t"))
    seen.clear()
    assert mo.build_objective_scorers(["test_needs_lm", "refusal"], cfg, 2, "x")[1].causal_lm == "LM"
    seen.clear()
    assert mo.build_objective_scorers(["test_text_only", "refusal"], cfg, 2, "x")[1].causal_lm is None


def test_preference_grid_and_labels():
    assert mo.preference_grid(2, [[1, 0], [0.25, 0.75]]) == [[1.0, 0.0], [0.25, 0.75]]
    assert mo.preference_grid(2) == mo.preference_grid(2, resolution=4)  # quarters by default
    assert mo.preference_grid(2, resolution=4) == [[1.0, 0.0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0.0, 1.0]]
    assert mo.preference_grid(2, None, resolution=3)[1] == [0.666666667, 0.333333333]
    assert mo.preference_grid(2, None, resolution=1) == [[1.0, 0.0], [0.0, 1.0]]  # the vertices alone
    assert message_of(mo.preference_grid, 2, None, 0) == "grid_resolution must be at least 1, got 0"
    assert mo.preference_grid(2, [[0.5, 0.5 + 5e-7]]) == [[0.5, 0.5 + 5e-7]]  # float slack on the sum
    assert message_of(mo.preference_grid, 2, [[1.0, 0.0, 0.0]]) == (
        "every preference point needs 2 values (one per objective), got [[1.0, 0.0, 0.0]]")
    assert message_of(mo.preference_grid, 2, [[1.5, -0.5]]) == (
        "preference points must lie on the simplex (non-negative, sum 1), got [[1.5, -0.5]]")
    assert message_of(mo.preference_grid, 2, [[0.5, 0.6]]) == (
        "preference points must lie on the simplex (non-negative, sum 1), got [[0.5, 0.6]]")
    assert mo.point_label([0.25, 0.75]) == "w25-75" and mo.point_label([1.0, 0.0]) == "w100-0"
    assert mo.point_label([1 / 3, 2 / 3]) == "w33p33-66p67" and mo.point_label([0.125, 0.875]) == "w12p5-87p5"
    h = mo.recipe_hash({"b": 1, "a": Path("/x")})
    assert len(h) == 10 and h == mo.recipe_hash({"a": "/x", "b": 1}) and h != mo.recipe_hash({"a": "/y", "b": 1})
    assert all(c in "0123456789abcdef" for c in h)


def test_anchor_family_gate_and_record(monkeypatch, tmp_path, tiny_base, pref_jsonl):
    cfg = load_config(MethodConfig, str(write_config(tmp_path / "c.yaml", tiny_base, pref_jsonl, tmp_path / "o")))
    seen = {}
    monkeypatch.setattr(mo, "write_family", lambda *a, **kw: seen.update(args=a, kw=kw) or Path("fam"))
    points = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    adapters = {"w100-0": Path("a"), "w50-50": Path("b"), "w0-100": Path("c")}
    out = mo.write_anchor_family(cfg, "linear_dpo", adapters, points, "nearest", training={"x": 1}, description="d")
    assert out == Path("fam")
    _, method, got_adapters, gate = seen["args"]
    assert (method, got_adapters) == ("linear_dpo", adapters)
    assert gate.kind == "anchors" and gate.mode == "nearest" and gate.points == points
    assert gate.gains == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    kw = seen["kw"]
    assert kw["training"] == {"points": points, "gate_mode": "nearest", "x": 1} and kw["description"] == "d"
    assert (kw["w_low"], kw["w_high"], kw["in_sample_low"], kw["in_sample_high"]) == ([0.0] * 2, [1.0] * 2,
                                                                                     [0.0] * 2, [1.0] * 2)
    assert kw["on_simplex"] is True
    mo.write_anchor_family(cfg, "upo", adapters, points)  # the default: the nearest trained point
    assert seen["args"][3].mode == "nearest" and seen["kw"]["training"] == {"points": points,
                                                                            "gate_mode": "nearest"}
    assert seen["kw"]["description"] == ""
    assert np.isfinite(seen["args"][3].block_gains(torch.tensor([[0.3, 0.7]], dtype=torch.float64))).all()
