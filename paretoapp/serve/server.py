"""Run the API: build the backend the command line asks for and serve it with uvicorn.

``--backend engine`` loads every family onto its base here; ``--backend vllm``
loads only their manifests, tensors and tokenizers (vLLM holds the weights) and,
with no ``--vllm-url``, starts a vLLM server for their base and stops it at exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys

from ..errors import FamilyError
from .backends import Backend, EngineBackend
from .vllm_backend import VllmBackend

log = logging.getLogger(__name__)


def unique_names(names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise FamilyError(f"two families are named {name!r}; the API names a family by its name, so serve "
                              "only one of them (or rename one in its family.json)")
        seen.add(name)


def engine_backend(folders: list[str], device: str | None = None, allow_pickle: bool | None = None) -> EngineBackend:
    import torch

    from ..generate import load_policy
    from ..validation import check_device

    device = check_device(device) or ("cuda" if torch.cuda.is_available() else "cpu")
    policies = [load_policy(f, device=device, allow_pickle=allow_pickle) for f in folders]
    unique_names([p.manifest.name for p in policies])
    return EngineBackend({p.manifest.name: p for p in policies})


def build_backend(args, allow_pickle: bool | None = None) -> tuple[Backend, object | None]:
    """(backend, the vLLM process this command started or None)."""
    if args.backend == "engine":
        return engine_backend(args.families, args.device, allow_pickle), None
    from ..family import load_family
    from .vllm_launch import VllmProcess

    families = [load_family(f) for f in args.families]
    unique_names([f.manifest.name for f in families])
    process, urls = None, list(args.vllm_url)
    backend_kw = dict(grid=args.w_grid, max_adapters=args.max_adapters, adapter_dir=args.adapter_dir)
    if not urls:
        process = VllmProcess(families, max_loras=min(args.max_adapters, 8), extra=shlex.split(args.vllm_args))
        urls = [process.start()]
    try:
        return VllmBackend({f.manifest.name: f for f in families}, urls, **backend_kw), process
    except BaseException:
        if process is not None:
            process.stop()
        raise


async def reachable(backend) -> None:
    """Raise ``UpstreamError`` (one line) unless some vLLM replica answers."""
    await backend.pool.start()
    await backend.pool.close()


def serve(args, allow_pickle: bool | None = None) -> None:
    import uvicorn

    from .openai_api import build_app

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    backend, process = build_backend(args, allow_pickle)
    try:
        if isinstance(backend, VllmBackend):  # no replica answering is one line now, not a failed startup later
            asyncio.run(reachable(backend))
        log.info("serving %s on http://%s:%d/v1 (backend %s)", ", ".join(backend.families), args.host, args.port,
                 backend.name)
        # uvicorn re-raises the SIGTERM it caught once it has shut down; as SystemExit it reaches the finally
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(build_app(backend), host=args.host, port=args.port, log_level="info")
    finally:
        if process is not None:
            process.stop()
