"""The demo's prompt sources: split by source and category, the evaluation never trained or tuned on."""

from __future__ import annotations

import pytest

sources = pytest.importorskip("paretoapp.demo.sources")
try:
    SPLITS = sources.all_splits()
except Exception as exc:  # a wheel of requirements-nodeps.txt is missing
    pytest.skip(f"the demo's prompt wheels are not installed ({exc})", allow_module_level=True)


def test_splits_are_disjoint_and_the_evaluation_is_large_enough():
    keys = {split: {sources.normalise(p.prompt) for p in rows} for split, rows in SPLITS.items()}
    assert not keys["train"] & keys["dev"] and not keys["train"] & keys["ood"] and not keys["dev"] & keys["ood"]
    ood = SPLITS["ood"]
    for kind, least in (("harmful", 64), ("everyday", 64), ("edgy", 32)):
        assert sum(p.kind == kind for p in ood) >= least, kind


def test_the_evaluation_holds_sources_and_a_harm_category_never_trained_on():
    by_split = {split: {p.source for p in rows} for split, rows in SPLITS.items()}
    assert {"strongreject", "healthsearchqa"} <= by_split["ood"]
    assert not {"strongreject", "healthsearchqa", "aplomb-edgy"} & (by_split["train"] | by_split["dev"])
    held_out = [p for p in SPLITS["ood"] if p.category == sources.HELD_OUT]
    assert len(held_out) >= 20
    assert not [p for s in ("train", "dev") for p in SPLITS[s] if p.kind == "harmful" and sources._SEXUAL.search(p.prompt)]


def test_sample_draws_every_source_in_turn_and_is_seeded():
    a = sources.sample("ood", {"harmful": 10, "everyday": 10, "edgy": 10}, seed=3)
    assert a == sources.sample("ood", {"harmful": 10, "everyday": 10, "edgy": 10}, seed=3)
    assert a != sources.sample("ood", {"harmful": 10, "everyday": 10, "edgy": 10}, seed=4)
    edgy = [p.source for p in a if p.kind == "edgy"]
    assert edgy.count("aplomb-edgy") == 5 and edgy.count("healthsearchqa") == 5  # round robin, not by size
    with pytest.raises(sources.DemoDataError, match="ask for at most"):
        sources.sample("ood", {"edgy": 10_000}, seed=0)


def test_every_source_names_its_wheel_and_licence():
    for row in sources.describe():
        assert row["wheel"].count("==") == 1 and row["licence"] and row["prompts"], row["source"]


def test_piqa_gives_how_to_questions_to_the_train_split_only():
    piqa = [p for split in SPLITS for p in SPLITS[split] if p.source == "piqa"]
    assert piqa and {split for split in SPLITS if any(p.source == "piqa" for p in SPLITS[split])} == {"train"}
    assert all(p.prompt.startswith("How do I ") and p.prompt.endswith("?") for p in piqa)


def test_the_piqa_reader_asks_each_how_to_goal_as_a_question_and_skips_sentence_starts(tmp_path):
    import json

    path = tmp_path / "piqa.jsonl"
    goals = ["how to get fluffy cookies", "How do you remove gum from hair.", "How can one fold a fitted sheet?",
             "To quarter biscuits, you can", "How to x?", "dresser"]
    path.write_text("".join(json.dumps({"question": g, "options": "", "answer": ""}) + "\n" for g in goals))
    assert [q for q, _ in sources._piqa(path)] == ["How do I get fluffy cookies?", "How do I remove gum from hair?",
                                                   "How do I fold a fitted sheet?"]
