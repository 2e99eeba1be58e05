"""Write-then-rename, so a crash or Ctrl-C never leaves a half-written folder or file.

Every writer in the project (families, exports, evaluation tables, adapters,
cached models) goes through these two context managers: the body writes into
a temporary sibling of the target, and only a body that finishes is renamed
into place. A folder that already exists is swapped out in two renames.

A process killed mid-write (SIGKILL, power loss) cannot clean up, so every
temporary name carries the writer's process id: the next write into the same
folder removes the leftovers of writers that are no longer running
(``sweep_stale``); an old copy that a dead writer had swapped out but not yet
replaced is put back. Temporary folders and files get the same permissions as a
plain ``mkdir`` or ``open`` (the umask applies), not ``tempfile``'s 0700/0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from .errors import InputError

log = logging.getLogger(__name__)

# .<target>.partial.<pid>.<random>   .<target>.<pid>.<random>.partial   .<target>.old-<pid>
_TEMP = re.compile(r"^\..+(?:\.partial\.(?P<a>\d+)\.[0-9a-f]+|\.(?P<b>\d+)\.[0-9a-f]+\.partial|\.old-(?P<c>\d+))$")
# names written before the process id was part of them: stale once this old
_LEGACY = re.compile(r"^\..+(?:\.partial\.[A-Za-z0-9_]{8}|\.[A-Za-z0-9_]{8}\.partial)$")
LEGACY_STALE_AFTER_S = 24 * 3600


def _writer_alive(pid: int, mtime: float) -> bool:
    """Whether process ``pid`` may still be writing a file last touched at ``mtime``."""
    if pid == os.getpid():
        return True
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:  # exists but cannot be inspected (another user): leave its files alone
        return True
    return started <= mtime + 1.0  # a newer process reusing the id is not the writer


def sweep_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries in ``folder`` left by writers that died; returns what was removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if m:
            stale = not _writer_alive(int(m["a"] or m["b"] or m["c"]), mtime)
        else:
            stale = bool(_LEGACY.match(entry.name)) and time.time() - mtime > LEGACY_STALE_AFTER_S
        if not stale:
            continue
        path = Path(entry.path)
        if m and m["c"] and _restore(path, folder / entry.name[1:].rsplit(".old-", 1)[0]):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted write", path)
        removed.append(path)
    return removed


def _restore(old: Path, target: Path) -> bool:
    """Put back an old copy whose writer died between swapping it out and swapping the new one in (the new one
    is then an unfinished temporary): the old copy stays until a new one is in place."""
    if target.exists() or target.is_symlink():
        return False
    try:
        old.rename(target)
    except OSError:
        return False
    log.warning("restored %s: the write that was replacing it was interrupted", target)
    return True


def _temp_name(target: Path, kind: str) -> Path:
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    name = f".{target.name}.partial.{token}" if kind == "folder" else f".{target.name}.{token}.partial"
    return target.with_name(name)


def check_writable(folder: str | os.PathLike) -> None:
    """Fail now, before minutes of work, if ``folder`` cannot be created or written to.

    Tries it: makes (and removes) a temporary folder in the nearest part of the
    path that exists, so the answer is right for root, read-only mounts and /proc.
    """
    folder = Path(folder).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot write to {folder}: {existing} is a file, not a folder; choose another folder")
    probe = _temp_name(existing / "write-check", "folder")
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise InputError(f"cannot write to {folder}: {existing} refuses new files ({exc.strerror or exc}); "
                         "choose a folder you can write to") from None


def _reserve(target: Path, kind: str, create) -> Path:
    """Create a fresh temporary ``kind`` beside ``target`` with ``create`` (which must fail if it exists), after
    sweeping what killed writers left there; a name taken by a concurrent writer is simply drawn again."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent)
    while True:
        tmp = _temp_name(target, kind)
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue


def _usual_modes(folder: Path, folder_mode: int) -> None:
    """Give what a writer left in ``folder`` the modes a plain ``mkdir`` / ``open`` would (``folder_mode`` is
    0o777 minus the umask): libraries that write through their own temp file and rename it (safetensors'
    ``save_file``) leave tempfile's 0600."""
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), folder_mode)
        for f in files:
            path = os.path.join(root, f)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o111
                os.chmod(path, (folder_mode & 0o666) | (executable & folder_mode))


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes ``target`` (replacing any old one)."""
    target = Path(target)
    tmp = _reserve(target, "folder", lambda p: p.mkdir())  # mode 0o777 minus the umask, like any folder the user makes
    try:
        yield tmp
        _usual_modes(tmp, tmp.stat().st_mode & 0o777)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; on success it replaces ``target``."""
    target = Path(target)
    tmp = _reserve(target, "file", lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)))
    mode = tmp.stat().st_mode & 0o777  # 0o666 minus the umask
    try:
        yield tmp
        os.chmod(tmp, mode)  # a body that wrote through its own temp file and renamed it here left 0600
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
