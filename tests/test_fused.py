"""Several trainings as one batched model (objectives/_fused.py): each member as it would train alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from objectives import DataConfig, ModelConfig, TrainConfig, build_mlp, load_splits, train_epochs
from objectives._fused import FusedTraining
from objectives._fused_forward import fusable


@pytest.fixture(scope="module")
def splits():
    return load_splits(DataConfig(dataset="synthetic", limit_train=600))


def _model(seed: int, hidden=(32, 16), dropout=0.0, in_features=784, outputs=10):
    """As the objective builds a trial's model: the seed, then the model; the generator's state after it."""
    torch.manual_seed(seed)
    model = build_mlp(ModelConfig(hidden=hidden, dropout=dropout), in_features, outputs)
    return model, torch.Generator().set_state(torch.get_rng_state())


def _alone(splits, config, seed, **shape):
    model, _ = _model(seed, **shape)
    return list(train_epochs(model, splits, config, seed)), model.state_dict()


def _fused(splits, configs, seeds, **shape):
    """Every member's epochs, fused, until none is left; and the training."""
    built = [_model(s, **shape) for s in seeds]
    fused = FusedTraining([m for m, _ in built], configs, seeds, [g for _, g in built], splits)
    results: dict[int, list] = {k: [] for k in range(len(configs))}
    while fused.members:
        for member, result in fused.epoch().items():
            results[member].append(result)
    return results, fused


def _same(a, b):
    assert [r.epoch for r in a] == [r.epoch for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-5, abs=1e-6)
        assert x.val_loss == pytest.approx(y.val_loss, rel=1e-5, abs=1e-6)
        assert x.value == pytest.approx(y.value, abs=1e-9)
        assert x.diverged == y.diverged


CASES = {
    "sgd": [
        TrainConfig(optimizer="sgd", lr=0.05, epochs=3),
        TrainConfig(optimizer="sgd", lr=0.01, weight_decay=1e-3, epochs=3),
    ],
    "momentum": [
        TrainConfig(optimizer="momentum", lr=0.02, momentum=0.9, epochs=3),
        TrainConfig(optimizer="momentum", lr=0.005, momentum=0.5, epochs=3),
    ],
    "adam": [
        TrainConfig(optimizer="adam", lr=1e-3, epochs=3),
        TrainConfig(optimizer="adam", lr=3e-3, beta1=0.8, beta2=0.99, weight_decay=1e-4, epochs=3),
    ],
    "mixed": [
        TrainConfig(optimizer="adam", lr=1e-3, epochs=3),
        TrainConfig(optimizer="momentum", lr=0.02, epochs=3),
        TrainConfig(optimizer="sgd", lr=0.05, epochs=3),
    ],
    # Each member's learning rate annealed over its own epochs: a member of 2 epochs beside one of 3.
    "cosine": [
        TrainConfig(optimizer="adam", lr=3e-3, epochs=3, schedule="cosine"),
        TrainConfig(optimizer="adam", lr=1e-3, epochs=2, schedule="cosine"),
        TrainConfig(optimizer="momentum", lr=0.02, epochs=3, schedule="cosine"),
        TrainConfig(optimizer="sgd", lr=0.05, epochs=3),
    ],
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_each_member_trains_as_it_would_alone(splits, case, dropout):
    configs = CASES[case]
    seeds = [11 + k for k in range(len(configs))]
    results, _ = _fused(splits, configs, seeds, dropout=dropout)
    for k, (config, seed) in enumerate(zip(configs, seeds, strict=True)):
        alone, _ = _alone(splits, config, seed, dropout=dropout)
        _same(results[k], alone)


def test_a_member_that_leaves_disturbs_no_other_and_each_ends_with_its_own_weights(splits):
    configs = [TrainConfig(optimizer="adam", lr=1e-3, epochs=3), TrainConfig(optimizer="momentum", lr=0.02, epochs=1),
               TrainConfig(optimizer="sgd", lr=0.05, epochs=4)]  # fmt: skip
    seeds = [3, 4, 5]
    built = [_model(s) for s in seeds]
    fused = FusedTraining([m for m, _ in built], configs, seeds, [g for _, g in built], splits)
    seen = {0: [], 1: [], 2: []}
    final = {}
    first = fused.epoch()
    for member, result in first.items():
        seen[member].append(result)
    assert fused.members == [0, 2]  # member 1 had one epoch
    fused.leave(0)  # its caller pruned it
    while fused.members:
        for member, result in fused.epoch().items():
            seen[member].append(result)
        if fused.members:
            final[2] = fused.state_dict(2)
    for k, epochs in ((0, 1), (1, 1)):
        alone, _ = _alone(splits, configs[k], seeds[k])
        _same(seen[k], alone[:epochs])
    alone, weights = _alone(splits, configs[2], seeds[2])
    _same(seen[2], alone)


def test_a_members_weights_load_into_its_own_model(splits):
    config = TrainConfig(optimizer="adam", lr=1e-3, epochs=2)
    built = [_model(s) for s in (1, 2)]
    fused = FusedTraining([m for m, _ in built], [config, config], [1, 2], [g for _, g in built], splits)
    fused.epoch()  # one of two epochs: both still in
    model, _ = _model(2)
    alone = train_epochs(model, splits, config, 2)
    next(alone)
    model.load_state_dict(fused.state_dict(1))  # the names and shapes of its own model
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, fused.state_dict(1)[name])


def test_a_member_that_diverges_fails_alone(splits):
    configs = [
        TrainConfig(optimizer="momentum", lr=1e4, momentum=0.9, epochs=2),
        TrainConfig(optimizer="adam", lr=1e-3, epochs=2),
    ]
    results, _ = _fused(splits, configs, [7, 8])
    assert results[0][-1].diverged and len(results[0]) == 1
    alone, _ = _alone(splits, configs[1], 8)
    _same(results[1], alone)


def _gelu_net(seed: int, hidden: int = 24, extra=()):
    """A user's model, not the built-in MLP's pattern: it trains fused under torch.func.vmap."""
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.GELU(), *extra, nn.Linear(hidden, 10))
    return model, torch.Generator().set_state(torch.get_rng_state())


def test_which_models_fuse(splits):
    from torch import nn

    rows = splits.train_x[:2].float()
    assert fusable(_model(0)[0]) is None  # the built-in MLP, always
    assert fusable(_gelu_net(0)[0], rows) is None  # vmap runs it, forward and backward
    assert "not the built-in MLP" in fusable(_gelu_net(0)[0])  # nothing to try it on
    assert "buffers" in fusable(nn.Sequential(nn.Flatten(), nn.Linear(784, 4), nn.BatchNorm1d(4)), rows)
    refused = fusable(_gelu_net(0, extra=(nn.Dropout(0.5),))[0], rows)  # its masks could not be each member's own
    assert refused.startswith("torch.func cannot batch the model")


@pytest.mark.parametrize("case", ["sgd", "momentum", "adam", "mixed"])
def test_a_users_model_trains_fused_as_it_would_alone(splits, case):
    configs = CASES[case]
    seeds = [41 + k for k in range(len(configs))]
    built = [_gelu_net(s) for s in seeds]
    fused = FusedTraining([m for m, _ in built], configs, seeds, [g for _, g in built], splits)
    results: dict[int, list] = {k: [] for k in range(len(configs))}
    while fused.members:
        for member, result in fused.epoch().items():
            results[member].append(result)
    for k, (config, seed) in enumerate(zip(configs, seeds, strict=True)):
        model, _ = _gelu_net(seed)
        _same(results[k], list(train_epochs(model, splits, config, seed)))
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(fused.left[k][name], tensor, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["momentum", "adam", "mixed", "cosine"])
def test_a_member_that_joins_later_trains_as_it_would_alone(splits, case):
    """A member joins where another left (the group kept full): its steps are its own from its first epoch on
    (Adam's step count, momentum's first buffer), and the member that was there all along is not disturbed."""
    first, joiner = CASES[case][0], CASES[case][-1]
    built = [_model(21), _model(22)]
    fused = FusedTraining([built[0][0]], [first], [21], [built[0][1]], splits)
    seen: dict[int, list] = {0: [], 1: []}
    for member, result in fused.epoch().items():
        seen[member].append(result)
    assert fused.join(built[1][0], joiner, 22, built[1][1]) == 1
    while fused.members:
        for member, result in fused.epoch().items():
            seen[member].append(result)
    _same(seen[0], _alone(splits, first, 21)[0])
    _same(seen[1], _alone(splits, joiner, 22)[0])


def test_a_joiner_of_another_shape_or_batch_is_refused(splits):
    model, generator = _model(1)
    fused = FusedTraining([model], [TrainConfig(batch_size=64)], [1], [generator], splits)
    with pytest.raises(ValueError, match="batch size"):
        fused.join(_model(2)[0], TrainConfig(batch_size=32), 2, _model(2)[1])
    with pytest.raises(ValueError, match="layers' sizes"):
        fused.join(_model(2, hidden=(16, 16))[0], TrainConfig(batch_size=64), 2, _model(2)[1])


@pytest.mark.parametrize("case", ["sgd", "momentum", "adam", "cosine"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_members_snapshot_resumes_alone_where_it_would_have_gone(splits, case, dropout):
    """A checkpoint of a fused member (its weights, optimizer state, data order, dropout generator) goes on
    alone, through `train_epochs`' resume, to the same end as the member trained alone from the start."""
    configs = [dataclasses.replace(c, epochs=3) for c in (CASES[case] + CASES["mixed"])[:3]]
    seeds = [31, 32, 33]
    built = [_model(s, dropout=dropout) for s in seeds]
    fused = FusedTraining([m for m, _ in built], configs, seeds, [g for _, g in built], splits)
    state = fused.epoch()[0].snapshot()
    state = torch.load(_saved(state), weights_only=True)  # as a checkpoint file holds it
    model, _ = _model(99, dropout=dropout)  # other initial weights: the snapshot's must win
    resumed = list(train_epochs(model, splits, configs[0], seeds[0], resume=state))
    alone = _alone(splits, configs[0], seeds[0], dropout=dropout)[0]
    _same(resumed, alone[1:])


def _saved(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer
