"""Running an evaluation: a family on disk -> answers for every (w, prompt) -> scores -> a result.

Because the bank takes one w *per row* (docs/design.md), the whole grid is
generated in large mixed batches (:func:`generate_front`): rows are ordered by
prompt length so a batch holds one prompt under many preferences and pads
little. No model is merged or reloaded per w.

Caching: generations are cached under a key made of the family fingerprint,
the prompts, the grid, the generation settings and system prompt; scores under
that key plus the scorer's spec. Re-running with the same inputs generates and
scores nothing; changing the family or a setting recomputes what it affects.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..atomic import atomic_file
from ..errors import EvaluationError
from ..scorers import Scorer, ScorerContext, build_scorers, is_collapsed, label_table
from ..validation import rows_at_once
from .grids import parse_grid
from .results import EvalResult, assemble_result
from .shards import Shard, current_shard

if TYPE_CHECKING:
    from ..family import Family
    from ..generate import GenerationSettings, Policy

CACHE_VERSION = 2  # 2: answers from the engine; a sampled row's seed is its index in the front


def _generation_order(policy, prompts: Sequence[str], n_w: int) -> list[tuple[int, int]]:
    """(w_idx, prompt_idx) pairs, longest prompts first, one prompt's preferences together (little padding)."""
    lengths = [len(policy.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    pairs = [(wi, pi) for pi in range(len(prompts)) for wi in range(n_w)]
    return sorted(pairs, key=lambda t: (-lengths[t[1]], t[1], t[0]))


def same_policy_as(policy: Policy, grid: np.ndarray) -> list[int]:
    """For each w of the grid, the first w that gives the same policy: the same gains on every rank of the bank
    and the same prompt conditioning. An anchors family with ``mode: nearest`` (linear DPO's) serves 11 w with
    3 policies, PEO's table a handful: their greedy answers are the same, so they are generated once."""
    manifest, seen, first = policy.manifest, {}, []
    gains = manifest.rank_gains(grid).numpy()
    for i, w in enumerate(grid):
        cond = manifest.conditioning.apply("", list(w)) if manifest.conditioning is not None else None
        first.append(seen.setdefault((np.round(gains[i], 12).tobytes(), cond), i))
    return first


def generate_front(policy: Policy, prompts: Sequence[str], grid: np.ndarray, settings: GenerationSettings,
                   system_prompt: str | None = None, batch_size: int = 64, show_progress: bool = True,
                   shard: Shard | None = None) -> list[list[str]]:
    """answers[w_idx][prompt_idx] for every (w, prompt): one engine job, at most ``batch_size`` rows at once.

    The engine refills a row's slot as soon as it finishes, so rows of every w
    decode side by side with no wave waiting for its longest answer. With a
    ``shard`` this process generates its share and the answers are gathered.
    A sampled row's seed is ``settings.seed`` plus its index in the front. Greedy
    answers are generated once per distinct policy (:func:`same_policy_as`).
    """
    shard = shard or Shard()
    # sampled answers differ per row (each has its seed): only greedy answers are shared between w
    first = list(range(len(grid))) if settings.do_sample else same_policy_as(policy, grid)
    order = shard.take([(wi, pi) for wi, pi in _generation_order(policy, prompts, len(grid)) if first[wi] == wi])
    seeds = None if settings.seed is None else [settings.seed + wi * len(prompts) + pi for wi, pi in order]
    mine: list = []
    if order:
        job = policy.submit([prompts[pi] for _, pi in order], [list(grid[wi]) for wi, _ in order], settings,
                            system_prompt, batch_size=batch_size, seeds=seeds)
        with tqdm(total=len(order), desc="generating front", disable=not show_progress, leave=False) as bar:
            for _ in job.updates():
                bar.update(job.finished_rows - bar.n)
        mine = list(zip(order, policy.texts(job.result(), settings)))
    answers: list[list[str]] = [[""] * len(prompts) for _ in range(len(grid))]
    for (wi, pi), text in shard.gather(mine):
        answers[wi][pi] = text
    return [list(answers[first[wi]]) for wi in range(len(grid))]


def _score(scorer: Scorer, prompts: list[str], responses: list[str], shard: Shard) -> np.ndarray:
    """Every row's score; with several processes each scores its share and the scores are gathered.

    Each distinct (prompt, answer) is scored once: neighbouring w often give the same greedy answer (an anchors
    family gives the same one across a whole cell), and a scorer is a function of the text.
    """
    pairs = list(zip(prompts, responses))
    unique = list(dict.fromkeys(pairs))
    index = {pair: i for i, pair in enumerate(unique)}
    if shard.world == 1:
        scores = np.asarray(scorer([p for p, _ in unique], [r for _, r in unique]), dtype=np.float64)
    else:
        idx = shard.take(list(range(len(unique))))
        mine = np.asarray(scorer([unique[i][0] for i in idx], [unique[i][1] for i in idx]), dtype=np.float64)
        scores = np.zeros(len(unique), dtype=np.float64)
        for i, v in shard.gather(list(zip(idx, mine.tolist()))):
            scores[i] = v
    return scores[[index[pair] for pair in pairs]]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    from ..models import cache_dir

    return cache_dir() / "eval"


def _write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


def _as_policy(family_or_policy, device: str) -> Policy:
    if hasattr(family_or_policy, "generate") and hasattr(family_or_policy, "family"):
        return family_or_policy
    from ..generate import load_policy

    return load_policy(family_or_policy, device=device)


def evaluate_family(
    family: str | os.PathLike | Family | Policy,
    prompts: Sequence[str],
    scorers: str | Sequence[str | Scorer],
    grid: np.ndarray | str | None = None,
    settings: GenerationSettings | None = None,
    system_prompt: str | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    device: str = "cpu",
    ref: Sequence[float] | None = None,
    prompts_source: str = "",
    show_progress: bool = True,
    shard: Shard | None = None,
    allow_pickle: bool | None = None,
    prompt_kinds: Mapping[str, str] | None = None,
) -> EvalResult:
    """Generate an answer for every (w, prompt), score it, and summarise the front.

    ``family`` is a family folder or an already loaded ``Policy``; ``scorers`` a
    comma-separated string or a list (see ``scorers.build_scorer``), matched to
    the family's objectives by order for the inner product. ``shard``: this
    process's part when the front is split over processes (default: from the
    launcher's environment, see ``shards.py``); every process returns the whole result. ``allow_pickle``:
    load reward models that hold only pickle weights (None: ``PARETOAPP_ALLOW_PICKLE`` decides). ``prompt_kinds``:
    ``{prompt: kind}`` for prompts whose kind is known ("harmful", "everyday", ...): the scorers that need a
    prompt's kind use these labels and guess only the others (``scorers.prompt_kinds``).
    """
    from ..generate import GenerationSettings

    batch_size = rows_at_once(batch_size)  # 0 would never make progress: refused before any model is loaded
    shard = current_shard() if shard is None else shard
    policy = _as_policy(family, device)
    manifest = policy.family.manifest
    k = manifest.k
    grid = parse_grid(grid, k) if grid is None or isinstance(grid, str) else np.atleast_2d(np.asarray(grid, float))
    if grid.shape[1] != k:
        raise EvaluationError(f"grid vectors have {grid.shape[1]} values but the family has {k} objectives")
    manifest.check_w(grid)  # the family's own range check, before any work
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise EvaluationError("no prompts to evaluate")
    settings = settings or GenerationSettings(max_new_tokens=64)
    context = ScorerContext(causal_lm=policy.model, tokenizer=policy.tokenizer,
                            model_id=manifest.base_model.name_or_path,
                            system_prompt=system_prompt if system_prompt is not None else manifest.system_prompt,
                            device=str(policy.device), show_progress=show_progress, allow_pickle=allow_pickle,
                            prompt_kinds=label_table([{"prompt": p, "kind": k} for p, k in (prompt_kinds or {}).items()]))
    scorer_list = build_scorers(scorers, context)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    family_hash = policy.family.fingerprint()
    gen_spec = {
        "v": CACHE_VERSION, "family": family_hash, "prompts": _hash(prompts), "grid": np.round(grid, 10).tolist(),
        "settings": settings.to_dict(), "system_prompt": system_prompt,
    }
    gen_key = _hash(gen_spec)
    stats = {"generated": 0, "scored": []}

    # generations
    gen_path = cache / "generations" / f"{gen_key}.parquet"
    if shard.agree(use_cache and gen_path.is_file()):
        responses = pd.read_parquet(gen_path)["response"].tolist()
    else:
        t0 = time.perf_counter()
        answers = generate_front(policy, prompts, grid, settings, system_prompt, batch_size, show_progress, shard)
        responses = [answers[wi][pi] for wi in range(len(grid)) for pi in range(len(prompts))]
        stats["generated"] = len(responses)
        stats["generation_seconds"] = time.perf_counter() - t0
        if use_cache and shard.main:
            _write_parquet_atomic(pd.DataFrame({"response": responses}), gen_path)

    w_names = [f"w_{o.name}" for o in manifest.objectives]
    rows = pd.DataFrame({
        "w_idx": np.repeat(np.arange(len(grid)), len(prompts)),
        **{c: np.repeat(grid[:, i], len(prompts)) for i, c in enumerate(w_names)},
        "prompt_id": np.tile(np.arange(len(prompts)), len(grid)),
        "prompt": prompts * len(grid),
        "response": responses,
    })

    # scores
    for scorer in scorer_list:
        score_path = cache / "scores" / f"{gen_key}-{_hash(scorer.spec())}.parquet"
        if shard.agree(use_cache and score_path.is_file()):
            values = pd.read_parquet(score_path)["score"].to_numpy()
        else:
            values = _score(scorer, rows["prompt"].tolist(), rows["response"].tolist(), shard)
            stats["scored"].append(scorer.name)
            if use_cache and shard.main:
                _write_parquet_atomic(pd.DataFrame({"score": values}), score_path)
        rows[scorer.name] = values

    rows["n_words"] = rows["response"].str.split().str.len().fillna(0).astype(int)
    rows["collapsed"] = [is_collapsed(r) for r in rows["response"]]
    rows["settings"] = json.dumps(settings.to_dict(), sort_keys=True)
    rows["system_prompt"] = system_prompt
    rows["family"] = manifest.name
    rows["family_hash"] = family_hash

    scorer_meta = [{"name": s.name, "higher_is_better": bool(s.higher_is_better),
                    "description": getattr(s, "description", ""), "spec": s.spec()} for s in scorer_list]
    result = assemble_result(
        rows, family={"name": manifest.name, "method": manifest.method, "hash": family_hash,
                      "path": str(getattr(policy.family, "path", "") or ""),
                      "objectives": [o.name for o in manifest.objectives]},
        grid=grid, w_columns=w_names, scorers=scorer_meta,
        prompts={"source": str(prompts_source), "n": len(prompts), "hash": _hash(prompts)},
        settings=settings.to_dict(), system_prompt=system_prompt, ref=ref, cache_key=gen_key)
    result.stats = stats
    return result
