"""Files written whole or not at all: a temporary file in the same folder, then a rename.

A write that stops half-way (a full disk, a kill) leaves the old file, or none, never a
partial one: the rename is the only step another reader can see.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def staged(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write`` a temporary file beside ``path`` and make it durable; its path (rename it with `os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, _mode())  # as a plain open() would have made it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return Path(temporary)


def write_atomically(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """``path`` replaced by ``data`` (bytes, or a function that writes the file) in one step."""
    write = data if callable(data) else (lambda out: out.write(data))
    temporary = staged(path, write)
    try:
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return Path(path)
