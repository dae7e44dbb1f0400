import math

import pytest
import torch

from objectives import DataConfig, ModelConfig, SpaceError, TrainConfig, build_mlp, load_splits, train_epochs


@pytest.fixture
def splits(fashion_root):
    return load_splits(DataConfig(data_dir=str(fashion_root)))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_optimizer_learns(splits, optimizer):
    torch.manual_seed(0)
    lr = 1e-3 if optimizer == "adam" else 0.05
    config = TrainConfig(optimizer=optimizer, lr=lr, batch_size=32, epochs=3)
    results = list(train_epochs(build_mlp(ModelConfig(hidden=(64,))), splits, config, seed=0))
    assert [r.epoch for r in results] == [1, 2, 3]
    assert results[-1].val_accuracy > 0.8  # chance is 0.1
    assert results[-1].train_loss < results[0].train_loss
    assert all(r.samples == splits.train_x.shape[0] and r.diverged is None for r in results)


def test_mse_loss_on_softmax_learns(splits):
    torch.manual_seed(0)
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=3, loss="mse")
    results = list(train_epochs(build_mlp(ModelConfig(hidden=(64,))), splits, config))
    assert results[-1].val_accuracy > 0.6


def test_divergence_stops_the_run_with_a_reason(splits):
    torch.manual_seed(0)
    config = TrainConfig(optimizer="momentum", lr=1e4, momentum=0.9, batch_size=16, epochs=5)
    results = list(train_epochs(build_mlp(ModelConfig()), splits, config))
    assert len(results) == 1
    reason = results[0].diverged
    assert reason is not None and ("nan" in reason or "inf" in reason)
    assert not math.isfinite(results[0].train_loss)


def test_same_seed_same_result(splits):
    def run():
        torch.manual_seed(1)
        return [
            r.val_accuracy
            for r in train_epochs(build_mlp(ModelConfig(hidden=(32,))), splits, TrainConfig(lr=0.05, epochs=2), seed=7)
        ]

    assert run() == run()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1}, "lr is -1, but must be > 0"),
        ({"batch_size": 0}, "batch_size is 0, but must be >= 1"),
        ({"optimizer": "rmsprop"}, "optimizer is 'rmsprop', but must be one of sgd, momentum, adam"),
        ({"momentum": 1.0}, "momentum is 1, but must be >= 0 and < 1"),
        ({"loss": "hinge"}, "loss is 'hinge'"),
        ({"schedule": "step"}, "schedule is 'step', but must be one of constant, cosine"),
    ],
)
def test_bad_train_config(kwargs, message):
    with pytest.raises(SpaceError, match=message):
        TrainConfig(**kwargs)


def test_a_cosine_schedule_anneals_each_step_from_lr_to_nothing(splits, monkeypatch):
    """The rate each step trains with: lr at the first step, half of it midway, near 0 at the last."""
    from objectives import _optim

    seen = []
    step = _optim.Adam.step

    def watched(self):
        seen.append(self.lr)
        step(self)

    monkeypatch.setattr(_optim.Adam, "step", watched)
    config = TrainConfig(optimizer="adam", lr=1e-2, batch_size=256, epochs=2, schedule="cosine")
    list(train_epochs(build_mlp(ModelConfig(hidden=(16,))), splits, config, seed=0))
    per_epoch = math.ceil(splits.train_x.shape[0] / 256)
    assert len(seen) == 2 * per_epoch
    assert seen[0] == pytest.approx(1e-2)
    assert seen[per_epoch] == pytest.approx(5e-3)
    assert 0 < seen[-1] < 1e-2 * (math.pi / len(seen)) ** 2  # 1 - cos(x) ~ x^2 / 2
    assert seen == sorted(seen, reverse=True)
    assert TrainConfig(lr=0.1).lr_at(7, 10) == 0.1  # constant: held


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adam-cosine"])
def test_a_run_resumed_from_a_snapshot_ends_as_the_run_that_never_stopped(splits, optimizer):
    """The state after epoch 2, written and read as a checkpoint is (torch.save, then torch.load with
    weights_only=True), then epochs 3-4 in a new model: the same losses, figures and weights, step for step."""
    import io

    optimizer, _, schedule = optimizer.partition("-")
    lr = 1e-3 if optimizer == "adam" else 0.05
    config = TrainConfig(optimizer=optimizer, lr=lr, batch_size=64, epochs=4, schedule=schedule or "constant")

    def fresh():
        torch.manual_seed(3)  # the initial weights; the dropout masks draw from this generator too
        return build_mlp(ModelConfig(hidden=(32,), dropout=0.2))

    whole_model = fresh()
    whole = [(r.train_loss, r.val_loss, r.value) for r in train_epochs(whole_model, splits, config, seed=5)]

    saved = io.BytesIO()
    for result in train_epochs(fresh(), splits, config, seed=5):
        if result.epoch == 2:
            torch.save(result.snapshot(), saved)
            break
    torch.randn(100)  # the process's generator moves on, as another trial's would: the checkpoint carries its own
    saved.seek(0)
    state = torch.load(saved, weights_only=True)
    resumed_model = fresh()
    resumed = [
        (r.train_loss, r.val_loss, r.value) for r in train_epochs(resumed_model, splits, config, seed=5, resume=state)
    ]
    assert len(resumed) == 2
    assert [x for r in resumed for x in r] == pytest.approx([x for w in whole[2:] for x in w], rel=1e-6)
    for name, tensor in whole_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[name], tensor)
