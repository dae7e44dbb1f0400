"""Retraining on the whole training split, saving, and loading back with weights_only."""

import pytest
import torch

from objectives import (
    DataConfig,
    ModelConfig,
    ObjectiveError,
    TrainConfig,
    load_model,
    metrics_path,
    save_model,
    train_final,
)


def test_train_final_uses_all_training_data_and_scores_the_test_split(fashion_root):
    model, result = train_final(
        TrainConfig(optimizer="adam", lr=1e-3, epochs=2),
        ModelConfig(hidden=(32,)),
        DataConfig(data_dir=str(fashion_root)),
        "cpu",
    )
    assert (result.train_samples, result.test_samples, result.epochs) == (1000, 200, 2)
    assert result.test_accuracy > 0.8 and result.diverged is None


def test_a_final_model_scores_the_test_rows_once(fashion_root, monkeypatch):
    import objectives._train as train

    scored = []
    real = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: scored.append(1) or real(*a, **k))
    seen = []
    _, result = train_final(
        TrainConfig(optimizer="adam", lr=1e-3, epochs=3),
        ModelConfig(hidden=(16,)),
        DataConfig(data_dir=str(fashion_root)),
        "cpu",
        on_epoch=seen.append,
    )
    assert len(scored) == 1 and [r.value is None for r in seen] == [True, True, False]
    assert result.test_value == seen[-1].value and result.epochs == 3


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    from objectives import build_mlp

    config = ModelConfig(hidden=(16, 8), activation="tanh")
    model = build_mlp(config)
    metrics = save_model(model, tmp_path / "m" / "net.pt", config, {"test_accuracy": 0.5})
    assert metrics == metrics_path(tmp_path / "m" / "net.pt") == tmp_path / "m" / "net.json"
    loaded, record = load_model(tmp_path / "m" / "net.pt")
    x = torch.randn(3, 784)
    torch.testing.assert_close(loaded(x), model(x))
    assert record["test_accuracy"] == 0.5 and record["model"]["params"]["activation"] == "tanh"


def test_a_model_saved_by_an_earlier_version_still_loads(tmp_path):
    """Its JSON described the MLP's shape (hidden, activation, in_features, num_classes); the weights' names are the same."""
    import json

    from objectives import build_mlp

    model = build_mlp(ModelConfig(hidden=(16,)), in_features=20, num_classes=3)
    torch.save(model.state_dict(), tmp_path / "old.pt")
    (tmp_path / "old.json").write_text(
        json.dumps({"model": {"hidden": [16], "activation": "relu"}, "in_features": 20, "num_classes": 3})
    )
    loaded, _ = load_model(tmp_path / "old.pt")
    x = torch.randn(4, 20)
    torch.testing.assert_close(loaded(x), model(x))


def test_a_corrupt_or_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ObjectiveError, match="cannot load a model from"):
        load_model(tmp_path / "missing.pt")
    from objectives import build_mlp

    save_model(build_mlp(ModelConfig(hidden=(4,))), tmp_path / "net.pt", ModelConfig(hidden=(4,)), {})
    (tmp_path / "net.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ObjectiveError, match="cannot load a model from"):
        load_model(tmp_path / "net.pt")


def test_a_save_that_fails_half_way_leaves_the_old_model_whole(tmp_path, monkeypatch):
    from objectives import build_mlp

    config = ModelConfig(hidden=(4,))
    old = build_mlp(config)
    save_model(old, tmp_path / "net.pt", config, {"test_accuracy": 0.25})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def cut_short(obj, out):
        out.write(b"PK\x03\x04 partial")  # what a full disk leaves of a zip
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", cut_short)
    with pytest.raises(ObjectiveError, match="cannot save the model to .*net.pt: .*PytorchStreamWriter failed"):
        save_model(build_mlp(config), tmp_path / "net.pt", config, {"test_accuracy": 0.75})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old pair, and no temporary left
    monkeypatch.undo()
    loaded, record = load_model(tmp_path / "net.pt")
    assert record["test_accuracy"] == 0.25


def test_an_empty_weights_file_and_a_folder_are_one_line(tmp_path):
    from objectives import build_mlp

    config = ModelConfig(hidden=(4,))
    save_model(build_mlp(config), tmp_path / "net.pt", config, {})
    (tmp_path / "net.pt").write_bytes(b"")
    with pytest.raises(ObjectiveError, match="the weights file is empty or cut short"):
        load_model(tmp_path / "net.pt")
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(ObjectiveError, match="it is a folder"):
        save_model(build_mlp(config), tmp_path / "dir.pt", config, {})


def test_text_outputs_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    import os

    from search import SearchError
    from search._files import write_text

    target = tmp_path / "best.yaml"
    write_text(target, "old: 1\n")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(SearchError, match="cannot write .*best.yaml: No space left on device"):
        write_text(target, "new: 2\n" * 1000)
    assert target.read_text() == "old: 1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["best.yaml"]
    with pytest.raises(SearchError, match="it is a folder"):
        write_text(tmp_path, "x")
