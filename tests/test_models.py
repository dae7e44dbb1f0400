"""Model functions: the built-in MLP as one, a user's own (module or file), every bad one a line, the Python API."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch

from objectives import ModelError, ModelSpec, mlp
from objectives.models import check_model, resolve

DB = "sqlite:///studies/studies.db"

CNN = '''
from torch import nn


def build(input_shape, num_outputs, channels=8):
    """8x8 images as an .npz give rows of shape (8, 8): one channel added, then a convolution."""
    return nn.Sequential(nn.Unflatten(1, (1, input_shape[0])), nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(channels * input_shape[0] * input_shape[1], num_outputs))


def wrong_size(input_shape, num_outputs):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_outputs - 1))


def not_a_module(input_shape, num_outputs):
    return "a network"


def fixed(input_shape, num_outputs):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_outputs))
'''


@pytest.fixture
def digits_npz(workdir):
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is absent")
    digits = datasets.load_digits()
    np.savez(workdir / "digits.npz", x=digits.images, y=digits.target)
    (workdir / "cnn.py").write_text(CNN)
    return "digits.npz"


def test_the_mlp_is_a_model_function_with_dropout():
    net = mlp((1, 28, 28), 10, hidden_units=32, hidden_layers=3, dropout=0.2)
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3
    assert resolve("objectives.models:mlp") is mlp
    check_model(ModelSpec("objectives.models:mlp", {"hidden_units": 8}), (4,), 3)


def test_a_convolutional_network_on_8x8_images_end_to_end(cli, digits_npz, workdir, monkeypatch):
    (workdir / "space.yaml").write_text("channels: [4, 8]\nepochs: {low: 2, high: 4}\noptimizer: adam\n")
    code, out, err = cli(
        "run",
        "--study",
        "cnn",
        "--data",
        digits_npz,
        "--model",
        "cnn.py:build",
        "--space",
        "space.yaml",
        "--n-trials",
        "4",
        "--confirm",
        "1,2",
    )
    assert code == 0, err
    study = optuna.load_study(study_name="cnn", storage=DB)
    assert study.user_attrs["search"]["model"] == "cnn.py:build"
    assert {t.params["channels"] for t in study.trials} <= {4, 8}
    config = study.trials[0].user_attrs["config"]
    assert config["model"]["function"] == "cnn.py:build" and "channels" in config["model"]["params"]
    assert cli("export", "--study", "cnn", "--output", "cnn.yaml")[0] == 0
    exported = __import__("yaml").safe_load((workdir / "cnn.yaml").read_text())
    # By its file's absolute path: `search train` finds it from any folder.
    assert exported["model"]["function"] == f"{workdir / 'cnn.py'}:build"
    assert set(exported["model"]["params"]) == {"channels"}
    code, out, err = cli("train", "--config", "cnn.yaml", "--save-model", "m/cnn.pt", "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] > 0.8
    record = json.loads((workdir / "m" / "cnn.json").read_text())
    assert record["model"]["function"].endswith("cnn.py:build") and record["input_shape"] == [8, 8]
    assert record["model"]["source_path"] == str(workdir / "cnn.py")
    np.savez(workdir / "new.npz", x=np.load(workdir / digits_npz)["x"][:4])
    code, out, err = cli("predict", "--model", "m/cnn.pt", "--data", "new.npz", "--function", "cnn.py:build")
    assert code == 0 and len(out.strip().splitlines()) == 5, err
    # A model file runs no code by itself: its function is named again, and must be the one recorded.
    code, out, err = cli("predict", "--model", "m/cnn.pt", "--data", "new.npz")
    assert code != 0 and f"name the function to load it with (--function {workdir / 'cnn.py'}:build)" in err
    (workdir / "elsewhere").mkdir()
    (workdir / "elsewhere" / "cnn.py").write_bytes((workdir / "cnn.py").read_bytes())
    code, out, err = cli("predict", "--model", "m/cnn.pt", "--data", "new.npz", "--function", "elsewhere/cnn.py:build")
    assert code == 0 and len(out.strip().splitlines()) == 5, err  # the same source, moved: it loads
    (workdir / "elsewhere" / "cnn.py").write_text((workdir / "cnn.py").read_text() + "\n# changed\n")
    code, out, err = cli("predict", "--model", "m/cnn.pt", "--data", "new.npz", "--function", "elsewhere/cnn.py:build")
    assert code != 0 and "its source is not the one" in err and len(err.strip().splitlines()) == 1
    assert cli("report", "--study", "cnn", "--output", "r.html")[0] == 0
    assert "cnn.py:build" in (workdir / "r.html").read_text()

    # From another folder: the model loads by its function's name (the file it was built from, unchanged),
    # and the exported configuration trains.
    (workdir / "away").mkdir()
    monkeypatch.chdir(workdir / "away")
    code, out, err = cli("predict", "--model", "../m/cnn.pt", "--data", "../new.npz", "--function", "cnn.py:build")
    assert code == 0 and len(out.strip().splitlines()) == 5, err
    code, out, err = cli(
        "train", "--config", "../cnn.yaml", "--data", "../digits.npz", "--save-model", "here.pt", "--limit-train", 200
    )
    assert code == 0, err
    (workdir / "cnn.py").write_text((workdir / "cnn.py").read_text() + "\n# changed\n")
    code, out, err = cli("predict", "--model", "../m/cnn.pt", "--data", "../new.npz", "--function", "cnn.py:build")
    assert code != 0 and "its source is not the one" in err  # a changed file is refused, wherever it is


@pytest.mark.parametrize(
    "model, space, message",
    [
        ("nowhere:build", "", "--model nowhere:build: cannot import nowhere (ModuleNotFoundError"),
        ("cnn.py:missing", "", "--model cnn.py:missing: cnn.py has no function 'missing'"),
        ("cnn.py", "", "--model cnn.py: name a function as module.path:function or file.py:function"),
        (
            "cnn.py:wrong_size",
            "",
            "maps a batch of shape (2, 8, 8) to (2, 9), but must map it to (2, 10): one output per class",
        ),
        ("cnn.py:not_a_module", "", "returned a str, not a torch nn.Module"),
        ("cnn.py:fixed", "width: [1, 2]\n", "unknown parameter 'width'"),
        ("cnn.py:build", "hidden_units: 64\n", "unknown parameter 'hidden_units'"),
    ],
)
def test_a_bad_model_function_is_one_line_and_stores_nothing(cli, digits_npz, workdir, model, space, message):
    args = ["run", "--study", "bad", "--data", digits_npz, "--model", model, "--n-trials", "1", "--confirm", "0"]
    if space:
        (workdir / "s.yaml").write_text(space)
        args += ["--space", "s.yaml"]
    code, out, err = cli(*args)
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (workdir / "studies").exists()


def test_a_model_function_that_fails_names_its_error(tmp_path):
    (tmp_path / "broken.py").write_text(
        "def build(input_shape, num_outputs):\n    raise ValueError('no layers today')\n"
    )
    with pytest.raises(ModelError, match=r"build\(\.\.\.\) failed with ValueError: no layers today"):
        check_model(ModelSpec(f"{tmp_path}/broken.py:build", {}), (4,), 2)


def test_the_python_api_runs_a_study_and_predicts(workdir):
    """search.tune on a DataFrame with a model function: the pick, a trained model, predictions, the same files."""
    import sys

    import search

    datasets = pytest.importorskip("sklearn.datasets")
    (workdir / "api_models.py").write_text(
        "import math\nfrom torch import nn\n\n\ndef build(input_shape, num_outputs, hidden=16):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),"
        " nn.Linear(hidden, num_outputs))\n"
    )
    sys.path.insert(0, str(workdir))
    try:
        from api_models import build

        frame = datasets.load_iris(as_frame=True).frame
        study = search.tune(
            frame,
            target="target",
            model=build,
            space={"hidden": [8, 16]},
            n_trials=3,
            max_epochs=5,
            confirm="1,2",
            study="iris",
        )
        pick = study.pick
        assert pick.picked_by == "confirmation" and pick.quote.n == 2 and set(pick.params) >= {"hidden"}
        assert "confirmed on 2 folds" in study.report()
        model = study.train()
        assert 0 <= model.test["test_value"] <= 1 and model.test["metric"] == "accuracy"
        predicted = model.predict(frame.drop(columns=["target"]).head(4))
        assert list(predicted.columns) == ["predicted", "p_0", "p_1", "p_2"] and len(predicted) == 4
        model.save(workdir / "m" / "iris.pt")
        again = search.load(workdir / "m" / "iris.pt", model=build).predict(frame.head(4))
        assert again["predicted"].tolist() == predicted["predicted"].tolist()
        # The DataFrame became a file the study records: the command line works on the same study.
        made = optuna.load_study(study_name="iris", storage=DB).user_attrs["search"]
        assert made["table"]["file"].startswith("studies/data/") and made["model"] == "api_models:build"
        assert len(study.trials()) == 3
    finally:
        sys.path.remove(str(workdir))


def test_a_crafted_model_file_runs_nothing(cli, workdir):
    """Its .json names subprocess:call with a command as the input shape: predict refuses before importing anything."""
    import torch

    marker = workdir / "ran"
    torch.save({}, workdir / "evil.pt")
    (workdir / "evil.json").write_text(
        json.dumps(
            {
                "model": {"function": "subprocess:call", "params": {}},
                "input_shape": ["touch", str(marker)],
                "num_outputs": 1,
                "preprocessing": {"numeric": [], "text": []},
                "dataset": "table",
            }
        )
    )
    (workdir / "new.csv").write_text("a\n1\n")
    code, out, err = cli("predict", "--model", "evil.pt", "--data", "new.csv")
    assert code != 0 and "runs no code by itself" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("predict", "--model", "evil.pt", "--data", "new.csv", "--function", "os:system")
    assert code != 0 and "is not the function" in err
    assert not marker.exists()
