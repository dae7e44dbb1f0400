import pytest
from optuna.trial import FixedTrial

from objectives import Choice, Fixed, Float, Int, SearchSpace, SpaceError, TrainConfig


def test_default_space_samples_the_five_parameters():
    space = SearchSpace()
    train, model = space.suggest(
        FixedTrial({"optimizer": "momentum", "lr": 0.01, "batch_size": 128, "epochs": 7, "momentum": 0.9})
    )
    assert train == TrainConfig(optimizer="momentum", lr=0.01, batch_size=128, epochs=7, momentum=0.9)
    assert model == {"activation": "relu", "hidden_units": 512, "hidden_layers": 2, "dropout": 0.0}
    assert space.max_epochs == 20


def test_momentum_only_with_momentum_optimizer():
    # FixedTrial raises if a parameter it lacks is asked for: momentum must not be.
    train, _ = SearchSpace().suggest(FixedTrial({"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2}))
    assert train.optimizer == "adam" and train.beta1 == 0.9


def test_yaml_file_changes_keys(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "lr: {low: 1.0e-4, high: 1.0e-1, log: true}\n"
        "batch_size: {choices: [64, 128]}\n"
        "optimizer: adam          # a scalar pins the parameter\n"
        "epochs: 5\n"
        "hidden_units: {low: 64, high: 256, step: 64}\n"
        "activation: [relu, tanh]\n"
        "beta1: {low: 0.8, high: 0.95}\n"
    )
    space = SearchSpace.from_file(path)
    assert space.lr == Float(1e-4, 1e-1, log=True)
    assert space.batch_size == Choice((64, 128))
    assert space.optimizer == Fixed("adam") and space.epochs == Fixed(5)
    assert space.hidden_units == Int(64, 256, step=64)
    train, model = space.suggest(
        FixedTrial({"lr": 0.01, "batch_size": 64, "hidden_units": 128, "activation": "tanh", "beta1": 0.85})
    )
    assert (train.optimizer, train.epochs, train.beta1) == ("adam", 5, 0.85)
    assert model == {"activation": "tanh", "hidden_units": 128, "hidden_layers": 2, "dropout": 0.0}
    assert SearchSpace.from_mapping(space.to_dict()) == space


def test_max_epochs_sets_the_default_range():
    assert SearchSpace.from_mapping({}, max_epochs=4).epochs == Int(1, 4)
    assert SearchSpace.from_mapping({"epochs": 3}, max_epochs=4).epochs == Fixed(3)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"learning_rate": 0.1}, "unknown parameter 'learning_rate'"),
        ({"lr": {"low": 0.1, "high": 0.01}}, "lr: low 0.1 is greater than high 0.01"),
        ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"lr": {"low": -1, "high": 0.1}}, "lr is -1.0, but must be > 0"),
        ({"batch_size": {"choices": []}}, "batch_size: choices is empty"),
        (
            {"optimizer": {"choices": ["sgd", "rmsprop"]}},
            "optimizer is 'rmsprop', but must be one of sgd, momentum, adam",
        ),
        ({"optimizer": {"low": 1, "high": 2}}, "optimizer: give a value or choices, not a range"),
        ({"lr": {"low": 0.1}}, "lr: a range needs both low and high"),
        ({"lr": {"low": 0.1, "high": 0.2, "hi": 3}}, "lr: unknown field 'hi'"),
        ({"epochs": 2.5}, "epochs is 2.5, but must be an integer"),
        ({"lr": "fast"}, "lr is 'fast', but must be a number"),
        ({"momentum": 1.5}, "momentum is 1.5, but must be >= 0 and < 1"),
        ({"lr": {"low": 0.1, "high": 0.2, "log": "yes"}}, "lr: log is 'yes'"),
    ],
)
def test_bad_spaces_are_refused(mapping, message):
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_mapping(mapping)


def test_bad_files(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("lr: {low: 1\nhigh: [\n")
    with pytest.raises(SpaceError, match="is not valid YAML at line"):
        SearchSpace.from_file(bad_yaml)
    listing = tmp_path / "list.yaml"
    listing.write_text("- lr\n")
    with pytest.raises(SpaceError, match="must be a mapping"):
        SearchSpace.from_file(listing)
    with pytest.raises(SpaceError, match="cannot read space file"):
        SearchSpace.from_file(tmp_path / "missing.yaml")


def test_a_tables_space_trains_with_adam_annealed_and_an_images_as_the_seed():
    """Tables: Adam over lr 1e-4..1e-2, annealed by a cosine schedule, and the regularisation keys searched;
    image sets keep the seed tutorial's constant rate and the three optimizers."""
    from objectives._space import defaults

    table, images = SearchSpace(tuple(defaults("table", rows=4000).items())), SearchSpace()
    assert table.optimizer == Fixed("adam") and table.lr == Float(1e-4, 1e-2, log=True)
    assert table.schedule == Fixed("cosine") and images.schedule == Fixed("constant")
    assert isinstance(images.optimizer, Choice) and images.lr == Float(1e-5, 1e-1, log=True)
    train, _ = table.suggest(
        FixedTrial(
            {
                "lr": 1e-3,
                "batch_size": 64,
                "epochs": 3,
                "weight_decay": 1e-4,
                "hidden_units": 64,
                "hidden_layers": 2,
                "dropout": 0.1,
            }
        )
    )
    assert (train.optimizer, train.schedule) == ("adam", "cosine")
    assert table.baseline()["lr"] == 1e-3  # the first trial: the textbook default, annealed
    assert (table.hidden_units, table.hidden_layers) == (Int(32, 512, log=True), Int(1, 3))  # the cost capped
    # A small table's first trial sees about 10,000 rows (half the longest trial's), at least 10 epochs.
    small = SearchSpace(tuple(defaults("table", rows=300).items()))
    assert small.epochs == Int(1, 67) and small.baseline(rows=300)["epochs"] == 34
    assert table.baseline(rows=4000)["epochs"] == 10 and small.baseline()["epochs"] == 10
