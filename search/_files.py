"""Writing the files commands produce, with one clear error when the path is unusable."""

from __future__ import annotations

from pathlib import Path

from search._errors import SearchError


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``, creating its folder; a `SearchError` if that cannot be done."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise SearchError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
