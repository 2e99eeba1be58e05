"""Benchmark 5, front quality: hypervolume of every method's front on the demo task, in one table.

    python bench/front_quality.py                     # every evaluation under assets/
    python bench/front_quality.py runs/eval/a runs/eval/b --ref 0,0 --baseline rewarded_soups

Reads evaluation folders written by ``paretoapp.evaluate`` (``rows.parquet``,
``means.csv``, ``meta.json``; found recursively under the given paths) and
compares them with ``evaluate.compare_results`` -> ``pareto.compare_fronts``:
one reference point and one normalisation shared by all fronts (pass --ref
to fix it), so the hypervolumes are comparable. Evaluations that do not share
scorers are refused; a ``same_prompts`` column flags a different prompt set.
The seed is the one the family's trainer recorded in its manifest
(``training.config.train.seed``, else ``training.seed``).

Prints the table, then each front's hypervolume relative to --baseline last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paretoapp.evaluate import compare_results, load_results  # noqa: E402


def find_results(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if (p / "meta.json").is_file() and (p / "rows.parquet").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(m.parent for m in p.rglob("meta.json") if (m.parent / "rows.parquet").is_file())
    return sorted(set(found))


def family_seed(meta: dict, results_dir: Path):
    """The seed the family was trained with, read from its manifest if it can be found."""
    if "seed" in meta:
        return meta["seed"]
    fam = meta.get("family", {})
    candidates = [Path(fam["path"])] if fam.get("path") else []
    candidates += [results_dir.parent / "family", results_dir.parent.parent / "family"]
    for folder in candidates:
        manifest = folder / "family.json"
        if manifest.is_file():
            training = json.loads(manifest.read_text()).get("training", {})
            seed = training.get("config", {}).get("train", {}).get("seed", training.get("seed"))
            if seed is not None:
                return seed
    return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "assets")])
    ap.add_argument("--ref", help="reference point, comma-separated (default: shared rule of pareto.reference_point)")
    ap.add_argument("--baseline", default="rewarded_soups", help="method (or name) the last line divides by")
    args = ap.parse_args()
    dirs = find_results(args.paths)
    if not dirs:
        raise SystemExit(f"no evaluation folders (meta.json + rows.parquet) under {args.paths}; run "
                         "`paretoapp evaluate` for each family first")
    results, info = {}, {}
    for d in dirs:
        r = load_results(d)
        fam = r.meta.get("family", {})
        name = fam.get("name") or d.name
        if name in results:
            name = f"{name} ({d.name})"
        results[name] = r
        info[name] = {"method": fam.get("method", "?"), "seed": family_seed(r.meta, d), "dir": d}
    ref = [float(v) for v in args.ref.split(",")] if args.ref else None
    table, ref_used = compare_results(results, ref=ref)
    table.insert(0, "method", [info[n]["method"] for n in table.index])
    table.insert(1, "seed", [info[n]["seed"] for n in table.index])
    first = next(iter(results.values()))
    print(f"{len(results)} fronts, objectives {first.objectives} (maximise {first.maximise}), "
          f"{first.meta['prompts']['n']} prompts, reference point {list(map(float, ref_used))}")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    base = [n for n in table.index if info[n]["method"] == args.baseline or n == args.baseline]
    if not base:
        print(f"ratio: no front named or of method {args.baseline!r}; hypervolumes above are absolute")
        return
    hv0 = float(table.loc[base[0], "hypervolume"])
    ratios = ", ".join(f"{n} {float(table.loc[n, 'hypervolume']) / hv0:.3f}x" for n in table.index) if hv0 else "n/a"
    print(f"ratio hypervolume / {base[0]}'s: {ratios}")


if __name__ == "__main__":
    main()
