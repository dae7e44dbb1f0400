"""Writing the files commands produce, with one clear error when the path is unusable."""

from __future__ import annotations

from pathlib import Path

from search._errors import SearchError


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (the old file stays on failure), creating its folder; a
    `SearchError` if that cannot be done."""
    return write_bytes(path, text.encode())


def write_bytes(path: str | Path, data: bytes) -> Path:
    """`write_text` for bytes."""
    from objectives._files import write_atomically

    path = Path(path)
    if path.is_dir():
        raise SearchError(f"cannot write {path}: it is a folder; give a file's name")
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise SearchError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
