"""Rewards-in-Context: the conditioning prompt round-trips and training text equals inference text."""

from __future__ import annotations

import pytest
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.conditioning import Conditioning, normal_bounds
from paretoapp.family import Family
from paretoapp.trainers import rewards_in_context as ric
from paretoapp.trainers.config import load_config
from paretoapp.trainers.data import tokenize_response
from paretoapp.trainers.lora import load_base


def length_scorer(prompts, responses):
    return [float(len(r)) for r in responses]


def vowel_scorer(prompts, responses):
    return [float(sum(ch in "aeiou" for ch in r)) for r in responses]


@pytest.fixture(scope="module")
def ric_run(tmp_path_factory, tiny_base, pref_jsonl):
    tmp = tmp_path_factory.mktemp("ric")
    path = write_config(tmp / "ric.yaml", tiny_base, pref_jsonl, tmp / "run", system_prompt="Be brief.",
                        train={"max_steps": 2, "batch_size": 4})
    cfg = load_config(ric.RiCConfig, str(path))
    return cfg, ric.train(cfg, scorers=[length_scorer, vowel_scorer])


def test_conditioning_prompt_round_trips(ric_run, tiny_base):
    cfg, family_dir = ric_run
    cond = Family.load(family_dir).manifest.conditioning
    assert cond.tags == ["<rm1_score>", "<rm2_score>"] and cond.mapping == "linear"
    # z-normalised scores rounded to 0.1 come back from the rendered prompt
    _, tok = load_base(str(tiny_base))
    rows, _, cond2, record = ric.build_rows(cfg, tok, [length_scorer, vowel_scorer])
    assert cond2.to_dict() == cond.to_dict()
    user = rows[0]["prompt"][-1]["content"]
    text, scores = cond.parse(user)
    assert text == "How do I boil an egg?"
    assert cond.render(text, scores) == user
    z = (len(" Put it in boiling water for nine minutes.") - record["mean"][0]) / record["std"][0]
    assert scores[0] == pytest.approx(round(z, 1))
    # the family's targets span the training scores (bounds: data)
    assert cond.low == pytest.approx(record["z_min"]) and cond.high == pytest.approx(record["z_max"])
    assert cond.extra == {"bounds": "data"}
    assert cond.targets([1.0, 0.0]) == pytest.approx([round(cond.high[0], 1), round(cond.low[1], 1)])
    c = Conditioning(tags=["<a>", "<b>"], low=[-1, -2], high=[1, 2], mapping="linf")
    assert c.parse(c.apply("Hi there", [0.25, 0.75])) == ("Hi there", [0.0, 2.0])


# The released map_rewards_from_preference (YangRui2015/RiC, ric/utils.py), run on these inputs:
# low/high = -4.2/4.2 for every objective, and the released evaluation's reference
# (np.random.seed(8888); [np.random.randn(50000) for _ in objectives]).
RELEASED_SYMMETRIC = {  # w: {mapping: targets}
    (0.3, 0.7): {"linear": [-1.7, 1.7], "l2": [-0.9, 3.5], "linf": [0.8, 4.2]},
    (0.5, 0.5): {"linear": [0.0, 0.0], "l2": [1.7, 1.7], "linf": [4.2, 4.2]},
    (0.25, 0.75): {"linear": [-2.1, 2.1], "l2": [-1.5, 3.8], "linf": [0.0, 4.2]},
    (1.0, 0.0): {"linear": [4.2, -4.2], "l2": [4.2, -4.2], "linf": [4.2, -4.2]},
    (0.2, 0.4, 0.4): {"linear": [-2.5, -0.8, -0.8], "l2": [-1.4, 1.4, 1.4], "linf": [0.8, 4.2, 4.2]},
    (0.33, 0.33, 0.33): {"linear": [-1.4, -1.4, -1.4], "l2": [0.6, 0.6, 0.6], "linf": [4.2, 4.1, 4.1]},
    (0.1, 0.1, 0.8): {"linear": [-3.4, -3.4, 2.5], "l2": [-3.2, -3.2, 4.1], "linf": [-1.7, -1.7, 4.2]},
    (0.6, 0.2, 0.2): {"linear": [0.8, -2.5, -2.5], "l2": [3.4, -1.7, -1.7], "linf": [4.2, 0.8, 0.8]},
}
RELEASED_NORMAL = {
    (0.3, 0.7): {"linear": [-1.5, 1.7], "l2": [-0.7, 3.5], "linf": [0.9, 4.2]},
    (0.5, 0.5): {"linear": [0.1, 0.1], "l2": [1.7, 1.8], "linf": [4.1, 4.2]},
    (0.25, 0.75): {"linear": [-1.9, 2.1], "l2": [-1.4, 3.7], "linf": [0.1, 4.2]},
    (1.0, 0.0): {"linear": [4.1, -4.0], "l2": [4.1, -4.0], "linf": [4.1, -4.0]},
    (0.2, 0.4, 0.4): {"linear": [-2.3, -0.8, -0.6], "l2": [-1.2, 1.4, 1.6], "linf": [0.9, 4.2, 4.4]},
    (0.33, 0.33, 0.33): {"linear": [-1.3, -1.3, -1.2], "l2": [0.7, 0.7, 0.9], "linf": [4.1, 4.1, 4.3]},
    (0.1, 0.1, 0.8): {"linear": [-3.1, -3.2, 2.7], "l2": [-2.9, -3.0, 4.3], "linf": [-1.5, -1.6, 4.4]},
    (0.6, 0.2, 0.2): {"linear": [0.9, -2.4, -2.3], "l2": [3.3, -1.6, -1.5], "linf": [4.1, 0.9, 1.1]},
}


@pytest.mark.parametrize("table, bounds", [(RELEASED_SYMMETRIC, "symmetric"), (RELEASED_NORMAL, "normal")])
def test_mappings_are_the_released_code(table, bounds):
    for w, by_mapping in table.items():
        k = len(w)
        low, high = normal_bounds(k) if bounds == "normal" else ([-4.2] * k, [4.2] * k)
        for mapping, want in by_mapping.items():
            c = Conditioning(tags=[f"<rm{i + 1}_score>" for i in range(k)], low=low, high=high, mapping=mapping)
            assert c.targets(w) == want, (w, mapping)
            assert c.parse(c.apply("p", w))[1] == want  # the prompt carries exactly these targets


def test_normal_bounds_are_the_released_reference():
    low, high = normal_bounds(2)
    assert low == pytest.approx([-3.8656, -4.0380], abs=1e-4) and high == pytest.approx([4.0565, 4.1657], abs=1e-4)
    assert normal_bounds(3)[0][:2] == low  # objective i's sample does not depend on k
    assert normal_bounds(2, seed=1) != (low, high) and normal_bounds(2, seed=1) == normal_bounds(2, seed=1)


def test_linf_at_a_third_of_the_weight_asks_for_part_of_the_range():
    """The review's example: at w = (0.3, 0.7) linf asks for 0.6 of objective 1's range, l2 for 0.394."""
    c = Conditioning(tags=["<a>", "<b>"], low=[0.0, 0.0], high=[10.0, 10.0], mapping="linf", decimals=3)
    assert c.targets([0.3, 0.7]) == [6.0, 10.0]
    assert c.targets([0.7, 0.3]) == [10.0, 6.0] and c.targets([0.5, 0.5]) == [10.0, 10.0]
    l2 = Conditioning(tags=["<a>", "<b>"], low=[0.0, 0.0], high=[10.0, 10.0], mapping="l2", decimals=3)
    assert l2.targets([0.3, 0.7]) == pytest.approx([3.939, 9.191])
    # all-zero w under l2: no direction, every objective asks for its low end
    assert l2.targets([0.0, 0.0]) == [0.0, 0.0]


def _error(**kwargs) -> str:
    with pytest.raises(ValueError) as e:
        Conditioning(**{"tags": ["<a>"], "low": [0.0], "high": [1.0], **kwargs})
    return str(e.value)


def test_bad_conditioning_is_named():
    assert _error(mapping="max") == ("unknown conditioning mapping 'max'; expected one of ('linear', 'l2', 'linf'); "
                                     "'max' was replaced by the released code's 'linf'")
    assert _error(mapping="cubic") == "unknown conditioning mapping 'cubic'; expected one of ('linear', 'l2', 'linf')"
    assert _error(kind="image") == "unknown conditioning kind 'image'; only 'reward_tags' is supported"
    assert _error(low=[0.0, 1.0]) == "conditioning needs one tag, one low and one high value per objective"
    c = Conditioning(tags=["<a>"], low=[0.0], high=[1.0])
    with pytest.raises(ValueError) as e:
        c.parse("no tags here")
    assert str(e.value) == "text carries no reward tags of this conditioning"


def test_a_training_prompt_must_end_with_a_user_turn():
    """The scores go into the last user turn: a transcript that ends with the assistant (or has no turn) has
    nowhere to put them, and says so in one line."""
    from paretoapp.trainers.config import ConfigError

    c = Conditioning(tags=["<a>", "<b>"], low=[0.0, 0.0], high=[1.0, 1.0])
    ends_with_answer = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    for prompt in (ends_with_answer, []):
        with pytest.raises(ConfigError) as err:
            ric.conditioned_prompt(None, prompt, [0.5, 0.5], c)
        assert str(err.value) == f"a prompt must end with a user message: {prompt!r}"


def test_without_a_chat_template_the_training_prompt_is_the_plain_runtime_text():
    """A tokenizer without a chat template: the scores still go into the last user turn, and the prompt is the
    runtime's ``Human:/Assistant:`` text (what ``Policy`` feeds such a model), system prompt and history kept."""
    from types import SimpleNamespace

    c = Conditioning(tags=["<a>", "<b>"], low=[0.0, 0.0], high=[1.0, 1.0])
    plain = SimpleNamespace(chat_template=None)
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
             {"role": "user", "content": "Name a colour."}]
    assert ric.conditioned_prompt(plain, turns, [0.2, 0.5], c, "Be brief.") == (
        "Be brief.\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Name a colour. <a> 0.2 <b> 0.5\n\nAssistant:")


def test_rendering_with_two_decimals():
    c = Conditioning(tags=["<a>", "<b>"], low=[0.0, 0.0], high=[1.0, 1.0], decimals=2)
    assert c.render("p", [0.125, -0.375]) == "p <a> 0.13 <b> -0.38"  # half away from zero at 0.01
    assert c.targets([1 / 3, 2 / 3]) == [0.33, 0.67]


def test_conditioning_bounds_from_the_config(tmp_path, tiny_base, pref_jsonl):
    import numpy as np
    z = np.array([[-1.25, 0.5], [2.0, -3.0], [0.0, 1.5]])
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run", mapping="linf", decimals=2)
    cfg = load_config(ric.RiCConfig, str(path))
    c = ric.conditioning_for(cfg, z)
    assert (c.low, c.high, c.mapping, c.decimals) == ([-1.25, -3.0], [2.0, 1.5], "linf", 2)
    assert c.tags == ["<rm1_score>", "<rm2_score>"] and c.extra == {"bounds": "data"}
    cfg.bounds, cfg.bounds_seed, cfg.bounds_draws = "normal", 3, 1000
    c = ric.conditioning_for(cfg, z)
    assert (c.low, c.high) == normal_bounds(2, seed=3, draws=1000)
    assert c.extra == {"bounds": "normal", "seed": 3, "draws": 1000}
    cfg.target_low, cfg.tags = [-4.0, -4.0], ["<h>", "<s>"]
    c = ric.conditioning_for(cfg, z)
    assert c.low == [-4.0, -4.0] and c.high == normal_bounds(2, seed=3, draws=1000)[1] and c.tags == ["<h>", "<s>"]
    for bad, message in ((dict(bounds="uniform"), "bounds must be one of ('data', 'normal'), got 'uniform'"),
                         (dict(bounds_draws=1), "bounds_draws must be at least 2, got 1"),
                         (dict(mapping="max"), "mapping must be one of ('linear', 'l2', 'linf'), got 'max'; 'max' is "
                                               "now the released code's 'linf'"),
                         (dict(mapping="l3"), "mapping must be one of ('linear', 'l2', 'linf'), got 'l3'"),
                         (dict(responses="all"), "responses must be 'both' or 'chosen'"),
                         (dict(raw_decimals=-1), "raw_decimals must be 0 or more (or null: no rounding), got -1"),
                         (dict(tags=["<a>"]), "tags needs one value per objective (2), got ['<a>']"),
                         (dict(target_high=[1.0, 2.0, 3.0]), "target_high needs one value per objective (2), got "
                                                             "[1.0, 2.0, 3.0]")):
        with pytest.raises(ValueError) as e:
            load_config(ric.RiCConfig, str(write_config(tmp_path / "bad.yaml", tiny_base, pref_jsonl,
                                                          tmp_path / "run", **bad)))
        assert str(e.value) == message
    ok = load_config(ric.RiCConfig, str(write_config(tmp_path / "ok.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                                                     bounds_draws=2, responses="chosen", tags=["<a>", "<b>"])))
    assert (ok.bounds_draws, ok.responses, ok.tags) == (2, "chosen", ["<a>", "<b>"])  # the smallest valid values


def test_normal_bounds_in_a_trained_family(tmp_path, tiny_base, pref_jsonl):
    """bounds: normal takes low/high from the seeded standard-normal reference, not the data."""
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run", mapping="l2",
                        bounds="normal", train={"max_steps": 1, "batch_size": 4})
    cfg = load_config(ric.RiCConfig, str(path))
    cond = Family.load(ric.train(cfg, scorers=[length_scorer, vowel_scorer])).manifest.conditioning
    assert (cond.low, cond.high) == normal_bounds(2)
    assert cond.extra == {"bounds": "normal", "seed": 8888, "draws": 50000}
    assert cond.targets([0.3, 0.7]) == [-0.7, 3.5]


def test_training_prompt_is_the_inference_prompt(ric_run, tiny_base):
    """The tokens the SFT saw for scores = targets(w) are the tokens generate() feeds for w."""
    from paretoapp.generate import GenerationSettings, load_policy
    cfg, family_dir = ric_run
    policy = load_policy(family_dir)
    cond = policy.manifest.conditioning
    w = [0.3, 0.7]
    train_prompt = ric.conditioned_prompt(policy.tokenizer, "Name a colour.", cond.targets(w), cond, cfg.system_prompt)
    want = tokenize_response(policy.tokenizer, train_prompt, " Red.")["prompt_ids"]
    enc = policy.encode(["Name a colour."], policy.manifest.check_w(w), GenerationSettings(max_new_tokens=2))
    assert enc["input_ids"][0].tolist() == want
    assert "<rm1_score>" in policy.tokenizer.decode(want) and "Be brief." in policy.tokenizer.decode(want)


def test_family_is_one_constant_block_and_generates_per_row(ric_run):
    from paretoapp.generate import GenerationSettings, load_policy
    cfg, family_dir = ric_run
    m = Family.load(family_dir).manifest
    assert m.method == "rewards_in_context" and [b.name for b in m.blocks] == ["sft"]
    assert m.rank_gains([[0.2, 0.8], [1.0, 0.0]]).unique().tolist() == [1.0]
    # w lives on the simplex and is trained everywhere on it (the conditioning, not the weights, carries it)
    assert m.on_simplex is True and (m.w_low, m.w_high, m.in_sample_low, m.in_sample_high) == \
        ([0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    assert m.description == ("Rewards-in-Context: SFT on prompts carrying the responses' normalised reward scores; "
                             f"a preference asks for target scores ({cfg.mapping} mapping, {cfg.bounds} bounds)")
    assert (cfg.adapters_path / "ric-sft" / "done.json").is_file()
    out = load_policy(family_dir).generate(["Hi.", "Hi."], [[1.0, 0.0], [0.0, 1.0]], GenerationSettings(max_new_tokens=3))
    assert len(out) == 2


def third_length(prompts, responses):
    return [len(r) / 3.0 for r in responses]


@pytest.mark.parametrize("raw_decimals", [None, 1])
def test_the_trainer_sfts_every_response_under_its_own_scores(tmp_path, tiny_base, pref_jsonl, monkeypatch,
                                                             raw_decimals):
    """The trainer itself: one SFT run from theta_0 on every distinct response of every objective's pairs
    (chosen and rejected), each prompt carrying that response's own z-scored scores rounded to 0.1 (with
    ``raw_decimals: 1`` the raw scores rounded to 0.1 first, as the released code does), the loss on the
    response tokens only."""
    import numpy as np
    import torch
    from trainer_fixtures import PAIRS
    from trainer_spies import probe_logits, prompt_texts, record_runs, response_texts, sft_nll
    from transformers import AutoTokenizer

    def oracle(run, model, batch, metrics):
        return {"loss": sft_nll(model, batch), "with_prompt": sft_nll(model, batch, "attention_mask")}

    pool = []
    for objective in ("helpful", "harmless"):
        for p, c, r in PAIRS[objective]:
            pool += [(p, " " + x) for x in (c, r) if (p, " " + x) not in pool]
    raw = np.array([third_length([], [r for _, r in pool]), vowel_scorer([], [r for _, r in pool])]).T

    def written(raw):
        z = (raw - raw.mean(axis=0)) / raw.std(axis=0)
        return {key: [round(v + 0.0, 1) for v in row] for key, row in zip(pool, z)}

    want = written(raw if raw_decimals is None else np.round(raw, raw_decimals))
    assert (want == written(raw)) == (raw_decimals is None)  # the released rounding changes some written score

    extra = {} if raw_decimals is None else {"raw_decimals": raw_decimals}
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                        train={"max_steps": 3, "batch_size": 4, "learning_rate": 5e-2, "max_length": 256},
                        **extra)
    cfg = load_config(ric.RiCConfig, str(path))
    rec = record_runs(monkeypatch, oracle)
    manifest = Family.load(ric.train(cfg, scorers=[third_length, vowel_scorer])).manifest
    cond = manifest.conditioning
    assert manifest.training["normalisation"].get("raw_decimals") == raw_decimals
    run = rec["ric-sft"]
    assert len(run.rows) == len(pool) == 24
    got = {}
    for row in run.rows:
        text, scores = cond.parse(row["prompt"][-1]["content"])
        got[(text, row["response"])] = scores
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    tok = AutoTokenizer.from_pretrained(tiny_base)
    rendered = {r.strip(): cond.render(p, want[(p, r)]) for p, r in pool}
    for step in run.steps:
        for prompt, response in zip(prompt_texts(tok, step.batch), response_texts(tok, step.batch)):
            assert rendered[response] in prompt  # the response under its own scores, the prompt as context only
        assert abs(step.loss - step.expected["loss"]) < 1e-4 * max(1.0, step.expected["loss"])
    assert max(abs(s.expected["loss"] - s.expected["with_prompt"]) for s in run.steps) > 1e-3
    model, _ = load_base(str(tiny_base))
    torch.testing.assert_close(run.start_logits, probe_logits(model))


def test_chosen_only_held_out_pairs_truncation_and_config_scorers(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """``responses: chosen`` trains on the chosen answers of each objective's training pairs only, the held-out
    pairs (the run's split, per objective) are evaluated, the SFT run is truncated as configured, and the
    config's scorers are built for the run."""
    import numpy as np
    import torch
    from trainer_fixtures import OBJECTIVES
    from trainer_spies import record_runs

    from paretoapp.trainers.data import DataSpec, train_eval_pairs

    built = []

    def hundredths(prompts, responses):  # a standard deviation below 1
        return [len(r) / 100 for r in responses]

    def constant(prompts, responses):  # no spread at all: z = 0
        return [3.0 for _ in responses]

    def build_scorers(specs, cfg, k, what):
        built.append((specs, cfg, k, what))
        return [hundredths, constant]

    monkeypatch.setattr(ric, "build_objective_scorers", build_scorers)
    held = {"source": str(pref_jsonl), "eval_fraction": 0.34}
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run", responses="chosen",
                        scorers=["length_words", "refusal"], objectives=[{"name": o, "data": held} for o in OBJECTIVES],
                        system_prompt="Be brief.",
                        train={"max_steps": 2, "batch_size": 4, "max_length": 9, "max_prompt_length": 4})
    cfg = load_config(ric.RiCConfig, str(path))
    rec = record_runs(monkeypatch)
    m = Family.load(ric.train(cfg)).manifest
    assert all(r["prompt"][0] == {"role": "system", "content": "Be brief."} for r in rec["ric-sft"].rows)
    assert built == [(["length_words", "refusal"], cfg, 2, "Rewards-in-Context")]
    run = rec["ric-sft"]
    split = [train_eval_pairs(DataSpec(source=str(pref_jsonl), eval_fraction=0.34, objective=o), 0) for o in OBJECTIVES]
    cond = m.conditioning
    for rows, pairs in ((run.rows, [p for t, _ in split for p in t]), (run.eval_rows, [p for _, e in split for p in e])):
        assert [(cond.parse(r["prompt"][-1]["content"])[0], r["response"]) for r in rows] == \
            [(p["prompt"], p["chosen"]) for p in pairs]
    real = torch.cat([s.batch["attention_mask"].sum(-1) for s in run.steps])
    prompt = real - torch.cat([s.batch["completion_mask"].sum(-1) for s in run.steps])
    assert real.max() == 9 and prompt.max() == 4
    assert m.training["scorers"] == ["length_words", "refusal"] and m.training["responses"] == "chosen"
    # every prompt, held-out ones included, carries z-scores over the training answers (a zero spread left at 0)
    train_answers = [p["chosen"] for t, _ in split for p in t]
    lengths = np.array([len(a) / 100 for a in train_answers])
    mean, std = lengths.mean(), lengths.std()
    assert 0 < std < 1
    for rows in (run.rows, run.eval_rows):
        for r in rows:
            scores = cond.parse(r["prompt"][-1]["content"])[1]
            assert scores == pytest.approx([round((len(r["response"]) / 100 - mean) / std + 0.0, 1), 0.0], abs=1e-9)
    assert m.training["normalisation"] == {"mean": pytest.approx([mean, 3.0]), "std": pytest.approx([std, 1.0]),
                                           "n_train": 8, "z_min": pytest.approx([min((lengths - mean) / std), 0.0]),
                                           "z_max": pytest.approx([max((lengths - mean) / std), 0.0])}


def test_a_response_in_two_objectives_pairs_is_trained_once(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    import functools

    from trainer_fixtures import PAIRS
    from trainer_spies import record_runs

    same = {"source": str(pref_jsonl), "objective": "helpful"}
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run", normalise=False,
                        objectives=[{"name": n, "data": same} for n in ("helpful", "again", "third")],
                        train={"max_steps": 1, "batch_size": 4})
    rec = record_runs(monkeypatch)
    named = functools.partial(vowel_scorer)
    named.name = "vowels"
    scorers = [length_scorer, named, functools.partial(length_scorer)]  # a name, a .name, neither
    manifest = Family.load(ric.train(load_config(ric.RiCConfig, str(path)), scorers=scorers)).manifest
    assert manifest.training["scorers"] == ["length_scorer", "vowels", "callable"]
    cond = manifest.conditioning
    parsed = [(cond.parse(r["prompt"][-1]["content"]), r["response"]) for r in rec["ric-sft"].rows]
    got = sorted((text, response) for (text, _), response in parsed)
    assert len(got) == 12 and len(set(got)) == 12  # helpful's six pairs once, chosen and rejected
    for (_, scores), response in parsed:  # normalise: false: the raw scores
        assert scores == pytest.approx([length_scorer([], [response])[0], vowel_scorer([], [response])[0],
                                        length_scorer([], [response])[0]])
    assert {r.strip() for _, r in got} == {x.strip() for _, c, r in PAIRS["helpful"] for x in (c, r)}


def test_a_finished_run_is_reused_and_a_changed_one_refused(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """Reused with the same settings; refused when any one of them changes: with normal bounds, normalise
    changes the record alone, the mapping the conditioning alone, a renamed scorer the scorers alone."""
    from trainer_spies import record_runs

    from paretoapp.trainers.config import ConfigError

    def config(**extra):
        path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run", overwrite=True,
                            train={"max_steps": 1, "batch_size": 4}, bounds="normal", **extra)
        return load_config(ric.RiCConfig, str(path))

    def length_again(prompts, responses):  # the same scores under another name
        return length_scorer(prompts, responses)

    rec = record_runs(monkeypatch)
    ric.train(config(), scorers=[length_scorer, vowel_scorer])
    ric.train(config(), scorers=[length_scorer, vowel_scorer])
    assert len(rec.runs) == 1  # reused
    held = [{"name": o, "data": {"source": str(pref_jsonl), "eval_fraction": 0.5}} for o in ("helpful", "harmless")]
    for changed, scorers, key in ((dict(responses="chosen"), None, "responses"),
                                  (dict(system_prompt="Be brief."), None, "system_prompt"),
                                  (dict(objectives=held), None, "data"), (dict(mapping="l2"), None, "conditioning"),
                                  (dict(normalise=False), None, "normalisation"),
                                  ({}, [length_again, vowel_scorer], "scorers")):
        with pytest.raises(ConfigError, match="different settings") as err:
            ric.train(config(**changed), scorers=scorers or [length_scorer, vowel_scorer])
        assert key in str(err.value)  # the refusal names what changed
    assert len(rec.runs) == 1


def test_an_objective_without_data_does_not_hide_the_next_ones(ric_run):
    """RiC's check lets an objective bring no data (only another must): its pairs are skipped, not the rest."""
    import dataclasses

    cfg, _ = ric_run
    first, *rest = cfg.objectives
    no_data = dataclasses.replace(cfg, objectives=[dataclasses.replace(first, data=None), *rest])
    train, held = ric.responses_of(no_data)
    assert train and (train, held) == ric.responses_of(dataclasses.replace(cfg, objectives=rest))
