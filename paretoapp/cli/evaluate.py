"""``paretoapp evaluate``: generate and score a family's front; write a results table."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help="family folder (as written by a trainer)")
    p.add_argument("--prompts", required=True,
                   help="JSONL/JSON/CSV/TSV/parquet file with a prompt column, a .txt file, or a Hub dataset id")
    p.add_argument("--prompt-column", default="prompt", help="column holding the prompt (default: prompt)")
    p.add_argument("--split", default="test", help="split of a Hub dataset (default: test)")
    p.add_argument("--dataset-config", default=None, help="config name of a Hub dataset")
    p.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    p.add_argument("--scorers", required=True,
                   help="comma-separated scorers, one per objective, e.g. harmless_offline,helpful_offline or "
                        "ray-helpful,ray-harmless or hf:ID_OR_PATH?label=NAME (see --list-scorers)")
    p.add_argument("--grid", default=None,
                   help="preferences: simplex:R, sweep:N[:LOW:HIGH] (k=2, LOW<0 or HIGH>1 extrapolates), ric3, "
                        "points:a,b;c,d or a JSON/CSV file (default: sweep:11 for k=2, ric3 for k=3)")
    p.add_argument("--out", default=None, help="results folder (default: results/<family name>)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--system-prompt", default=None, help="system prompt (default: the family's own)")
    p.add_argument("--batch-size", type=int, default=64, help="rows (w, prompt) per generate call")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--ref", default=None, help="hypervolume reference point, comma-separated, one per scorer")
    p.add_argument("--cache-dir", default=None, help="where generations and scores are cached")
    p.add_argument("--no-cache", action="store_true", help="recompute everything and write no cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Single process, or one of several under ``accelerate launch -m paretoapp evaluate`` (rows split, one table)."""
    import torch

    from ..atomic import check_writable
    from ..evaluate import evaluate_family, load_prompts
    from ..evaluate.shards import current_shard, shard_device
    from ..family import load_family
    from ..generate import GenerationSettings, load_policy
    from ..validation import check_device, number_list
    from . import allow_pickle

    shard = current_shard()
    own = shard_device()  # each launched process on its own GPU
    device = own if own and args.device in (None, "cuda") else (
        check_device(args.device) or ("cuda" if torch.cuda.is_available() else "cpu"))
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                                  temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    ref = number_list(args.ref, "--ref", "0,0 (one value per scorer)") if args.ref else None
    name = load_family(args.family).manifest.name  # a bad family fails here, before any prompt is read
    out = Path(args.out) if args.out else Path("results") / name
    check_writable(out.parent)  # before the generation, not after it
    prompts = load_prompts(args.prompts, split=args.split, column=args.prompt_column, limit=args.limit,
                           config=args.dataset_config)
    policy = load_policy(args.family, device=device, allow_pickle=allow_pickle(args))
    result = evaluate_family(policy, prompts, args.scorers, grid=args.grid, settings=settings,
                             system_prompt=args.system_prompt, batch_size=args.batch_size,
                             cache_dir=args.cache_dir, use_cache=not args.no_cache, device=device, ref=ref,
                             prompts_source=str(args.prompts), show_progress=not args.quiet and shard.main,
                             shard=shard, allow_pickle=allow_pickle(args))
    if not shard.main:
        return 0
    result.save(out)
    print(result.summary_text())
    reused = "generated" if result.stats.get("generated") else "reused from cache"
    print(f"answers {reused}; scored now: {result.stats.get('scored') or 'none (cache)'}")
    print(f"wrote {out}/rows.parquet, means.csv, meta.json")
    return 0
