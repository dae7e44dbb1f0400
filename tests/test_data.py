import gzip
import shutil

import pytest
import torch

from objectives import DataConfig, DataError, load_splits, read_idx, write_idx
from objectives.data._idx import IDX_FILES


def test_torchvision_loader_reads_idx_files(fashion_root):
    splits = load_splits(DataConfig(data_dir=str(fashion_root), download=False))
    assert splits.train_x.dtype == torch.uint8 and splits.train_x.shape[1] == 784
    assert splits.train_x.shape[0] + splits.val_x.shape[0] == 1000 and abs(splits.val_x.shape[0] - 100) <= 5
    assert splits.test_x.shape == (200, 784)
    assert splits.train_y.dtype == torch.int64
    assert splits.classes[0] == "T-shirt/top"  # FashionMNIST's own class names
    assert 0 < splits.mean < 1 and 0 < splits.std < 1


def test_split_is_seeded_and_disjoint(fashion_root):
    from objectives.data._load import _split

    a = load_splits(DataConfig(data_dir=str(fashion_root), seed=3))
    _split.cache_clear()  # b is built anew, not served from a's cache entry
    b = load_splits(DataConfig(data_dir=str(fashion_root), seed=3))
    c = load_splits(DataConfig(data_dir=str(fashion_root), seed=4))
    assert a is not b and a.val_x.data_ptr() != b.val_x.data_ptr()
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.val_x, c.val_x)
    rows = {tuple(r.tolist()) for r in a.train_x}
    assert not any(tuple(r.tolist()) in rows for r in a.val_x)


def test_limit_train_and_fraction(fashion_root):
    splits = load_splits(DataConfig(data_dir=str(fashion_root), validation_fraction=0.2, limit_train=50))
    assert splits.train_x.shape[0] == 50 and splits.val_x.shape[0] == 200


def test_missing_files_say_which_and_where(tmp_path):
    with pytest.raises(DataError) as err:
        load_splits(DataConfig(data_dir=str(tmp_path), download=False))
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "FashionMNIST" / "raw") in message
    assert "\n" not in message


def test_gz_files_dropped_in_by_hand_are_unpacked(fashion_root, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES.values():
        (raw / (name + ".gz")).write_bytes(gzip.compress((fashion_root / "FashionMNIST" / "raw" / name).read_bytes()))
    splits = load_splits(DataConfig(data_dir=str(tmp_path), download=False))
    assert splits.test_x.shape == (200, 784)


def test_corrupt_file_is_one_clear_error(fashion_root, tmp_path):
    shutil.copytree(fashion_root, tmp_path, dirs_exist_ok=True)
    (tmp_path / "FashionMNIST" / "raw" / IDX_FILES["train_images"]).write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="cannot read fashion-mnist"):
        load_splits(DataConfig(data_dir=str(tmp_path), download=False))


def test_idx_round_trip(tmp_path):
    array = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        assert torch.equal(read_idx(tmp_path / name), array)


def test_synthetic_is_deterministic():
    a = load_splits(DataConfig(dataset="synthetic"))
    assert a.train_x.shape == (5400, 784) and a.num_classes == 10
    from objectives.data._load import _split

    _split.cache_clear()
    assert torch.equal(load_splits(DataConfig(dataset="synthetic")).train_x, a.train_x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"dataset": "cifar"},
            "`dataset` is 'cifar', but must be one of",
        ),  # Python's names: the CLI's flags are its own
        ({"validation_fraction": 1.5}, "`validation_fraction` is 1.5, but must be > 0 and < 1"),
        ({"limit_train": 0}, "`limit_train` is 0, but must be >= 1"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(DataError, match=message):
        DataConfig(**kwargs)


@pytest.mark.slow
def test_real_sample_loads(sample_dir, tmp_path):
    """The shared real FashionMNIST images go through the same loader."""
    images, labels = (
        read_idx(sample_dir / "t10k-images-idx3-ubyte.gz"),
        read_idx(sample_dir / "t10k-labels-idx1-ubyte.gz"),
    )
    from objectives import write_torchvision_root

    write_torchvision_root(tmp_path, images[:4000], labels[:4000], images[4000:], labels[4000:])
    splits = load_splits(DataConfig(data_dir=str(tmp_path)))
    assert splits.train_x.shape == (3600, 784) and splits.test_x.shape == (443, 784)
    assert set(splits.train_y.unique().tolist()) == set(range(10))


def test_a_download_that_never_answers_is_bounded(tmp_path, monkeypatch):
    """A mirror that accepts the connection and then says nothing: one line, in bounded time."""
    import socket
    import threading

    import torchvision.datasets

    import objectives.data._images

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
    monkeypatch.setattr(objectives.data._images, "DOWNLOAD_TIMEOUT", 0.5)
    outcome = []

    def load():
        try:
            load_splits(DataConfig(data_dir=str(tmp_path / "d")))
        except DataError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=120)  # without the timeout, urllib would wait on the silent mirror forever
    server.close()
    assert not worker.is_alive() and outcome and "could not be downloaded" in outcome[0]
    assert not (tmp_path / "d").exists()  # and it left nothing behind


def test_the_validation_split_is_stratified(fashion_root):
    """Each class keeps its share in the validation split (within one row of rounding)."""
    from objectives import read_idx

    labels = read_idx(fashion_root / "FashionMNIST" / "raw" / IDX_FILES["train_labels"]).long()
    splits = load_splits(DataConfig(data_dir=str(fashion_root), validation_fraction=0.2, seed=5))
    for c in range(10):
        assert abs(int((splits.val_y == c).sum()) - 0.2 * int((labels == c).sum())) <= 0.5 + 1e-9
    plain = load_splits(DataConfig(data_dir=str(fashion_root), validation_fraction=0.2, seed=5, stratify=False))
    assert plain.val_x.shape[0] == 200 and not torch.equal(plain.val_y, splits.val_y)


def test_image_moments_are_the_pixels_mean_and_sample_std():
    from objectives.data._splits import moments

    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    m = moments(images, chunk=7)  # chunked sums agree with the whole
    pixels = images.double() / 255
    assert m["mean"] == pytest.approx(float(pixels.mean()), rel=1e-9)
    assert m["std"] == pytest.approx(float(pixels.std()), rel=1e-9)


def test_tiny_splits_keep_rows_on_both_sides():
    import numpy as np

    from objectives.data._splits import SEARCH, pool_indices, stratified_split

    pairs = np.array([0, 0, 1, 1, 2, 2])
    train, val = pool_indices(pairs, 0.1, 0, True, SEARCH)  # every class rounds to no row: one validates all the same
    assert len(val) == 1 and len(train) == 5
    train, val = pool_indices(np.zeros(5, dtype=np.int64), 0.1, 0, False, SEARCH)
    assert len(val) == 1 and len(train) == 4
    labels = np.array([0, 0, 1, 1, 1, 1])
    kept, held = stratified_split(labels, 0.9, 0, "test split", ("a", "b"))  # never a whole class held out
    assert np.bincount(labels[kept]).tolist() == [1, 1] and np.bincount(labels[held]).tolist() == [1, 3]
    kept, held = stratified_split(np.arange(3.0), 0.1, 0, "test split", ())  # regression: at least one row each side
    assert len(held) == 1 and len(kept) == 2
