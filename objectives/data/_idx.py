"""Writing MNIST-family IDX files, the format torchvision's loaders read.

Used to lay out a torchvision root from arrays (tests, benchmarks on the real
FashionMNIST sample, users with their own 28x28 images).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torchvision's file names, shared by MNIST, FashionMNIST and KMNIST.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (gzip when the name ends in .gz)."""
    import torch

    array = array.to(torch.uint8).contiguous()
    header = struct.pack(">HBB", 0, 0x08, array.dim())
    header += struct.pack(f">{array.dim()}I", *array.shape)
    payload = header + array.numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload, compresslevel=1))
    else:
        path.write_bytes(payload)


def write_torchvision_root(
    root: Path,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    folder: str = "FashionMNIST",
) -> Path:
    """Lay out ``root/<folder>/raw/*`` so that torchvision's loader finds it."""
    raw = Path(root) / folder / "raw"
    arrays = {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
    for key, array in arrays.items():
        write_idx(raw / IDX_FILES[key], array)
    return raw


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (plain or .gz) into a uint8 tensor."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    import torch

    body = bytearray(data[4 + 4 * ndim :])
    return torch.frombuffer(body, dtype=torch.uint8).reshape(shape)
