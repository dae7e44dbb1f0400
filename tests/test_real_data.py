"""On real FashionMNIST images (the shared 4,443-image sample): tuning beats the seed's configuration."""

import optuna
import pytest
import torch

from objectives import (
    DataConfig,
    Normalizer,
    SearchSpace,
    TrainConfig,
    evaluate,
    load_splits,
    mlp,
    read_idx,
    train_epochs,
    write_torchvision_root,
)


def test_accuracy(splits, config: TrainConfig, model_kwargs: dict, seed: int = 0) -> float:
    torch.manual_seed(seed)
    net = mlp((784,), 10, **model_kwargs)
    for _ in train_epochs(net, splits, config, seed):
        pass
    return evaluate(net, splits.test_x, splits.test_y, Normalizer(splits.mean, splits.std))[1]


test_accuracy.__test__ = False  # a helper, not a test


@pytest.mark.slow
def test_tuned_configuration_beats_the_seed(sample_dir, tmp_path, cli):
    images = read_idx(sample_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(sample_dir / "t10k-labels-idx1-ubyte.gz")
    write_torchvision_root(tmp_path, images[:3500], labels[:3500], images[3500:], labels[3500:])
    code, _, err = cli("run", "--study", "real", "--data-dir", tmp_path, "--n-trials", 16, "--max-epochs", 8)
    assert code == 0, err
    best = optuna.load_study(study_name="real", storage="sqlite:///studies/studies.db").best_trial
    tuned, model_kwargs = SearchSpace.from_mapping({}, max_epochs=8).suggest(optuna.trial.FixedTrial(best.params))

    splits = load_splits(DataConfig(data_dir=str(tmp_path)))
    seed_accuracy = test_accuracy(splits, TrainConfig(), {})  # SGD, lr 1e-3, batch 64, 5 epochs
    tuned_accuracy = test_accuracy(splits, tuned, model_kwargs)
    assert tuned_accuracy > seed_accuracy + 0.15, (seed_accuracy, tuned_accuracy)
