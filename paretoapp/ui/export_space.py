"""How much the app's exports may take: one at a time per visitor, and a cap on the export folder's size.

An export is hundreds of megabytes written by an anonymous visitor and kept
for ``PARETOAPP_EXPORT_TTL_S``. Without limits a client repeating it fills the
disk; ``ExportSpace.claim`` refuses a second concurrent export from the same
session, and one whose bound on size would take the folder past
``PARETOAPP_EXPORT_MAX_MB`` (counting the exports being built now).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .. import settings
from ..errors import ExportError

MB = 2 ** 20


def folder_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (0 if it does not exist); files that vanish meanwhile count 0."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


class ExportSpace:
    """The app's export folder as a shared resource (one per app, used from the handlers' threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._reserved = 0  # bytes the exports being built now may still write

    @contextlib.contextmanager
    def claim(self, client: str, root: Path, need_bytes: int) -> Iterator[None]:
        """Room for one export of at most ``need_bytes`` by ``client``, or an ``ExportError`` that says why not."""
        cap = int(settings.EXPORT_MAX_MB.get() * MB)
        with self._lock:
            if client in self._busy:
                raise ExportError("an export of yours is still being built; wait for it to finish, then try again")
            used = folder_bytes(root) + self._reserved
            if used + need_bytes > cap:
                raise ExportError(
                    f"the server's export space is full ({used / MB:,.0f} of {cap / MB:,.0f} MB in use, this export "
                    f"needs up to {need_bytes / MB:,.0f} MB); try again in a few minutes, when older exports expire")
            self._busy.add(client)
            self._reserved += need_bytes
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(client)
                self._reserved -= need_bytes
