"""``paretoapp serve``: an OpenAI-compatible API for families, on the in-process engine or on vLLM."""

from __future__ import annotations

import argparse

from ..serve import DEFAULT_GRID, DEFAULT_MAX_ADAPTERS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("families", nargs="+", metavar="FAMILY_DIR", help="family folders (each a 'model' of the API)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=("engine", "vllm"), default="engine",
                   help="engine: this process answers (all users and w in one batch); vllm: each w is one LoRA "
                        "adapter on vLLM")
    p.add_argument("--vllm-url", action="append", default=[], metavar="URL",
                   help="a running `vllm serve BASE --enable-lora` (repeat for replicas); none: start one "
                        "(PARETOAPP_VLLM_COMMAND)")
    p.add_argument("--w-grid", type=float, default=DEFAULT_GRID,
                   help=f"vllm: w is snapped to this grid per coordinate, one adapter per point (default {DEFAULT_GRID})")
    p.add_argument("--max-adapters", type=int, default=DEFAULT_MAX_ADAPTERS,
                   help="vllm: adapters kept (LRU); older ones are unloaded and their files removed")
    p.add_argument("--adapter-dir", default=None,
                   help="vllm: where adapters are written; every replica must read it at the same path "
                        "(default: a new temporary folder)")
    p.add_argument("--vllm-args", default="",
                   help="vllm: extra flags for the vLLM server this command starts, e.g. "
                        "\"--dtype float32 --enforce-eager --max-model-len 4096\"")
    p.add_argument("--device", default=None, help="engine: cpu, cuda, cuda:1 (default: cuda when available)")


def run(args) -> int:
    from ..serve.server import serve
    from . import allow_pickle

    serve(args, allow_pickle(args))
    return 0
