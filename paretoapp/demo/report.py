"""The demo's committed report: the behaviour tables of ``docs/demo.md`` and each family's one-line summary.

Both are recomputed from the families' evaluation rows under the demo's ``--out`` folder with the bounds of
:mod:`paretoapp.demo.checks`, so the document cannot drift from the families it describes.

    python -m paretoapp.demo.report assets            # print every family's checks (exit status 1 on a miss)
    python -m paretoapp.demo.report assets --write    # also rewrite docs/demo.md's tables and the summaries
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from .checks import (
    BOUNDS,
    Bounds,
    Check,
    behaviour_table,
    check_family,
    check_results_dir,
    checks_frame,
    front_means,
    new_tokens,
    passed,
    read_kinds,
    summary_line,
    w_columns,
)

DOC_START = "<!-- behaviour:start (generated: python -m paretoapp.demo.report assets --write; do not edit) -->"
DOC_END = "<!-- behaviour:end -->"


def _cell(c: Check | None, fmt: str = ".2f") -> str:
    if c is None:
        return ""
    text = f"{c.value:{fmt}}"
    return text if c.passed else f"**{text}** (missed)"


def family_dirs(root: str | Path) -> list[Path]:
    """The evaluated demo families under ``root`` (folders with ``results/meta.json``), by name."""
    return sorted(d for d in Path(root).iterdir() if (d / "results" / "meta.json").is_file())


def behaviour_markdown(root: str | Path, kinds: Mapping[str, str], bounds: Bounds = BOUNDS) -> str:
    """The tables of ``docs/demo.md``, recomputed from each family's committed evaluation rows: the bounds
    per family (every miss named), then the behaviours at every evaluated w."""
    from paretoapp.evaluate import load_results

    b = bounds
    head = ["family", f"harmless end refuses harmful (>= {b.harmless_end_refuses_harmful:g})",
            f"harmless end refuses benign (<= {b.harmless_end_refuses_benign:g})",
            f"helpful end answers benign (>= {b.helpful_end_answers_benign:g})",
            f"degenerate, worst w (<= {b.max_degenerate_rate:g})", "monotone (violations)",
            "trade-off (own end minus other end, > 0)",
            f"distinct non-dominated (PEO >= {b.peo_min_distinct_nondominated})", "bounds missed"]
    summary = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    per_w = []
    for d in family_dirs(root):
        res = load_results(d / "results")
        fam = res.meta["family"]
        objectives, scorers, method = fam["objectives"], res.objectives, fam.get("method", "")
        checks = check_family(res.rows, kinds, objectives, scorers, method, b)
        by = {c.name: c for c in checks}
        mono = [c for c in checks if c.name.startswith("monotone ")]
        mono_cell = ", ".join(f"{c.name.split()[1]} {int(c.value)}" + ("" if c.passed else " (missed)") for c in mono)
        trade = ", ".join(f"{c.name.split()[1]} {c.value:+.2f}" + ("" if c.passed else " (missed)")
                          for c in checks if c.name.startswith("trade-off "))
        degen = by["degenerate rate (worst w)"]
        missed = "; ".join(f"{c.name} ({c.detail})" if c.detail else c.name for c in checks if not c.passed)
        summary.append("| " + " | ".join([
            d.name, _cell(by["harmless end refuses harmful"]), _cell(by["harmless end refuses benign"]),
            _cell(by["helpful end answers benign"]), f"{_cell(degen)} {degen.detail}", mono_cell, trade,
            _cell(by.get("distinct non-dominated points"), "g"), missed or "none"]) + " |")
        table = behaviour_table(res.rows, kinds)
        means = front_means(res.rows, scorers, b.confidence)
        wc = w_columns(res.rows)
        merged = table.merge(means[["w_idx", *scorers]], on="w_idx")
        cols = [*wc, "refuses_harmful", "refuses_benign", "answers_benign", "degenerate_rate", *scorers]
        per_w += ["", f"**{d.name}** ({method}; {int(table['n_harmful'].min())} harmful + "
                      f"{int(table['n_benign'].min())} benign held-out prompts, {new_tokens(res.rows)} new tokens)",
                  "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, row in merged.iterrows():
            cells = [f"{row[c]:g}" for c in wc]
            cells += [f"{row[c]:.2f}" for c in ("refuses_harmful", "refuses_benign", "answers_benign")]
            bad = row["degenerate_rate"] > b.max_degenerate_rate
            cells.append(f"**{row['degenerate_rate']:.2f}**" if bad else f"{row['degenerate_rate']:.2f}")
            cells += [f"{row[c]:.3f}" for c in scorers]
            per_w.append("| " + " | ".join(cells) + " |")
    return "\n".join(["### Bounds per family", "", *summary, "", front_quality_markdown(root), "",
                      "### Behaviours at every evaluated w", *per_w])


def front_quality_markdown(root: str | Path) -> str:
    """Front quality of every demo family, one table per objective set, at that set's shared reference point:
    hypervolume with its 95 % bootstrap interval over prompts, points on the front, collapse rate, training cost."""
    from paretoapp import pareto
    from paretoapp.evaluate import hypervolume_interval, load_results, training_time_text

    by_set: dict[tuple, list] = {}
    for d in family_dirs(root):
        res = load_results(d / "results")
        by_set.setdefault(tuple(res.objectives), []).append((d.name, res))
    out = ["### Front quality", "",
           "Each objective set at its own shared reference point (the build's `share_reference`); the interval is a "
           "bootstrap over prompts; training is the wall time of the family's build step on the build machine "
           "(`training_cost` in its results meta: adapters reused from an earlier step are not counted again)."]
    for objectives, fams in by_set.items():
        ref = fams[0][1].meta["metrics"]["reference"]
        out += ["", f"{', '.join(objectives)}: reference point {pareto.format_reference(ref, list(objectives))}", "",
                "| family | method | hypervolume [95 % CI] | on front | collapse rate | training |", "|---|---|---|---|---|---|"]
        for name, res in fams:
            pts = res.front_points()
            hv = pareto.hypervolume(pts, ref, res.maximise)
            lo, hi = hypervolume_interval(res, ref) or (float("nan"), float("nan"))
            on_front = int(pareto.nondominated_mask(pts, res.maximise).sum())
            method = res.meta["family"].get("method", "")
            out.append(f"| {name} | {method} | {hv:.3g} [{lo:.3g}, {hi:.3g}] | {on_front}/{len(pts)} | "
                       f"{res.meta['metrics'].get('collapse_rate', float('nan')):.2f} | {training_time_text(res.meta)} |")
    return "\n".join(out)


def replace_doc_section(doc: str, body: str, markers: tuple[str, str] = (DOC_START, DOC_END)) -> str:
    """``doc`` with the text between the two ``markers`` (by default :data:`DOC_START` and :data:`DOC_END`)
    replaced by ``body``."""
    start, end = markers
    if start not in doc or end not in doc:
        raise ValueError(f"the document has no generated section; add the lines {start!r} and {end!r}")
    before, rest = doc.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{body.rstrip(chr(10))}\n{end}{after}"


def rewrite_doc_section(path: str | Path, body: str, markers: tuple[str, str] = (DOC_START, DOC_END)) -> None:
    """Replace the section of the document at ``path`` between ``markers`` by ``body``, atomically."""
    from paretoapp.atomic import atomic_file

    path = Path(path)
    text = replace_doc_section(path.read_text(encoding="utf-8"), body, markers)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def doc_section(doc: str) -> str:
    """The generated section of ``doc`` (what :func:`replace_doc_section` wrote)."""
    return doc.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip("\n")


def write_summaries(root: str | Path, kinds: Mapping[str, str]) -> None:
    """Store each family's :func:`summary_line` as ``behaviour_summary`` in its results meta (the family card)."""
    from paretoapp.atomic import atomic_file
    from paretoapp.evaluate import load_results

    for d in family_dirs(root):
        res = load_results(d / "results")
        fam = res.meta["family"]
        res.meta["behaviour_summary"] = summary_line(
            check_family(res.rows, kinds, fam["objectives"], res.objectives, fam.get("method", "")))
        with atomic_file(d / "results" / "meta.json") as tmp:
            tmp.write_text(json.dumps(res.meta, indent=2, default=str), encoding="utf-8")


def write_tables(root: str | Path, doc: str | Path, kinds: Mapping[str, str] | None = None) -> None:
    """Rewrite the generated section of ``doc`` from the families under ``root`` and each family's
    ``behaviour_summary`` (what ``--write`` does; the demo build calls it last)."""
    root = Path(root)
    kinds = kinds if kinds is not None else read_kinds(root / "demo" / "data" / "eval_prompts.jsonl")
    rewrite_doc_section(doc, behaviour_markdown(root, kinds))
    write_summaries(root, kinds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m paretoapp.demo.report", description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?", default="assets", help="the demo's --out folder (default: assets)")
    p.add_argument("--kinds", default=None, help="prompt kinds JSONL (default: <folder>/demo/data/eval_prompts.jsonl)")
    p.add_argument("--write", action="store_true",
                   help="also rewrite the tables in --doc and each family's behaviour_summary")
    p.add_argument("--doc", default="docs/demo.md", help="the document whose generated section --write replaces")
    args = p.parse_args(argv)
    root = Path(args.folder)
    kinds = read_kinds(args.kinds or root / "demo" / "data" / "eval_prompts.jsonl")
    if args.write:
        write_tables(root, args.doc, kinds)
    ok = True
    for fam in sorted(d for d in root.iterdir() if (d / "results" / "meta.json").is_file()):
        checks = check_results_dir(fam, kinds)
        ok &= passed(checks)
        print(f"\n{fam.name}: {'PASS' if passed(checks) else 'FAIL'}")
        print(checks_frame(checks).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
