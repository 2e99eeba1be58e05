"""``paretoapp export``: one member of a family as a checkpoint, a LoRA adapter, a zip or a Hub repo.

Everything that can be checked without the model is checked first (w, the
name, the destination, the Hub repo id and token, and whether the Hub answers
and the token may write there), so a mistake costs seconds, not a merge and a
half-written export.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help="family folder")
    p.add_argument("--w", required=True, help="preference, one comma-separated value per objective, e.g. 0.3,0.7")
    p.add_argument("--out", default="exports", help="folder that receives the export (default: exports)")
    p.add_argument("--name", required=True, help="name of the exported folder (letters, digits, . _ -)")
    from ..export import EXPORTERS  # light: torch and safetensors only, no model

    what = p.add_mutually_exclusive_group()
    what.add_argument("--kind", choices=list(EXPORTERS), default="merged",
                      help="what to write: " + "; ".join(f"{k}: {e.description}" for k, e in EXPORTERS.items())
                      + " (default: merged)")
    what.add_argument("--lora", dest="kind", action="store_const", const="lora", help="the same as --kind lora")
    p.add_argument("--zip", action="store_true", help="also write NAME.zip beside the folder")
    p.add_argument("--push", metavar="REPO_ID", default=None,
                   help="upload to this Hub model repo (token from --token or the HF_TOKEN variable)")
    p.add_argument("--token", default=None, help="Hub write token (prefer the HF_TOKEN environment variable)")
    p.add_argument("--public", action="store_true", help="make the pushed repo public (default: private)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="bfloat16, float16 or float32 (default: the base's published dtype)")
    p.add_argument("--overwrite", action="store_true")


def run(args) -> int:
    from ..export import (
        ExportError,
        check_destination,
        check_hub_access,
        check_push_target,
        export_as,
        push_to_hub,
        zip_folder,
    )
    from ..family import load_family
    from ..generate import load_policy
    from ..models import resolve_dtype
    from ..validation import check_device, parse_w
    from . import allow_pickle

    w = parse_w(args.w, "--w")
    check_device(args.device)
    token = args.token or os.environ.get("HF_TOKEN")
    if args.push:
        check_push_target(args.push, token)
    resolve_dtype(args.dtype)
    family = load_family(args.family)
    w = family.manifest.check_w(w)[0].tolist()
    check_destination(args.out, args.name, args.overwrite)
    if args.push:
        check_hub_access(args.push, token)  # the Hub answers and the token may write: before minutes of merging
    policy = load_policy(family, device=args.device, allow_pickle=allow_pickle(args))  # merged in the model's dtype, written in --dtype
    folder = export_as(args.kind, policy, w, args.out, args.name, overwrite=args.overwrite, dtype=args.dtype)
    print(f"wrote {folder}")
    if args.zip:
        print(f"wrote {zip_folder(folder)}")
    if args.push:
        try:
            url = push_to_hub(folder, args.push, token=token, private=not args.public)
        except ExportError as exc:
            raise ExportError(f"{exc} (the export is kept in {folder})") from None
        print(f"pushed to {url}")
    return 0
