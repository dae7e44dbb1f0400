"""The MNIST-family image sets (torchvision): read once per process into uint8 tensors.

A missing set is downloaded (each connection waiting at most `DOWNLOAD_TIMEOUT`), or
read from files a user put in place by hand (plain or gzipped); a load that fails
leaves the user's folder as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import socket
from pathlib import Path

from objectives._errors import DataError
from objectives.data._idx import IDX_FILES

# Seconds a download waits on one connection: urllib's default is to wait forever, and a
# network that drops packets would hang a run before it could say the data is missing.
DOWNLOAD_TIMEOUT = 30.0
_TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "kmnist": "KMNIST"}


def load_images(dataset: str, data_dir: str, download: bool):
    """(train_x uint8 [N, 784], train_y, test_x, test_y, class names) of an MNIST-family set."""
    return _load_torchvision(dataset, Path(data_dir).resolve(), download)


def _load_torchvision(dataset: str, root: Path, download: bool):
    folder = _TORCHVISION_NAMES[dataset]
    raw = root / folder / "raw"
    with _undo_on_failure(raw):
        _gunzip_present(raw)
        return _read_torchvision(dataset, folder, root, raw, download)


def _read_torchvision(dataset: str, folder: str, root: Path, raw: Path, download: bool):
    from torchvision import datasets

    cls = getattr(datasets, folder)
    try:
        # torchvision prints each failed mirror; the user gets one line from us instead.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            _socket_timeout(DOWNLOAD_TIMEOUT),
        ):
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=download)
    except (
        RuntimeError,
        OSError,
        ValueError,
        EOFError,
        AssertionError,
    ) as exc:  # torchvision: RuntimeError, URLError; a corrupt file: AssertionError
        missing = [name for name in IDX_FILES.values() if not (raw / name).exists()]
        if missing:
            raise DataError(
                f"{dataset} is not in {raw} and could not be downloaded; "
                f"put {', '.join(n + '.gz' for n in missing)} there, "
                f"or use `dataset` synthetic for an offline demo"
            ) from exc
        raise DataError(f"cannot read {dataset} from {raw}: {first_line(exc)}") from exc
    flat = lambda d: d.data.reshape(d.data.shape[0], -1).contiguous()  # noqa: E731
    return flat(train), train.targets.long(), flat(test), test.targets.long(), tuple(cls.classes)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torchvision's urlopen takes no timeout; the process-wide default bounds it."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def _undo_on_failure(raw: Path):
    """A failed load leaves the user's folder as it was: the folders and files it made are removed."""
    folders = [p for p in (raw, raw.parent, raw.parent.parent) if not p.exists()]
    before = set(raw.iterdir()) if raw.is_dir() else set()
    try:
        yield
    except BaseException:
        if raw.is_dir():
            for path in set(raw.iterdir()) - before:
                if path.is_file():
                    path.unlink(missing_ok=True)
        for folder in folders:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never what the user put there
        raise


def _gunzip_present(raw: Path) -> None:
    """Unpack ``*.gz`` files a user dropped in by hand (torchvision only unpacks its own downloads)."""
    for name in IDX_FILES.values():
        plain, packed = raw / name, raw / (name + ".gz")
        if not plain.exists() and packed.exists():
            try:
                plain.write_bytes(gzip.decompress(packed.read_bytes()))
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DataError(f"cannot unpack {packed}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
