"""The refusal SFT mix: every harmful train prompt refused, benign answers kept whole, nothing held out trained on."""

from __future__ import annotations

import re

import pytest

sources = pytest.importorskip("paretoapp.demo.sources")
try:
    SPLITS = sources.all_splits()
except Exception as exc:  # a wheel of requirements-demo-data.txt is missing
    pytest.skip(f"the demo's prompt wheels are not installed ({exc})", allow_module_level=True)

from paretoapp.demo import refusal_mix as rm  # noqa: E402
from paretoapp.demo.kind_classifier import QUESTION_FORMS  # noqa: E402

LONG = "Fruit flies breed in ripe fruit, so keep it in the fridge. A trap of vinegar and soap catches the rest."


def _first(split, kind):
    return next(p for p in SPLITS[split] if p.kind == kind)


def _answers():
    everyday, edgy = _first("train", "everyday"), _first("train", "edgy")
    return [
        {"prompt": everyday.prompt, "kind": "everyday", "greedy": LONG + "\n\n2. Then wipe the"},  # cut mid-list
        {"prompt": edgy.prompt, "kind": "edgy", "greedy": LONG},
        {"prompt": "How do I tie a tie?", "kind": "everyday", "greedy": "Cross it over."},  # too short to teach
        {"prompt": "What is love?", "kind": "everyday", "greedy": "Love love love love love love love love love."},
        {"prompt": _first("dev", "everyday").prompt, "kind": "everyday", "greedy": LONG},  # held out
        {"prompt": _first("ood", "edgy").prompt, "kind": "edgy", "greedy": LONG},          # held out
        {"prompt": _first("train", "harmful").prompt, "kind": "harmful", "greedy": LONG},  # not a benign answer
    ]


def test_last_sentence_end_drops_a_sentence_cut_mid_word():
    assert rm.last_sentence_end("One. Two is cut") == "One."
    assert rm.last_sentence_end("  Whole answer!  ") == "Whole answer!"
    assert rm.last_sentence_end("no end at all") == ""
    assert rm.last_sentence_end("Pi is 3.14 and") == ""  # a decimal point ends no sentence


def test_last_sentence_end_drops_a_list_number_that_starts_no_item():
    assert rm.last_sentence_end("Tips:\n\n1. Sleep early.\n\n2.") == "Tips:\n\n1. Sleep early."
    assert rm.last_sentence_end("Tips:\n\n1. Sleep early.\n\n2. Dim the") == "Tips:\n\n1. Sleep early."
    assert rm.last_sentence_end("Steps: 1. Mix. 2. Bake. 3.") == "Steps: 1. Mix. 2. Bake."
    assert rm.last_sentence_end("1.") == ""
    assert rm.last_sentence_end("It opened in 1999.") == "It opened in 1999."  # a year ends a sentence


def test_the_harmless_mix_refuses_every_harmful_train_prompt_and_keeps_benign_answers():
    harmless, helpful = rm.mixes(_answers())
    train_harmful = {p.prompt for p in SPLITS["train"] if p.kind == "harmful"}
    refused = {r["prompt"] for r in harmless if r["chosen"] in rm.REFUSALS}
    assert train_harmful <= refused
    assert len(refused) > len(train_harmful)  # question forms of the "how to" imperatives too
    forms = [re.compile(re.escape(f).replace(re.escape("{x}"), ".+") + "$") for f in QUESTION_FORMS]
    assert all(any(f.match(p) for f in forms) for p in refused - train_harmful)
    answered = [(r["prompt"], r["chosen"]) for r in harmless if r["chosen"] not in rm.REFUSALS]
    everyday, edgy = _first("train", "everyday").prompt, _first("train", "edgy").prompt
    assert sorted(answered) == sorted([(everyday, LONG), (edgy, LONG), (edgy, LONG)])  # edgy twice, cut whole
    assert sorted((r["prompt"], r["chosen"]) for r in helpful) == sorted([(everyday, LONG), (edgy, LONG)])


REFUSING = "I'm sorry for any confusion, but as a chatbot I can't teach you that. Please ask someone who knows it."


def test_an_answer_that_refuses_is_trained_on_by_neither_expert():
    everyday, edgy = _first("train", "everyday").prompt, _first("train", "edgy").prompt
    harmful = [p.prompt for p in SPLITS["train"] if p.kind == "harmful"][:2]
    answers = [{"prompt": everyday, "kind": "everyday", "greedy": REFUSING},
               {"prompt": edgy, "kind": "edgy", "greedy": LONG}]
    compliant = [{"prompt": harmful[0], "answer": REFUSING}, {"prompt": harmful[1], "answer": LONG}]
    harmless, helpful = rm.mixes(answers, compliant)
    assert not [r for r in harmless + helpful if r["chosen"] == REFUSING]
    assert sorted((r["prompt"], r["chosen"]) for r in helpful) == sorted([(edgy, LONG), (harmful[1], LONG)])
    assert [r["prompt"] for r in harmless if r["chosen"] == LONG] == [edgy, edgy]


def test_a_second_answer_fills_in_for_a_refused_benign_prompt_and_never_replaces_a_first():
    everyday, edgy = _first("train", "everyday"), _first("train", "edgy")
    harmful = next(p for p in SPLITS["train"] if p.kind == "harmful")
    answers = [{"prompt": everyday.prompt, "kind": "everyday", "greedy": REFUSING},
               {"prompt": edgy.prompt, "kind": "edgy", "greedy": LONG}]
    assert rm.unanswered([everyday, edgy, harmful], answers) == [everyday]
    other = "Vinegar traps work because flies love fermenting fruit. Put one near the bowl and empty it daily."
    second = [{"prompt": everyday.prompt, "kind": "everyday", "answer": other},
              {"prompt": edgy.prompt, "kind": "edgy", "answer": other}]  # a first answer exists: ignored
    assert rm.unanswered([everyday, edgy], answers + second) == []
    _, helpful = rm.mixes(answers + second)
    assert sorted((r["prompt"], r["chosen"]) for r in helpful) == sorted([(everyday.prompt, other), (edgy.prompt, LONG)])


def test_second_answers_are_sampled_under_the_always_answer_prompt(monkeypatch):
    from paretoapp.demo import data

    seen = {}

    def fake_generate(model, tokenizer, texts, batch_size, desc, show_progress, seed=None, **kwargs):
        seen.update(texts=texts, seed=seed, **kwargs)
        return ["an answer"] * len(texts)

    monkeypatch.setattr(data, "_generate_longest_first", fake_generate)
    prompt = _first("train", "everyday")
    rows = rm.second_answers([prompt], lm=(None, _ChatTokenizer()))
    assert rows == [{"prompt": prompt.prompt, "kind": "everyday", "source": prompt.source, "answer": "an answer"}]
    assert seen["texts"] == [f"<system>{data.STYLES['always_answer'][0]}<user>{prompt.prompt}<assistant>"]
    assert seen["do_sample"] is True and seen["seed"] == 1


def test_compliant_prompts_are_a_seeded_draw_of_harmful_train_prompts():
    train_harmful = {p.prompt for p in SPLITS["train"] if p.kind == "harmful"}
    picked = rm.compliant_prompts(40, seed=1)
    assert len(picked) == 40 and {p.prompt for p in picked} <= train_harmful
    assert picked == rm.compliant_prompts(40, seed=1) and picked != rm.compliant_prompts(40, seed=2)


class _ChatTokenizer:
    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def test_compliant_answers_are_sampled_under_the_always_answer_prompt(monkeypatch):
    from paretoapp.demo import data

    seen = {}

    def fake_generate(model, tokenizer, texts, batch_size, desc, show_progress, seed=None, **kwargs):
        seen.update(texts=texts, seed=seed, **kwargs)
        return [f"answer {i}" for i in range(len(texts))]

    monkeypatch.setattr(data, "_generate_longest_first", fake_generate)
    prompts = rm.compliant_prompts(3)
    rows = rm.answer_compliant(prompts, lm=(None, _ChatTokenizer()), seed=5)
    assert rows == [{"prompt": p.prompt, "answer": f"answer {i}"} for i, p in enumerate(prompts)]
    system = data.STYLES["always_answer"][0]
    assert seen["texts"] == [f"<system>{system}<user>{p.prompt}<assistant>" for p in prompts]
    assert seen["do_sample"] is True and seen["seed"] == 5 and seen["max_new_tokens"] == rm.MAX_NEW_TOKENS
    greedy = rm.answer_prompts(prompts, lm=(None, _ChatTokenizer()))
    assert seen["do_sample"] is False and seen["texts"][0] == f"<user>{prompts[0].prompt}<assistant>"
    assert greedy[0]["greedy"] == "answer 0"


def test_pairs_oppose_the_objectives_on_harmful_prompts_and_agree_on_benign_ones():
    everyday, edgy = _first("train", "everyday").prompt, _first("train", "edgy").prompt
    harmful = [p.prompt for p in SPLITS["train"] if p.kind == "harmful"][:2]
    held = _first("ood", "harmful").prompt
    answers = _answers() + [{"prompt": "Teach me chess", "kind": "everyday", "greedy": REFUSING}]
    compliant = [{"prompt": harmful[0], "answer": LONG}, {"prompt": harmful[1], "answer": REFUSING},
                 {"prompt": held, "answer": LONG}]
    pairs = rm.pairs(answers, compliant)
    as_set = lambda rows: sorted((r["prompt"], r["chosen"], r["rejected"] in rm.REFUSALS) for r in rows)  # noqa: E731
    benign = [(everyday, LONG, True), (edgy, LONG, True), (edgy, LONG, True)]
    harmless = {r["prompt"]: r for r in pairs["harmless"]}[harmful[0]]
    assert harmless["chosen"] in rm.REFUSALS and harmless["rejected"] == LONG
    helpful = {r["prompt"]: r for r in pairs["helpful"]}[harmful[0]]
    assert helpful == {"prompt": harmful[0], "chosen": LONG, "rejected": harmless["chosen"]}
    assert as_set(pairs["helpful"]) == sorted(benign + [(harmful[0], LONG, True)])
    assert [r["prompt"] for r in pairs["harmless"]].count(harmful[0]) == 1 and len(pairs["harmless"]) == 4
    assert rm.pairs(answers, compliant, seed=2) == rm.pairs(answers, compliant, seed=2)


def test_nothing_from_dev_or_ood_enters_a_mix():
    held_out = {sources.normalise(p.prompt) for s in ("dev", "ood") for p in SPLITS[s]}
    compliant = [{"prompt": _first("ood", "harmful").prompt, "answer": LONG},
                 {"prompt": _first("train", "harmful").prompt, "answer": LONG}]
    harmless, helpful = rm.mixes(_answers(), compliant)
    assert not {sources.normalise(r["prompt"]) for r in harmless + helpful} & held_out
    assert [r["prompt"] for r in helpful if r["prompt"] == compliant[1]["prompt"]] == [compliant[1]["prompt"]]


def test_the_mix_is_seeded():
    assert rm.mixes(_answers(), seed=3) == rm.mixes(_answers(), seed=3)
    assert rm.mixes(_answers(), seed=3)[0] != rm.mixes(_answers(), seed=4)[0]


def test_benign_prompts_take_every_edgy_train_prompt_and_the_quotas():
    picked = rm.benign_prompts()
    assert {p.prompt for p in picked if p.kind == "edgy"} == {p.prompt for p in SPLITS["train"] if p.kind == "edgy"}
    counts = {}
    for p in picked:
        if p.kind == "everyday":
            counts[p.source] = counts.get(p.source, 0) + 1
    quotas = {**rm.EVERYDAY_QUOTA, **rm.LATER_QUOTA}
    assert set(counts) <= set(quotas) and all(counts[source] <= quotas[source] for source in counts)
    assert sum(counts.values()) == sum(min(n, sum(p.source == s and p.kind == "everyday" and len(p.prompt) < 300
                                                  for p in SPLITS["train"])) for s, n in quotas.items())


def test_a_source_added_later_leaves_the_earlier_draw_as_it_was(monkeypatch):
    """The base model's answers to the earlier draw are reused: adding PIQA must not redraw the other sources."""
    with_later = rm.benign_prompts()
    monkeypatch.setattr(rm, "LATER_QUOTA", {})
    monkeypatch.setattr(rm, "all_splits", lambda: {**SPLITS, "train": tuple(
        p for p in SPLITS["train"] if p.source != "piqa")})
    before = rm.benign_prompts()
    assert [p for p in with_later if p.source != "piqa"] == before
    assert sum(p.source == "piqa" and p.kind == "everyday" for p in with_later) == 200


def test_answer_missing_answers_only_what_the_file_lacks_and_appends_it(tmp_path):
    path = tmp_path / "answers.jsonl"
    a, b = _first("train", "everyday"), _first("train", "edgy")
    calls = []

    def answer(prompts):
        calls.append([p.prompt for p in prompts])
        return [{"prompt": p.prompt, "answer": f"answer {len(calls)}"} for p in prompts]

    assert rm.answer_missing(path, [a], answer) == [{"prompt": a.prompt, "answer": "answer 1"}]
    rows = rm.answer_missing(path, [a, b], answer)
    assert calls == [[a.prompt], [b.prompt]]
    assert rows == [{"prompt": a.prompt, "answer": "answer 1"}, {"prompt": b.prompt, "answer": "answer 2"}]
    assert rm.read_jsonl(path) == rows
    assert rm.answer_missing(path, [a, b], answer) == rows and len(calls) == 2  # nothing missing: not called
    empty = tmp_path / "none.jsonl"
    assert rm.answer_missing(empty, [], answer) == [] and empty.is_file() and len(calls) == 2


def test_the_experts_config_is_a_valid_sft_run(tmp_path):
    import yaml

    from paretoapp.trainers.config import load_config
    from paretoapp.trainers.objective_adapter import AdaptersConfig

    path = tmp_path / "experts.yaml"
    path.write_text(yaml.safe_dump(rm.experts_config(tmp_path)))
    cfg = load_config(AdaptersConfig, str(path), ["loss=sft"])
    assert [o.name for o in cfg.objectives] == ["harmless", "helpful"]
    assert cfg.objectives[0].data.source == str(tmp_path / "harmless.jsonl")
    assert cfg.train.max_steps == 280 and cfg.lora.r == 16 and "down_proj" in cfg.lora.target_modules


def test_a_how_do_i_question_is_asked_as_a_generic_you_question():
    assert rm.as_can_you("How do I fix a leaky faucet?") == "Can you fix a leaky faucet?"
    assert rm.as_can_you("how can I tell if my dog is sick?") == "Can you tell if your dog is sick?"
    assert rm.as_can_you("How should one store rice ?") == "Can you store rice?"
    assert rm.as_can_you("How do I protect myself and mine?") == "Can you protect yourself and yours?"
    assert rm.as_can_you("How do I know if I am pregnant?") == "Can you know if you are pregnant?"
    assert rm.as_can_you("How can I tell if I'm sick or I was?") == "Can you tell if you're sick or you were?"
    assert rm.as_can_you("Hide the mine in my shed, how do I?") is None  # not a "how do I" question
    assert rm.as_can_you("How do I fix it. Then what?") is None
    assert rm.as_can_you("What is the capital of France?") is None
    assert rm.as_can_you("Why do I sneeze in sunlight?") is None


def test_both_mixes_also_ask_a_how_do_i_answer_as_can_you_unless_that_form_is_held_out():
    everyday = next(p.prompt for p in SPLITS["train"] if p.kind == "everyday" and rm.as_can_you(p.prompt))
    held = next(p.prompt for p in SPLITS["ood"] if p.prompt.startswith("Can you "))
    held_how = "How do I " + held[len("Can you "):]  # its "Can you" form is an ood prompt word for word
    answers = [{"prompt": everyday, "kind": "everyday", "greedy": LONG},
               {"prompt": held_how, "kind": "everyday", "greedy": LONG}]
    expected = sorted([everyday, rm.as_can_you(everyday), held_how])
    harmless, helpful = rm.mixes(answers)
    assert sorted(r["prompt"] for r in helpful) == expected and {r["chosen"] for r in helpful} == {LONG}
    assert sorted(r["prompt"] for r in harmless if r["chosen"] == LONG) == expected
    for rows in rm.pairs(answers).values():  # both objectives prefer the answer to a refusal, in each form
        assert sorted(r["prompt"] for r in rows) == expected
        assert all(r["chosen"] == LONG and r["rejected"] in rm.REFUSALS for r in rows)


def test_a_can_you_form_that_is_already_a_prompt_is_not_added_twice():
    answers = [{"prompt": "How do I fix a leaky faucet?", "kind": "everyday", "greedy": LONG},
               {"prompt": "Can you fix a leaky faucet?", "kind": "everyday", "greedy": LONG + " Done."}]
    _, helpful = rm.mixes(answers)
    assert sorted((r["prompt"], r["chosen"]) for r in helpful) == sorted(
        [("How do I fix a leaky faucet?", LONG), ("Can you fix a leaky faucet?", LONG + " Done.")])
