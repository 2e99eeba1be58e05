"""Rewards-in-Context: the conditioning prompt round-trips and training text equals inference text."""

from __future__ import annotations

import pytest
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.conditioning import Conditioning
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
    # the family's targets span the training scores
    assert cond.low == pytest.approx([round(v, 1) for v in record["z_min"]])
    assert cond.targets([1.0, 0.0]) == pytest.approx([cond.high[0], cond.low[1]])
    c = Conditioning(tags=["<a>", "<b>"], low=[-1, -2], high=[1, 2], mapping="max")
    assert c.parse(c.apply("Hi there", [0.25, 0.5])) == ("Hi there", [0.0, 2.0])


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
    assert (cfg.adapters_path / "ric-sft" / "done.json").is_file()
    out = load_policy(family_dir).generate(["Hi.", "Hi."], [[1.0, 0.0], [0.0, 1.0]], GenerationSettings(max_new_tokens=3))
    assert len(out) == 2
