"""UPO: the loss is DPO at auxiliary weight 0 and DPO minus the advantage-weighted likelihood otherwise."""

from __future__ import annotations

import functools
import json

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


def _model_and_batch(tiny_base, seed: int = 0, kto: bool = False):
    model, tok = load_base(str(tiny_base))
    torch.manual_seed(seed)
    model = attach_lora(model, LoraSettings(r=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    pairs = [{"prompt": p, "chosen": " " + c, "rejected": " " + r} for p, c, r in PAIRS["helpful"][:3]]
    pairs = upo.score_pairs(pairs, [upo._Directed(shortness, True), upo._Directed(shortness, False)])
    return model, upo.UPOCollator(tok, max_length=64, kto=kto)(pairs)


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


def test_kto_rows_pair_each_prompt_with_another_completion(tiny_base):
    """KTO's z rows: example j (chosen rows, then rejected rows) with example j - 1's completion, cyclically."""
    _, batch = _model_and_batch(tiny_base, kto=True)

    def split(b, i):
        ids = b["input_ids"][i][b["attention_mask"][i] == 1]
        comp = b["completion_mask"][i][b["attention_mask"][i] == 1] == 1
        return ids[~comp].tolist(), ids[comp].tolist()

    rows = [split(batch, i) for i in range(6)]
    kl = [split(batch["kl"], i) for i in range(6)]
    for j in range(6):
        assert kl[j][0] == rows[j][0] and kl[j][1] == rows[j - 1][1]
    assert all(kl[j][1] != rows[j][1] for j in range(6))


def _kto_by_trl(model, tiny_base, tok, pairs, beta):
    """TRL's own KTOTrainer loss on the same examples: policy = the LoRA model merged, reference = the base."""
    import copy

    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    from paretoapp.trainers.data import tokenize_pair
    toks = [tokenize_pair(tok, p) for p in pairs]
    examples = ([{"prompt_ids": t["prompt_ids"], "completion_ids": t["chosen_ids"], "label": True} for t in toks]
                + [{"prompt_ids": t["prompt_ids"], "completion_ids": t["rejected_ids"], "label": False} for t in toks])
    completions = [e["completion_ids"] for e in examples]
    for e, kl in zip(examples, completions[-1:] + completions[:-1]):  # TRL's add_kl_completion_ids
        e["KL_completion_ids"] = kl
    batch = DataCollatorForUnpairedPreference(pad_token_id=tok.pad_token_id)(examples)
    policy = copy.deepcopy(model).merge_and_unload()
    ref, _ = load_base(str(tiny_base))
    import tempfile
    args = KTOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=len(examples), beta=beta,
                     report_to="none", use_cpu=True, bf16=False, train_sampling_strategy="sequential")
    ds = Dataset.from_list([{"prompt": p["prompt"], "completion": p["chosen"], "label": True} for p in pairs] * 2)
    trainer = KTOTrainer(model=policy, ref_model=ref, args=args, train_dataset=ds, processing_class=tok)
    trainer.model.train()
    with torch.no_grad():
        loss = trainer._compute_loss(trainer.model, batch, False)
    return loss.item(), trainer._metrics["train"]["kl"][-1]


def test_kto_preference_term_matches_trl(tiny_base):
    """preference_loss: kto is TRL's KTOTrainer loss on the pairs' chosen (desirable) and rejected answers."""
    _, tok = load_base(str(tiny_base))
    beta = 0.1
    for seed in range(16):  # the first adapter whose KL estimate z is positive, so z enters the loss
        model, batch = _model_and_batch(tiny_base, seed=seed, kto=True)
        loss, pref, metrics = upo.upo_loss(model, batch, c=[1.0, 0.0], gamma=0.0, beta=beta, preference_loss="kto")
        if metrics["kto_kl"] > 0:
            break
    assert metrics["kto_kl"] > 0 and loss.item() == pref.loss.item()
    pairs = [{"prompt": p, "chosen": " " + c, "rejected": " " + r} for p, c, r in PAIRS["helpful"][:3]]
    want, kl = _kto_by_trl(model, tiny_base, tok, pairs, beta)
    assert kl == pytest.approx(metrics["kto_kl"], rel=1e-4)
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert abs(want - dpo_batch_loss(model, batch, beta=beta).loss.item()) > 1e-3  # not DPO under another name
    _, other_beta, _ = upo.upo_loss(model, batch, c=[1.0, 0.0], gamma=0.0, beta=0.5, preference_loss="kto")
    assert abs(other_beta.loss.item() - loss.item()) > 1e-4  # the config's beta reaches the KTO term
    # and with the auxiliary term: KTO minus gamma * the advantage-weighted likelihood
    gamma, tau, c = 0.7, 0.5, [0.3, 0.7]
    total, _, _ = upo.upo_loss(model, batch, c=c, gamma=gamma, tau=tau, beta=beta, preference_loss="kto")
    with torch.no_grad():
        logp = sequence_logprobs(model, batch, average=True)
    a = batch["aux"] @ torch.tensor(c)
    weights = F.softmax((a - a.mean()) / tau, dim=0)
    assert total.item() == pytest.approx(want - gamma * float((weights * logp).sum()), rel=1e-5)


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


def test_auxiliary_vertex_trains_with_the_auxiliary_term(upo_run, tiny_base):
    """w = (0, 1) trains with gamma = 2: its loss is DPO minus 2 x the weighted likelihood, and its adapter
    is not the plain DPO adapter (same pairs, same seed)."""
    cfg, _ = upo_run
    run = cfg.adapters_path / "upo-w0-100"
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "awr_loglik" in r and "step" in r and "final" not in r]
    assert steps
    for r in steps:
        assert r["loss"] == pytest.approx(r["dpo_loss"] - 2.0 * r["awr_loglik"], rel=1e-5)
        assert abs(r["loss"] - r["dpo_loss"]) > 1e-3
    dpo = adapter_delta(tiny_base, train_objective_adapter(cfg, cfg.objectives[0], "dpo"))
    aux = adapter_delta(tiny_base, run / "adapter")
    assert max(float((aux[k] - dpo[k]).abs().max()) for k in dpo) > 1e-4


def test_kto_family(tmp_path, tiny_base, pref_jsonl):
    path = _cfg(tmp_path, tiny_base, pref_jsonl, preference_loss="kto")
    cfg = load_config(upo.UPOConfig, str(path))
    cfg.train.max_steps = 1
    m = Family.load(upo.train(cfg, scorers=[shortness])).manifest
    assert m.training["preference_loss"] == "kto" and m.description.startswith("UPO: KTO on helpful")
    logged = (cfg.adapters_path / "upo-w0-100" / "metrics.jsonl").read_text()
    assert '"kto_kl"' in logged and '"kto_loss"' in logged


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


def words(prompts, responses):
    return [float(len(r.split())) for r in responses]


def vowel_cost(prompts, responses):
    return [float(sum(ch in "aeiou" for ch in r)) for r in responses]


vowel_cost.higher_is_better = False  # the scorer's own direction: fewer vowels is better


def _kto(model, batch, beta):
    """KTO (TRL's form) from the logits: z from the batch's mismatched rows, clamped at 0, no gradient."""
    from trainer_spies import adapters_off, logps
    policy, kl_policy = logps(model, batch), logps(model, batch["kl"])
    with adapters_off(model):
        ref, kl_ref = logps(model, batch), logps(model, batch["kl"])
    z = (kl_policy - kl_ref).mean().clamp(min=0)
    n = len(policy) // 2
    r = policy - ref
    return float(torch.cat([1 - torch.sigmoid(beta * (r[:n] - z)), 1 - torch.sigmoid(beta * (z - r[n:]))]).mean())


@pytest.mark.parametrize("preference_loss", ["dpo", "kto"])
def test_the_trainer_weighs_the_likelihood_by_oriented_auxiliary_advantages(tmp_path, tiny_base, pref_jsonl,
                                                                           monkeypatch, preference_loss):
    """The trainer itself, at w = (0.2, 0.5, 0.3): the preference loss (train.beta, reference theta_0) on the
    objective's pairs minus gamma(w) * sum_b softmax_b(A_b / tau) * mean log pi(y_b | x_b), A = a . c(w), each
    a_j z-scored over the data and oriented: a lower-is-better objective (by the config or by the scorer) is
    negated."""
    import numpy as np
    from trainer_spies import dpo_losses, logps, nearly, pair_texts, probe_logits, record_runs, response_texts
    from transformers import AutoTokenizer

    responses = [" " + c for _, c, _ in PAIRS["helpful"]] + [" " + r for _, _, r in PAIRS["helpful"]]
    raw = -np.array([words([], responses), vowel_cost([], responses)]).T  # both lower-is-better: negated
    aux = dict(zip([r.strip() for r in responses], ((raw - raw.mean(axis=0)) / raw.std(axis=0)).tolist()))
    gamma, c, tau = 2.0 * 0.8, [0.5 / 0.8, 0.3 / 0.8], 0.5
    tok = AutoTokenizer.from_pretrained(tiny_base)

    def oracle(run, model, batch, metrics):
        a = torch.tensor([aux[t] for t in response_texts(tok, batch)])
        logp = logps(model, batch, average=True)

        def awr(sign):
            return float((torch.softmax(sign * (a @ torch.tensor(c)) / tau, dim=0) * logp).sum())

        pref = float(dpo_losses(model, batch, 0.3).mean()) if preference_loss == "dpo" else _kto(model, batch, 0.3)
        return {"loss": pref - gamma * awr(1.0), "unoriented": pref - gamma * awr(-1.0), "aux": a}

    path = write_config(tmp_path / "upo.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                        objectives=[{"name": "helpful", "data": {"source": str(pref_jsonl)}}],
                        auxiliary=[{"name": "short", "scorer": "length_words", "higher_is_better": False},
                                   {"name": "plain", "scorer": "vowels"}],
                        grid=[[0.2, 0.5, 0.3]], gamma=2.0, tau=tau, preference_loss=preference_loss,
                        train={"max_steps": 3, "batch_size": 3, "learning_rate": 5e-2, "beta": 0.3})
    rec = record_runs(monkeypatch, oracle)
    upo.train(load_config(upo.UPOConfig, str(path)), scorers=[words, vowel_cost])
    run = rec["upo-w20-50-30"]
    assert sorted((r["prompt"], r["chosen"].strip(), r["rejected"].strip()) for r in run.rows) == \
        sorted(PAIRS["helpful"])
    for row in run.rows:
        assert row["aux_chosen"] == pytest.approx(aux[row["chosen"].strip()])
        assert row["aux_rejected"] == pytest.approx(aux[row["rejected"].strip()])
    base, _ = load_base(str(tiny_base))
    torch.testing.assert_close(run.start_logits, probe_logits(base))
    for step in run.steps:
        assert set(pair_texts(tok, step.batch)) <= set(PAIRS["helpful"])
        torch.testing.assert_close(step.batch["aux"], step.expected["aux"].float(), atol=1e-5, rtol=1e-5)
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    assert max(abs(s.expected["loss"] - s.expected["unoriented"]) for s in run.steps) > 1e-3
    assert {c.kwargs["beta"] for c in rec.calls_of(f"{preference_loss}_loss", run.name)} == {0.3}


def _upo(tmp_path, tiny_base, pref_jsonl, **extra):
    settings = {"objectives": [{"name": "helpful", "data": {"source": str(pref_jsonl)}}],
                "auxiliary": [{"name": "short", "scorer": "length_words", "higher_is_better": False}],
                "grid": [[0.0, 1.0]], "gamma": 2.0, "train": {"max_steps": 2, "batch_size": 3}, **extra}
    return load_config(upo.UPOConfig, str(write_config(tmp_path / "upo.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                                                       **settings)))


def test_bad_settings_are_named_and_the_edges_accepted(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    from paretoapp.trainers.config import ConfigError

    two = [{"name": n, "data": {"source": str(pref_jsonl), "objective": n}} for n in ("helpful", "harmless")]
    for bad, message in (
            (dict(objectives=two), "UPO takes exactly one preference objective (with pairs) in 'objectives:'; "
                                   "designer objectives go in 'auxiliary:' with a scorer each"),
            (dict(auxiliary=[]), "UPO needs at least one auxiliary objective: auxiliary: [{name: ..., scorer: ...}]"),
            (dict(likelihood="max"), "need likelihood in (mean, sum), tau > 0 and gamma >= 0"),
            (dict(tau=0.0), "need likelihood in (mean, sum), tau > 0 and gamma >= 0"),
            (dict(gamma=-1.0), "need likelihood in (mean, sum), tau > 0 and gamma >= 0"),
            (dict(preference_loss="ipo"), "preference_loss must be one of ('dpo', 'kto'), got 'ipo'"),
            (dict(gate_mode="both"), "gate_mode must be 'nearest' or 'interpolate', got 'both'"),
            (dict(grid=[[0.5, 0.6]]), "preference points must lie on the simplex"),
            (dict(grid=None, grid_resolution=0), "grid_resolution must be at least 1, got 0")):
        with pytest.raises(ConfigError) as e:
            _upo(tmp_path, tiny_base, pref_jsonl, **bad)
        assert str(e.value).startswith(message)
    cfg = _upo(tmp_path, tiny_base, pref_jsonl, gamma=0.0, likelihood="sum", gate_mode="nearest", grid=None,
               grid_resolution=1)
    assert (cfg.gamma, cfg.likelihood, cfg.k) == (0.0, "sum", 2)
    # the trainer's grid is the config's resolution; the family sees the designer objectives, the config
    # gets its own objectives back (training and writing stubbed: only the wiring runs)
    seen = {}

    def fake_write(cfg_, method, adapters, points, mode, **kwargs):
        seen.update(points=points, mode=mode, names=[o.name for o in cfg_.objectives],
                    aux_higher_is_better=[o.higher_is_better for o in cfg_.objectives[1:]])

    monkeypatch.setattr(upo, "train_point", lambda cfg_, w, *args: tmp_path / f"adapter-{w}")
    monkeypatch.setattr(upo, "write_anchor_family", fake_write)
    upo.train(cfg, scorers=[words])
    assert seen == {"points": [[1.0, 0.0], [0.0, 1.0]], "mode": "nearest", "names": ["helpful", "short"],
                    "aux_higher_is_better": [False]}  # False itself, not a falsy None
    assert [o.name for o in cfg.objectives] == ["helpful"]

    class Named:  # a scorer object: its name is recorded when the config gives no scorer spec
        name, higher_is_better = "named", True

        def __call__(self, prompts, responses):
            return [float(len(r)) for r in responses]

    recorded = []
    monkeypatch.setattr(upo, "write_anchor_family", lambda *a, **kw: recorded.append(kw["training"]["scorers"]))
    unnamed = _upo(tmp_path, tiny_base, pref_jsonl, auxiliary=[{"name": "a", "scorer": ""}, {"name": "b", "scorer": ""}],
                   grid=[[0.0, 0.5, 0.5]])
    upo.train(unnamed, scorers=[Named(), functools.partial(words)])
    assert recorded == [["named", "callable"]]
    assert upo.weights_for([1.0 - 1e-13, 1e-13], 2.0) == (0.0, [0.0])  # the plain-preference vertex, to rounding


def test_summed_likelihood_unnormalised_scores_held_out_pairs_and_reuse(tmp_path, tiny_base, pref_jsonl,
                                                                         monkeypatch):
    """likelihood: sum and normalise: false reach the loss; the held-out pairs are scored with the training
    statistics and evaluated; the family records both; a finished point is reused, a changed one refused."""
    import numpy as np
    from trainer_spies import dpo_losses, logps, nearly, record_runs, response_texts
    from transformers import AutoTokenizer

    from paretoapp.trainers.config import ConfigError

    tok = AutoTokenizer.from_pretrained(tiny_base)

    def oracle(run, model, batch, metrics):
        a = -torch.tensor([float(len(t.split())) for t in response_texts(tok, batch)])  # oriented, not z-scored
        awr = float((torch.softmax(a / 0.5, dim=0) * logps(model, batch)).sum())
        return {"loss": float(dpo_losses(model, batch, 0.1).mean()) - 2.0 * awr}

    data = {"source": str(pref_jsonl), "eval_fraction": 0.34}
    settings = dict(objectives=[{"name": "helpful", "data": data}], likelihood="sum", normalise=False, tau=0.5,
                    train={"max_steps": 2, "batch_size": 2, "learning_rate": 5e-2}, overwrite=True)
    rec = record_runs(monkeypatch, oracle)
    m = Family.load(upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **settings))).manifest
    run = rec["upo-w0-100"]
    assert len(run.rows) == 4
    from paretoapp.trainers.data import train_eval_pairs
    seeded = _upo(tmp_path, tiny_base, pref_jsonl, **settings)
    want, _ = train_eval_pairs(seeded.objectives[0].data, seeded.train.seed)  # the split of train.seed
    assert sorted(r["prompt"] for r in run.rows) == sorted(p["prompt"] for p in want)
    for step in run.steps:
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    final = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["final"] and {"eval_loss", "eval_awr_loglik", "eval_dpo_loss"} <= set(final)
    assert m.training["aux_normalisation"] == {} and m.training["likelihood"] == "sum"
    assert m.training["weights"] == {"w0-100": {"gamma": 2.0, "c": [1.0]}} and m.training["tau"] == 0.5
    saved = json.loads((run.run_dir / "run.json").read_text())
    assert (saved["w"], saved["gamma"], saved["c"], saved["tau"]) == ([0.0, 1.0], 2.0, [1.0], 0.5)
    assert (saved["likelihood"], saved["normalise"], saved["scorers"]) == ("sum", False, ["length_words"])
    assert "preference_loss" not in saved  # a DPO run's recipe as before the option existed

    # z-scored: the held-out rows with the training rows' mean and std
    cfg = _upo(tmp_path, tiny_base, pref_jsonl, objectives=[{"name": "helpful", "data": data}])
    scorer = upo._Directed(lambda p, r: [float(len(x.split())) for x in r], False)
    train_rows, eval_rows, stats = upo.scored_data(cfg, [scorer])
    words = -np.array([len(r[k].split()) for r in train_rows for k in ("chosen", "rejected")], dtype=float)
    assert stats == {"mean": [words.mean()], "std": [words.std()]}
    for row in eval_rows:
        assert row["aux_chosen"] == pytest.approx([(-len(row["chosen"].split()) - words.mean()) / words.std()])

    # z-scores do not depend on the scorer's scale (a std under one included); a constant scorer gives zeros
    tiny = upo._Directed(lambda p, r: [len(x.split()) / 100.0 for x in r], False)
    const = upo._Directed(lambda p, r: [3.0] * len(r), True)
    small_rows, _, small_stats = upo.scored_data(cfg, [tiny, const])
    assert small_stats["std"][1] == 1.0 and small_stats["std"][0] < 1
    assert [r["aux_chosen"][0] for r in small_rows] == pytest.approx([r["aux_chosen"][0] for r in train_rows])
    assert {v for r in small_rows for v in (r["aux_chosen"][1], r["aux_rejected"][1])} == {0.0}
    cfg.objectives[0].data = None  # an objective with an adapter but no pairs gets past the config
    with pytest.raises(ConfigError) as e:
        upo.scored_data(cfg, [scorer])
    assert str(e.value) == "objective 'helpful' needs preference data (UPO trains on its pairs)"

    n = len(rec.runs)
    upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **settings))
    assert len(rec.runs) == n
    with pytest.raises(ConfigError, match=r"different settings \(tau\)"):
        upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **{**settings, "tau": 0.7}))


def test_directions_truncation_label_smoothing_the_record_and_changed_runs(tmp_path, tiny_base, pref_jsonl,
                                                                          monkeypatch):
    """The wiring the other tests leave open: a higher-is-better auxiliary (a plain callable, and a config's
    True over a scorer's False) is not negated; train.max_length, max_prompt_length and label_smoothing reach
    the run; the family names every objective with its direction, the gate mode and the weights; a finished
    point is refused when its data or its preference loss changes."""
    import numpy as np
    from trainer_spies import record_runs, response_texts
    from transformers import AutoTokenizer

    from paretoapp.trainers.config import ConfigError

    def plain(prompts, responses):  # no direction attribute: higher is better
        return [float(len(r)) for r in responses]

    settings = dict(auxiliary=[{"name": "long", "scorer": ""}, {"name": "vowelly", "higher_is_better": True}],
                    grid=[[0.5, 0.25, 0.25]],
                    train={"max_steps": 2, "batch_size": 2, "learning_rate": 5e-2, "max_length": 9,
                           "max_prompt_length": 4, "label_smoothing": 0.2})
    rec = record_runs(monkeypatch)
    m = Family.load(upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **settings), scorers=[plain, vowel_cost])).manifest
    run = rec["upo-w50-25-25"]
    responses = [p[k] for p in run.rows for k in ("chosen", "rejected")]
    raw = np.array([plain([], responses), vowel_cost([], responses)]).T  # neither negated
    z = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    got = np.array([a for p in run.rows for a in (p["aux_chosen"], p["aux_rejected"])])
    np.testing.assert_allclose(got, z, atol=1e-9)
    tok = AutoTokenizer.from_pretrained(tiny_base)
    for step in run.steps:
        real = step.batch["attention_mask"].sum(-1)
        assert real.max() == 9 and (real - step.batch["completion_mask"].sum(-1)).max() == 4
        assert all(response_texts(tok, step.batch))
    assert {c.kwargs["label_smoothing"] for c in rec.calls_of("dpo_loss", run.name)} == {0.2}
    assert [(o.name, o.higher_is_better) for o in m.objectives] == [("helpful", True), ("long", True),
                                                                     ("vowelly", True)]
    assert m.gate.mode == "interpolate"
    assert (m.training["preference_loss"], m.training["gamma_max"], m.training["scorers"]) == \
        ("dpo", 2.0, ["plain", "vowel_cost"])
    assert m.description == ("UPO: DPO on helpful plus advantage-weighted likelihood of long, vowelly; one adapter "
                             "per auxiliary weight")
    for changed, what in (({"objectives": [{"name": "helpful", "data": {"source": str(pref_jsonl),
                                                                          "eval_fraction": 0.34}}]}, "data"),
                          ({"preference_loss": "kto"}, "preference_loss")):
        with pytest.raises(ConfigError, match=rf"different settings \({what}"):
            upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **{**settings, **changed}), scorers=[plain, vowel_cost])
    with pytest.raises(ConfigError) as e:
        upo.train(_upo(tmp_path, tiny_base, pref_jsonl, **settings), scorers=[plain])
    assert str(e.value) == "2 auxiliary objectives but 1 scorers"
