"""Retraining on the whole training split, saving, and loading back with weights_only."""

import pytest
import torch

from objectives import DataConfig, ModelConfig, ObjectiveError, TrainConfig, load_model, metrics_path, save_model, train_final


def test_train_final_uses_all_training_data_and_scores_the_test_split(fashion_root):
    model, result = train_final(TrainConfig(optimizer="adam", lr=1e-3, epochs=2), ModelConfig(hidden=(32,)), DataConfig(data_dir=str(fashion_root)), "cpu")
    assert (result.train_samples, result.test_samples, result.epochs) == (1000, 200, 2)
    assert result.test_accuracy > 0.8 and result.diverged is None


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
    (tmp_path / "old.json").write_text(json.dumps({"model": {"hidden": [16], "activation": "relu"}, "in_features": 20,
                                                   "num_classes": 3}))
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
