"""Atomic writes: a reader sees the old file or the new one, never half of either.

Results and stores are written to a temporary sibling and renamed into place; a rename
within one directory is atomic on POSIX file systems. Shared by the data layer and the
benchmark harness.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datasets.common.errors import WriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Suffix of the temporary siblings; ``remove_orphans`` deletes those a killed writer left.
TMP_SUFFIX = ".tmp"


def _write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    fix = ("free some space on that disk" if exc.errno == errno.ENOSPC else
           "make the folder writable" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else
           "check the disk and the folder")
    return WriteError(f"could not write {path}: {reason}; {fix}, or write elsewhere (e.g. --results-dir)")


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    Any OS error (a full disk, a read-only folder) becomes a ``WriteError`` naming ``path``;
    the temporary file is removed and the old ``path``, if any, is untouched."""
    path = Path(path)
    try:
        _write(path, data)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (checkpoints, result files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_text(obj: Any) -> str:
    """``obj`` as the suite writes JSON: indented, key-sorted, no NaN (so its hash is stable)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json_text(obj))


def remove_orphans(folder: Path | str, where: tuple[str, ...] = ("",)) -> list[Path]:
    """Delete the temporary files that writers killed mid-write (SIGKILL, power loss) left in
    ``folder`` and in its subfolders matching the globs ``where`` (the places its owner writes;
    nothing else, so a nested folder of another owner is left alone); call it only while no
    writer can be active there (under the results folder's lock). Only this module's own
    temporaries (``.<name>.<random>.tmp``, regular files, not links) are removed. Returns them."""
    removed = []
    root = Path(folder)
    for pattern in where:
        for place in [root] if not pattern else sorted(root.glob(pattern)):
            if place.is_symlink() or not place.is_dir():
                continue
            for tmp in place.glob(f".*{TMP_SUFFIX}"):
                if tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
    return removed


@contextmanager
def atomic_directory(path: Path | str, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and publish it at ``path`` on success.

    Yields the temporary directory to fill. On an exception the temporary directory is
    removed and ``path`` is untouched. An existing ``path`` is an error unless
    ``overwrite`` is set, so nothing is replaced by accident.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; refusing to overwrite it. "
            "Choose another output path or pass --overwrite."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        _fsync_dir(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
