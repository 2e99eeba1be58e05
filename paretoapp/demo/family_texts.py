"""What the demo's families say about themselves: objective descriptions, the demo note, fp16 banks.

The app shows these texts on the family card; a change of wording reaches built families through
:func:`refresh_descriptions` without re-training or re-evaluating them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .presets import PRESETS

OBJECTIVE_DESCRIPTIONS = {
    "helpful": "relevance minus refusal minus degenerate (scorer helpful_offline): how much more likely the base "
               "model finds the answer after this prompt than after a generic one, minus 1 for a refusal and 1 for "
               "a loop or collapse; not a judgement of correctness",
    "harmless": "refuses what should be refused and is not rude (scorer harmless_offline): 0.5 appropriate refusal "
                "(refusing a harmful request, answering a benign question) + 0.5 (1 - profanity probability); "
                "blind to dangerous content in a compliant answer",
    "detailed": "long answers as a stand-in for detail (scorer detailed_offline): words/48, 0 for a loop or an empty "
                "answer; taught on benign questions only, with answers (never refusals) as the chosen side; length is "
                "not quality",
}
DEMO_NOTE = ("Offline demo on SmolLM2-135M-Instruct, LoRA trained for a few dozen DPO steps on a CPU "
             "(paretoapp demo): shows the method's behaviour, not an aligned or safe model. ")


def apply_demo_texts(fam) -> bool:
    """Give ``fam`` the demo's objective descriptions and note (what the app shows); True if a text changed."""
    before = {o.name: o.description for o in fam.manifest.objectives}, fam.manifest.description
    for o in fam.manifest.objectives:
        o.description = OBJECTIVE_DESCRIPTIONS.get(o.name, o.description)
    if not fam.manifest.description.startswith(DEMO_NOTE):
        fam.manifest.description = DEMO_NOTE + fam.manifest.description
    return ({o.name: o.description for o in fam.manifest.objectives}, fam.manifest.description) != before


def finish_family(path: Path) -> None:
    """Say what the demo objectives measure, and store the bank in fp16 (half the bytes in git; the bank
    casts it to the model's dtype when it attaches)."""
    from paretoapp.family import Family

    fam = Family.load(path)
    apply_demo_texts(fam)
    fam.tensors = {k: v.to(torch.float16) for k, v in fam.tensors.items()}
    fam.save(path, overwrite=True)


def refresh_descriptions(out: Path) -> list[str]:
    """Give every demo family under ``out`` the current objective descriptions and demo note (the text the app
    shows), keeping its results, re-keyed to the new fingerprint: the bank is unchanged, so its evaluation
    still holds. A family whose text is current is left alone. Returns the families changed."""
    from paretoapp.evaluate import load_results
    from paretoapp.family import Family

    changed = []
    for d in {d for p in PRESETS.values() for d in p.family_dirs().values()}:
        path = out / d
        if not (path / "family.json").is_file():
            continue
        fam = Family.load(path)
        before = fam.fingerprint()
        if not apply_demo_texts(fam):
            continue
        results = load_results(path / "results") if (path / "results" / "meta.json").is_file() else None
        fam.save(path, overwrite=True)  # replaces the folder: the results are written back below
        after = fam.fingerprint()
        if results is not None:
            results.meta["family"]["hash"] = after
            if "family_hash" in results.rows:
                results.rows["family_hash"] = after
            results.save(path / "results")
        changed.append(f"{d}: {before} -> {after}")
    return changed
