"""Shrink a family's bank: each block's low-rank update cut to its best rank-r approximation (truncated SVD).

A block is one run of ranks with one gain (one LoRA adapter, say), so its update ``B_b A_b`` can be
replaced by the rank-r matrix closest to it (Eckart-Young) without touching the gate: the family stays the
same function of w, up to the singular values dropped. Used to fit a rank-16 family into the embedded
demo's size budget; the shrunk family is what gets evaluated, never the original's numbers.

    python -m paretoapp.shrink FAMILY_DIR OUT_DIR --rank 8 [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from .errors import FamilyError
from .family import Block, Family, load_family

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def truncate(b: torch.Tensor, a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``B' [out, r], A' [r, in]`` with ``B' A'`` the best rank-``rank`` approximation of ``B A``, and the share
    of ``B A``'s squared Frobenius norm it keeps. Computed from the small factors (QR, then an SVD of the
    r x r core), so it never forms ``B A``."""
    qb, rb = torch.linalg.qr(b.double())
    qa, ra = torch.linalg.qr(a.double().T)
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    r = min(rank, s.numel())
    total = float((s ** 2).sum())
    kept = float((s[:r] ** 2).sum()) / total if total > 0 else 1.0
    root = s[:r].sqrt()
    return (qb @ u[:, :r]) * root, root[:, None] * (vh[:r] @ qa.T), kept


def shrink_family(family: Family | str | os.PathLike, rank: int, dtype: str = "float32") -> tuple[Family, float]:
    """The family with every block wider than ``rank`` cut to ``rank``, its tensors stored as ``dtype``, and
    the smallest share of a block's squared norm kept over all modules."""
    family = load_family(family)
    if rank < 1:
        raise FamilyError(f"--rank {rank}: a block needs at least rank 1")
    if dtype not in DTYPES:
        raise FamilyError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    blocks = family.manifest.blocks
    starts = [sum(b.rank for b in blocks[:i]) for i in range(len(blocks))]
    tensors, worst = {}, 1.0
    for mod in family.modules:
        a, b = family.tensors[f"{mod}.lora_A"], family.tensors[f"{mod}.lora_B"]
        parts_a, parts_b = [], []
        for blk, s in zip(blocks, starts):
            nb, na, kept = truncate(b[:, s:s + blk.rank], a[s:s + blk.rank], rank)
            worst = min(worst, kept)
            parts_a.append(na)
            parts_b.append(nb)
        tensors[f"{mod}.lora_A"] = torch.cat(parts_a).to(DTYPES[dtype])
        tensors[f"{mod}.lora_B"] = torch.cat(parts_b, dim=1).to(DTYPES[dtype])
    new_blocks = [Block(b.name, min(b.rank, rank)) for b in blocks]
    note = f"Each block shrunk to rank {rank} by truncated SVD, stored as {dtype}."
    manifest = dataclasses.replace(family.manifest, blocks=new_blocks,
                                   description=f"{family.manifest.description} {note}".strip())
    out = Family(manifest, tensors)
    out.validate_tensors(where=f"family {manifest.name!r} shrunk to rank {rank}")
    return out, worst


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m paretoapp.shrink", description=__doc__.splitlines()[0])
    ap.add_argument("family", help="the family folder to shrink")
    ap.add_argument("out", help="where to write the shrunk family (a new folder)")
    ap.add_argument("--rank", type=int, required=True, help="the rank each block is cut to")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="how the shrunk tensors are stored")
    ap.add_argument("--name", help="the shrunk family's name (default: the original's)")
    args = ap.parse_args(argv)
    try:
        family, worst = shrink_family(args.family, args.rank, args.dtype)
        if args.name:
            family.manifest.name = args.name
        family.save(args.out)
    except FamilyError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{args.out}: every block at rank <= {args.rank} ({args.dtype}); the worst block keeps "
          f"{worst:.1%} of its squared norm")


if __name__ == "__main__":
    main()
