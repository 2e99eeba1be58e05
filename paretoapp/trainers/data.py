"""Pairwise preference data with several objectives, and its tokenisation.

Every trainer sees the same thing: a list of pairs ``{"prompt", "chosen",
"rejected"}`` for one objective. ``prompt`` is a string (plain text) or a list
of chat messages (``[{"role": "user", "content": ...}, ...]``); ``chosen`` and
``rejected`` are the response strings. Where the data come from is a
``DataSpec``; ``load_pairs`` turns one into pairs, whatever the layout:

``trl``   TRL's ``prompt/chosen/rejected`` columns. An optional ``objective``
          column holds several objectives in one file; this is also the
          project's own format (the demo data are written in it).
``pku``   PKU-SafeRLHF: ``prompt, response_0, response_1, better_response_id,
          safer_response_id``. Objective ``helpful`` (alias ``better``) reads
          ``better_response_id``, ``harmless`` (alias ``safer``) reads
          ``safer_response_id``.
``hh``    Anthropic HH-RLHF: ``chosen``/``rejected`` are whole transcripts
          ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; the prompt is the shared
          part up to the last ``"\\n\\nAssistant:"``. On the Hub the helpful
          and harmless pairs are separate subsets (``helpful-base``,
          ``harmless-base``); ``hh_subset`` picks one (default: the objective's).

A source is a local ``.jsonl``/``.json``/``.csv`` file or a Hugging Face Hub
dataset id (loaded with ``datasets.load_dataset``; never used in the tests).

Tokenisation mirrors TRL's DPOTrainer, so the DPO loss can be checked
against it: the prompt and prompt+response are tokenised separately and the
response starts where they stop sharing tokens; plain-text responses get the
EOS token appended; chat prompts go through the tokenizer's chat template.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from paretoapp.errors import DataError

LAYOUTS = ("auto", "trl", "pku", "hh")
PKU_COLUMNS = {"helpful": "better_response_id", "better": "better_response_id",
               "harmless": "safer_response_id", "safer": "safer_response_id"}
HH_SUBSETS = {"helpful": "helpful-base", "harmless": "harmless-base"}
HH_ASSISTANT = "\n\nAssistant:"
HH_HUMAN = "\n\nHuman:"


@dataclass
class DataSpec:
    """Where one objective's pairs come from.

    ``source``: local file or Hub dataset id. ``objective``: name of the
    objective these pairs teach (also selects the PKU label column, the HH
    subset, and the rows of a multi-objective ``trl`` file that has an
    ``objective`` column). ``swap``: exchange chosen and rejected (the
    "opposite preference" of Preference Vector). ``chat``: wrap plain prompts
    and responses as chat messages so the tokenizer's chat template applies.
    """
    source: str
    objective: str | None = None
    layout: str = "auto"
    split: str = "train"
    hh_subset: str | None = None
    swap: bool = False
    chat: bool = False
    limit: int | None = None
    eval_fraction: float = 0.0
    eval_source: str | None = None
    revision: str | None = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading rows
def _read_local(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{n}: not valid JSON ({exc}); each line must be one JSON object") from None
        return rows
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "data" in data:
            data = data["data"]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        return data
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json or .csv")


def _read_hub(spec: DataSpec, objective: str | None, layout: str) -> list[dict]:
    """Load a Hub dataset (network). Kept for real runs; tests use local files."""
    from datasets import load_dataset

    config = None
    if layout == "hh" or "hh-rlhf" in spec.source:
        subset = spec.hh_subset or HH_SUBSETS.get(objective or "")
        if subset is None:
            raise DataError(f"HH-RLHF needs hh_subset (e.g. 'helpful-base' or 'harmless-base') for objective {objective!r}")
        ds = load_dataset(spec.source, data_dir=subset, split=spec.split, revision=spec.revision)
    else:
        config = spec.extra.get("config")
        ds = load_dataset(spec.source, config, split=spec.split, revision=spec.revision)
    return [dict(r) for r in ds]


def read_rows(spec: DataSpec) -> list[dict]:
    path = Path(spec.source).expanduser()
    if path.exists():
        return _read_local(path)
    if path.suffix in (".jsonl", ".json", ".csv") or spec.source.startswith((".", "/", "~")):
        raise DataError(f"{spec.source}: no such file; give a local .jsonl/.json/.csv path or a Hub dataset id")
    return _read_hub(spec, spec.objective, spec.layout)


def detect_layout(row: dict) -> str:
    if "better_response_id" in row or "safer_response_id" in row:
        return "pku"
    if "prompt" in row and "chosen" in row and "rejected" in row:
        return "trl"
    if "chosen" in row and "rejected" in row:
        return "hh"
    raise DataError(
        f"cannot tell the data layout from the columns {sorted(row)}; expected prompt/chosen/rejected (trl), "
        "response_0/response_1/better_response_id/safer_response_id (pku), or chosen/rejected transcripts (hh)")


# --------------------------------------------------------------------------- layouts -> pairs
def split_hh_transcript(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH transcript pair -> (prompt ending in 'Assistant:', chosen reply, rejected reply)."""
    cut = chosen.rfind(HH_ASSISTANT)
    if cut < 0:
        raise DataError(f"HH-RLHF transcript without '{HH_ASSISTANT.strip()}': {chosen[:80]!r}")
    prompt = chosen[: cut + len(HH_ASSISTANT)]
    if not rejected.startswith(prompt):
        cut_r = rejected.rfind(HH_ASSISTANT)
        return prompt, chosen[len(prompt):], rejected[cut_r + len(HH_ASSISTANT):]
    return prompt, chosen[len(prompt):], rejected[len(prompt):]


def hh_to_messages(prompt: str) -> list[dict]:
    """'\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant:' -> chat messages."""
    messages, rest = [], prompt
    while rest:
        for marker, role in ((HH_HUMAN, "user"), (HH_ASSISTANT, "assistant")):
            if rest.startswith(marker):
                rest = rest[len(marker):]
                nxt = [i for i in (rest.find(HH_HUMAN), rest.find(HH_ASSISTANT)) if i >= 0]
                end = min(nxt) if nxt else len(rest)
                text = rest[:end].strip()
                if text or role == "user":
                    messages.append({"role": role, "content": text})
                rest = rest[end:]
                break
        else:
            raise DataError(f"HH-RLHF prompt not made of Human/Assistant turns: {prompt[:80]!r}")
    return messages


def _trl_pairs(rows: list[dict], spec: DataSpec) -> list[dict]:
    """TRL's prompt/chosen/rejected rows; a file of several objectives keeps the rows of ``spec.objective``."""
    obj = spec.objective
    if "objective" in rows[0]:
        names = sorted({r["objective"] for r in rows})
        if obj is None:
            raise DataError(f"{spec.source}: holds objectives {names}; name one with objective=...")
        rows = [r for r in rows if r["objective"] == obj]
        if not rows:
            raise DataError(f"{spec.source}: no rows with objective {obj!r}; the file has {names}")
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def _pku_pairs(rows: list[dict], spec: DataSpec) -> list[dict]:
    """PKU-SafeRLHF rows: two responses and, per objective, the id of the better one."""
    column = PKU_COLUMNS.get(spec.objective or "")
    if column is None:
        raise DataError(f"PKU-SafeRLHF layout: objective must be one of {sorted(PKU_COLUMNS)}, got {spec.objective!r}")
    pairs = []
    for r in rows:
        best = int(r[column])
        pairs.append({"prompt": r["prompt"], "chosen": r[f"response_{best}"], "rejected": r[f"response_{1 - best}"]})
    return pairs


def _hh_pairs(rows: list[dict], spec: DataSpec) -> list[dict]:
    """HH-RLHF transcripts: the shared prompt split off (into chat turns when ``spec.chat``)."""
    pairs = []
    for r in rows:
        prompt, chosen, rejected = split_hh_transcript(r["chosen"], r["rejected"])
        pairs.append({"prompt": hh_to_messages(prompt) if spec.chat else prompt,
                      "chosen": chosen.strip() if spec.chat else chosen,
                      "rejected": rejected.strip() if spec.chat else rejected})
    return pairs


_LAYOUT_READERS = {"trl": _trl_pairs, "pku": _pku_pairs, "hh": _hh_pairs}


def _pairs_from_rows(rows: list[dict], spec: DataSpec) -> list[dict]:
    if not rows:
        raise DataError(f"{spec.source}: holds no rows")
    layout = detect_layout(rows[0]) if spec.layout == "auto" else spec.layout
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    pairs = _LAYOUT_READERS[layout](rows, spec) if layout in _LAYOUT_READERS else []
    if spec.chat:
        pairs = [{**p, "prompt": p["prompt"] if isinstance(p["prompt"], list)
                  else [{"role": "user", "content": p["prompt"]}]} for p in pairs]
    for i, p in enumerate(pairs):
        if not isinstance(p["chosen"], str) or not isinstance(p["rejected"], str):
            raise DataError(f"{spec.source}: pair {i}: chosen and rejected must be strings")
    if spec.swap:
        pairs = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in pairs]
    if spec.limit is not None:
        pairs = pairs[: spec.limit]
    return pairs


def load_pairs(source: str | DataSpec, objective: str | None = None, **kwargs: Any) -> list[dict]:
    """One objective's preference pairs as ``[{"prompt", "chosen", "rejected"}]``.

    ``load_pairs("pku.jsonl", "harmless")`` or ``load_pairs(DataSpec(...))``;
    keyword arguments are ``DataSpec`` fields (``layout``, ``swap``, ...).
    """
    spec = source if isinstance(source, DataSpec) else DataSpec(source=source, objective=objective, **kwargs)
    return _pairs_from_rows(read_rows(spec), spec)


def train_eval_pairs(spec: DataSpec, seed: int) -> tuple[list[dict], list[dict]]:
    """Train pairs and held-out pairs: from ``eval_source`` or a seeded fraction of the data."""
    pairs = load_pairs(spec)
    if spec.eval_source:
        eval_spec = DataSpec(**{**spec.__dict__, "source": spec.eval_source, "eval_source": None, "limit": None})
        return pairs, load_pairs(eval_spec)
    if spec.eval_fraction <= 0:
        return pairs, []
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(round(len(pairs) * spec.eval_fraction)))
    if n_eval >= len(pairs):
        raise DataError(f"{spec.source}: eval_fraction {spec.eval_fraction} leaves no training pairs")
    return [pairs[i] for i in order[n_eval:]], [pairs[i] for i in order[:n_eval]]


# --------------------------------------------------------------------------- tokenisation
def _ids(tokenizer, text_or_messages, **chat_kwargs) -> list[int]:
    if isinstance(text_or_messages, list):
        out = tokenizer.apply_chat_template(text_or_messages, tokenize=True, return_dict=True, **chat_kwargs)
        return list(out["input_ids"])
    return list(tokenizer(text=text_or_messages)["input_ids"])


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_pair(tokenizer, pair: dict) -> dict:
    """A pair -> ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (lists of ints), as TRL does."""
    prompt = pair["prompt"]
    if isinstance(prompt, list):
        prompt_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
        full = {k: _ids(tokenizer, prompt + [{"role": "assistant", "content": pair[k]}]) for k in ("chosen", "rejected")}
    else:
        eos = tokenizer.eos_token or ""
        prompt_ids = _ids(tokenizer, prompt)
        full = {k: _ids(tokenizer, prompt + (pair[k] if pair[k].endswith(eos) else pair[k] + eos))
                for k in ("chosen", "rejected")}
    n = min(_common_prefix(prompt_ids, full["chosen"]), _common_prefix(prompt_ids, full["rejected"]))
    return {"prompt_ids": prompt_ids[:n], "chosen_ids": full["chosen"][n:], "rejected_ids": full["rejected"][n:]}


def tokenize_response(tokenizer, prompt, response: str) -> dict:
    """For SFT: one (prompt, response) -> ``prompt_ids``, ``response_ids``."""
    t = tokenize_pair(tokenizer, {"prompt": prompt, "chosen": response, "rejected": response})
    return {"prompt_ids": t["prompt_ids"], "response_ids": t["chosen_ids"]}


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def _truncate(prompt: list[int], response: list[int], max_length: int | None, max_prompt_length: int | None):
    if max_prompt_length is not None and len(prompt) > max_prompt_length:
        prompt = prompt[-max_prompt_length:]  # keep the end of the prompt: the question nearest the answer
    if max_length is not None:
        response = response[: max(0, max_length - len(prompt))]
    return prompt, response


@dataclass
class PreferenceCollator:
    """Tokenised pairs -> one right-padded batch: rows [chosen_1..chosen_B, rejected_1..rejected_B].

    Keys: ``input_ids``, ``attention_mask``, ``completion_mask`` (1 on response
    tokens). The same layout as TRL's ``DataCollatorForPreference``.
    """
    tokenizer: Any
    max_length: int | None = None
    max_prompt_length: int | None = None

    def __call__(self, pairs: list[dict]) -> dict:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        seqs, masks = [], []
        toks = [p if "prompt_ids" in p else tokenize_pair(self.tokenizer, p) for p in pairs]
        for key in ("chosen_ids", "rejected_ids"):
            for t in toks:
                prompt, resp = _truncate(t["prompt_ids"], t[key], self.max_length, self.max_prompt_length)
                seqs.append(prompt + resp)
                masks.append([0] * len(prompt) + [1] * len(resp))
        return {"input_ids": _pad(seqs, pad_id),
                "attention_mask": _pad([[1] * len(s) for s in seqs], 0),
                "completion_mask": _pad(masks, 0)}


@dataclass
class SFTCollator:
    """(prompt, response) rows -> a right-padded batch with ``completion_mask`` on the response.

    Rows are ``{"prompt", "response"}``; a preference pair is accepted too and
    trains on its ``chosen`` response (SFT on the preferred answers).
    """
    tokenizer: Any
    max_length: int | None = None
    max_prompt_length: int | None = None

    def __call__(self, rows: list[dict]) -> dict:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        seqs, masks = [], []
        for r in rows:
            t = tokenize_response(self.tokenizer, r["prompt"], r.get("response", r.get("chosen")))
            prompt, resp = _truncate(t["prompt_ids"], t["response_ids"], self.max_length, self.max_prompt_length)
            seqs.append(prompt + resp)
            masks.append([0] * len(prompt) + [1] * len(resp))
        return {"input_ids": _pad(seqs, pad_id),
                "attention_mask": _pad([[1] * len(s) for s in seqs], 0),
                "completion_mask": _pad(masks, 0)}
