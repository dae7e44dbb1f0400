"""Checkpoints and resume (search/tracking/_checkpoints.py), TensorBoard and MLflow (search/tracking)."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
import torch
from _procs import open_study, search, wait_for
from optuna.trial import TrialState

from objectives import load_model
from search import SearchError, open_storage
from search._optuna import storage_backend

QUICK = ["--dataset", "synthetic", "--confirm", "0", "--pruner", "none"]
DB = "sqlite:///studies/studies.db"
ARTIFACTS = Path("studies") / "studies-artifacts"  # beside the default SQLite file


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_checkpoints_go_as_trials_end_and_the_best_trials_weights_stay(cli, workdir):
    code, out, err = cli(
        "run", "--study", "s", "--n-trials", 6, "--max-epochs", 3, "--checkpoint-every", 1, "--keep", 2, *QUICK
    )
    assert code == 0, err
    study = optuna.load_study(study_name="s", storage=DB)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert any(t.user_attrs.get("checkpoint") for t in done if t.params["epochs"] > 1)  # checkpoints were taken
    files = _files(workdir / ARTIFACTS)
    assert not [f for f in files if f.startswith("checkpoint-")]  # and every one went with its trial
    kept = {t.number for t in done if t.user_attrs.get("weights") in files}
    best = sorted((t for t in done if not t.user_attrs.get("baseline")), key=lambda t: -t.value)[:2]
    assert kept == {0} | {t.number for t in best}  # the two best and the baseline, no more
    assert len(files) == len(kept)
    # Each kept file is the trial's Optuna artifact (optuna-dashboard lists it) and loads as the trial's model.
    top = best[0]
    metas = optuna.artifacts.get_all_artifact_meta(top, storage=study._storage)
    assert [m.filename for m in metas] == ["weights.pt"] and metas[0].artifact_id == top.user_attrs["weights"]
    state = torch.load(workdir / ARTIFACTS / metas[0].artifact_id, weights_only=True)
    assert sum(t.numel() for t in state.values()) == top.user_attrs["n_params"]

    # optuna-dashboard serves it from the trial's page (`search dashboard` hands it the run's artifact store).
    import threading
    import urllib.request

    from search.cli._dashboard import make_dashboard

    server = make_dashboard(None, "127.0.0.1", 0, readonly=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = (
            f"http://127.0.0.1:{server.server_port}/artifacts/{study._study_id}/{top._trial_id}/{metas[0].artifact_id}"
        )
        with urllib.request.urlopen(address, timeout=30) as answer:
            assert answer.read() == (workdir / ARTIFACTS / metas[0].artifact_id).read_bytes()
    finally:
        server.shutdown()

    # `search export --model`: the pick's network as the search trained it, scored on the test rows.
    code, out, err = cli("export", "--study", "s", "--output", "best.yaml", "--model", "searched.pt")
    assert code == 0, err
    network, record = load_model(workdir / "searched.pt")
    pick = max(done, key=lambda t: t.value)  # no confirmation: the best search value, the baseline included
    assert record["searched"] == {"study": "s", "trial": pick.number, "value": pick.value}
    kept = torch.load(workdir / ARTIFACTS / pick.user_attrs["weights"], weights_only=True)
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, kept[name])
    assert 0 <= record["test_accuracy"] <= 1 and f"test accuracy {record['test_accuracy']:.4f}" in out


def test_exporting_a_network_whose_weights_were_not_kept_is_one_line_and_writes_nothing(cli, workdir):
    assert cli("run", "--study", "s", "--n-trials", 2, "--max-epochs", 2, "--keep", 0, *QUICK)[0] == 0
    code, out, err = cli("export", "--study", "s", "--output", "best.yaml", "--model", "searched.pt")
    assert code != 0 and "kept no weights" in err and len(err.strip().splitlines()) == 1, err
    assert not (workdir / "searched.pt").exists() and not (workdir / "best.yaml").exists()


def test_short_trials_take_no_checkpoint_by_default(cli, workdir):
    code, _, err = cli("run", "--study", "s", "--n-trials", 3, "--max-epochs", 3, "--keep", 0, *QUICK)
    assert code == 0, err
    study = optuna.load_study(study_name="s", storage=DB)
    assert not any("checkpoint" in t.user_attrs or "weights" in t.user_attrs for t in study.trials)
    assert not (workdir / ARTIFACTS).exists()  # nothing saved, no folder made


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--checkpoint-every", "-1"], "--checkpoint-every is -1, but must be >= 0 epochs (0: never)"),
        (["--keep", "-2"], "--keep is -2, but must be >= 0"),
        (["--mlflow"], "--mlflow has no URI: give one (http://host:5000, a folder), or set $MLFLOW_TRACKING_URI"),
        (
            ["--artifacts", "ftp://host/x"],
            "--artifacts is 'ftp://host/x', but must be a folder, s3://BUCKET or gs://BUCKET",
        ),
    ],
)
def test_bad_tracking_flags_are_one_line_and_store_nothing(cli, workdir, monkeypatch, flags, message):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = cli("run", "--study", "s", "--n-trials", 1, *flags, *QUICK)
    assert code != 0 and message in err and "Traceback" not in err, err
    assert not (workdir / "studies").exists()


LONG = "hidden_units: 512\nepochs: 10\nbatch_size: 64\noptimizer: momentum\nlr: 0.01\n"


@pytest.mark.slow
def test_a_killed_workers_trial_goes_on_from_its_checkpoint_and_ends_as_if_never_killed(tmp_path):
    (tmp_path / "space.yaml").write_text(LONG)
    url = f"sqlite:///{tmp_path}/s.db"
    common = ["--storage", url, "--dataset", "synthetic", "--limit-train", 3000, "--space", "space.yaml"]
    args = [*common, "--heartbeat", 1, "--pruner", "none", "--checkpoint-every", 1, "--n-trials", 1]

    def mark():
        try:
            trials = open_study(url, "k").get_trials(deepcopy=False)
        except (KeyError, SearchError):  # no file, or no study in it, yet
            return False
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return running and (running[0].user_attrs.get("checkpoint") or {}).get("epoch", 0) >= 6

    worker = search(tmp_path, "run", "--study", "k", *args, popen={})
    try:
        wait_for(mark, timeout=120, every=0.02)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    study = open_study(url, "k")
    dead = study.get_trials(deepcopy=False)[0]
    assert dead.state == TrialState.RUNNING  # killed before its last epoch
    at = dead.user_attrs["checkpoint"]["epoch"]
    assert 6 <= at < 10
    beats = storage_backend(open_storage(url, heartbeat=1))  # judged as the next worker will, on the storage's clock
    wait_for(lambda: dead._trial_id in beats.stale_trial_ids(study._study_id), timeout=60)

    done = search(tmp_path, "run", "--study", "k", *args)
    assert done.returncode == 0, done.stderr
    failed, retry = open_study(url, "k").get_trials(deepcopy=False)
    assert failed.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_at_epoch"] == at and retry.user_attrs["resumed_from_trial"] == 0
    assert retry.user_attrs["seed"] == dead.user_attrs["seed"]  # its record says what it trained with
    assert sorted(retry.intermediate_values) == list(range(1, 11))  # the dead trial's reports, then its own
    listed = search(tmp_path, "trials", "--study", "k", "--storage", url).stdout.splitlines()
    header, row = listed[0].split(), listed[2].split()
    assert "resumed_at_epoch" in header and row[header.index("resumed_at_epoch")] == str(at)

    whole = search(
        tmp_path, "run", "--study", "w", *common, "--pruner", "none", "--checkpoint-every", 0, "--n-trials", 1
    )
    assert whole.returncode == 0, whole.stderr
    (never_killed,) = open_study(url, "w").get_trials(deepcopy=False)
    assert retry.value == pytest.approx(never_killed.value, rel=1e-6)
    assert [retry.intermediate_values[e] for e in range(1, 11)] == pytest.approx(
        [never_killed.intermediate_values[e] for e in range(1, 11)], rel=1e-6
    )
    assert not [f for f in _files(tmp_path / "s-artifacts") if f.startswith("checkpoint-")]


def test_tensorboard_holds_each_trials_epochs_and_the_hparams_table(cli, workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    code, _, err = cli("run", "--study", "tb", "--n-trials", 3, "--max-epochs", 3, "--tensorboard", "tb", *QUICK)
    assert code == 0, err
    study = optuna.load_study(study_name="tb", storage=DB)
    for trial in study.trials:
        folder = workdir / "tb" / "tb" / f"trial-{trial.number:05d}"
        events = EventAccumulator(str(folder)).Reload()
        curve = {e.step: e.value for e in events.Scalars("val/accuracy")}
        assert curve == pytest.approx(trial.intermediate_values, rel=1e-6)
        assert [e.step for e in events.Scalars("loss/train")] == list(range(1, trial.params["epochs"] + 1))
        # The HParams tab: the trial's parameters and its figure, in the plugin's own records.
        content = HParamsPluginData.FromString(events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
        hparams = content.session_start_info.hparams
        assert hparams["lr"].number_value == pytest.approx(trial.params["lr"])
        assert hparams["optimizer"].string_value == trial.params["optimizer"]
        assert hparams["state"].string_value == "complete"
        (final,) = events.Scalars("hparam/accuracy")
        assert final.value == pytest.approx(trial.value, rel=1e-6)


@pytest.fixture
def mlflow_server(tmp_path_factory):
    from _mlflow import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.stop()


def _trial_runs(server, study: str) -> dict[int, object]:
    client = server.client()
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return {int(r.data.tags["search.trial"]): r for r in runs if "search.trial" in r.data.tags}


@pytest.mark.slow
def test_mlflow_holds_a_run_per_trial_under_the_runs_own_with_each_epochs_figures(cli, workdir, mlflow_server):
    code, out, err = cli(
        "run", "--study", "ml", "--n-trials", 6, "--max-epochs", 3, "--mlflow", mlflow_server.uri,
        "--dataset", "synthetic", "--limit-train", 1000, "--confirm", "2,2", "--jobs", 2,  # two workers, one experiment
    )  # fmt: skip
    assert code == 0, err
    study = optuna.load_study(study_name="ml", storage=DB)
    runs = _trial_runs(mlflow_server, "ml")
    assert sorted(runs) == [t.number for t in study.trials]  # six, once each
    client = mlflow_server.client()
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    confirmation = study.user_attrs["search:confirmation"]
    assert parent.data.tags["search.pick"] == str(confirmation["ranking"][0]["trial"])
    assert parent.data.metrics["confirmed_accuracy"] == pytest.approx(confirmation["estimate"]["mean"])
    for trial in study.trials:
        run = runs[trial.number]
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")}
        assert history == pytest.approx(trial.intermediate_values, rel=1e-9)
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        assert run.data.tags["search.state"] == trial.state.name.lower()
        assert run.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}[trial.state.name]
        assert float(run.data.tags["search.seconds"]) == pytest.approx(trial.duration.total_seconds(), abs=1e-3)


@pytest.mark.parametrize(
    "said, short",
    [
        (
            "API request to http://h:1/api failed with exception HTTPConnectionPool(host='h', port=1): Max retries "
            "exceeded with url: /api (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
            "0x7f>: Failed to establish a new connection: [Errno 111] Connection refused'))",
            "[Errno 111] Connection refused",
        ),
        (  # a server that went away with the connection open: no errno, and the words come late in the text
            "API request to http://h:1/api failed with exception HTTPConnectionPool(host='h', port=1): Max retries "
            "exceeded with url: /api (Caused by ProtocolError('Connection aborted.', RemoteDisconnected('Remote end "
            "closed connection without response')))",
            "RemoteDisconnected: Remote end closed connection without response",
        ),
        ("RESOURCE_DOES_NOT_EXIST: no such run\nmore", "MlflowException: RESOURCE_DOES_NOT_EXIST: no such run"),
    ],
)
def test_an_unreachable_tracker_is_named_by_the_innermost_reason(said, short):
    from mlflow.exceptions import MlflowException

    from search.tracking._mlflow import reason

    assert reason(MlflowException(said)) == short


@pytest.mark.slow
def test_an_mlflow_server_that_goes_away_loses_that_windows_runs_and_the_study_goes_on(cli, workdir, mlflow_server):
    run = ["run", "--study", "ml", "--n-trials", 2, "--max-epochs", 2, "--mlflow", mlflow_server.uri, *QUICK]
    assert cli(*run)[0] == 0
    mlflow_server.stop()
    code, out, err = cli(*run)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "unreachable" in line]
    assert len(lines) == 1 and "Connection refused); the study goes on without it" in lines[0], err
    mlflow_server.start()  # the same port and database, as a restarted server
    assert cli(*run)[0] == 0
    study = optuna.load_study(study_name="ml", storage=DB)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
    assert sorted(_trial_runs(mlflow_server, "ml")) == [0, 1, 4, 5]  # the window's two trials are the tracker's loss


@pytest.mark.slow
@pytest.mark.parametrize("table", [False, True], ids=["images", "regression table"])
def test_search_train_logs_a_model_that_mlflow_loads_and_that_answers_as_the_saved_one(cli, workdir, table):
    import json

    import mlflow
    import numpy as np

    from objectives import Normalizer

    data = ["--dataset", "synthetic", "--limit-train", "1000"]
    if table:
        from sklearn.datasets import load_diabetes

        load_diabetes(as_frame=True).frame.to_csv(workdir / "d.csv", index=False)
        data = ["--data", "d.csv", "--target", "target", "--task", "regression"]
    assert cli("run", "--study", "t", "--n-trials", 2, "--max-epochs", 2, "--confirm", 0, *data)[0] == 0
    assert cli("export", "--study", "t", "--output", "best.yaml")[0] == 0
    code, out, err = cli(
        "train", "--config", "best.yaml", "--save-model", "m.pt", "--mlflow", "sqlite:///mlflow.db", "--json"
    )
    assert code == 0, err
    run = json.loads(out)["mlflow_run"]
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    served = mlflow.pyfunc.load_model(f"runs:/{run}/model")
    assert served.metadata.get_input_schema() is not None  # the signature `mlflow models serve` checks inputs by

    network, record = load_model(workdir / "m.pt")
    rows = np.random.default_rng(0).uniform(0, 255 if not table else 2, size=(5, int(np.prod(record["input_shape"]))))
    rows = rows.round().astype(np.float32)  # images: whole pixel values, as a file holds them
    answer = np.asarray(served.predict(rows))
    with torch.no_grad():
        if not table:  # scaled as the training loop scales pixels
            x = Normalizer(*record["pixels"], tuple(record["input_shape"]))(torch.from_numpy(rows).to(torch.uint8))
            want = torch.softmax(network(x), dim=1).numpy()
        else:  # a table's rows arrive encoded; the answer comes back in the target's units
            pre = record["preprocessing"]
            want = (network(torch.from_numpy(rows)).reshape(-1) * pre["target_std"] + pre["target_mean"]).numpy()
    np.testing.assert_allclose(answer.reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    logged = mlflow.get_run(run)
    assert logged.data.metrics[f"test_{record['metric']}"] == pytest.approx(record["test_value"])
    assert logged.info.experiment_id == mlflow.get_experiment_by_name("t").experiment_id


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_weights_kept_are_the_keep_best_after_every_trial_and_the_baselines(tmp_path, direction):
    """Trials end with values in a planned order (a new best, one that ties, one that just makes it, ...); after
    each, the store holds exactly the weights of the `keep` best so far and of the baseline."""
    from torch import nn

    from search.study._record import BASELINE_ATTR
    from search.tracking._checkpoints import ArtifactCheckpoints
    from search.tracking._store import open_artifact_store

    store = open_artifact_store(str(tmp_path / "a"))
    keeper = ArtifactCheckpoints(store, every=0, keep=2)
    study = optuna.create_study(direction=direction)
    study.enqueue_trial({}, user_attrs={BASELINE_ATTR: True})
    values = [0.92, 0.9, 0.7, 0.8, 0.8, 0.6, 0.95, 0.85, 0.1]  # the first is the baseline's: it counts apart
    sign = 1 if direction == "maximize" else -1
    for value in values:
        trial = study.ask()
        keeper.resume(trial)
        keeper.finished(trial, nn.Linear(2, 1), sign * value)
        study.tell(trial, sign * value)
        done = study.get_trials(deepcopy=False)
        ranked = sorted(done[1:], key=lambda t: -sign * t.value)  # the others, best first
        want = {0} | {t.number for t in ranked if sum(-sign * o.value < -sign * t.value for o in ranked) < 2}
        have = {
            t.number
            for t in done
            if t.user_attrs.get("weights") and (tmp_path / "a" / t.user_attrs["weights"]).exists()
        }
        assert have == want, (value, have, want)


def test_the_python_api_takes_the_same_tracking(workdir):
    import search

    search.tune(dataset="synthetic", n_trials=2, max_epochs=1, confirm=False, study="api",
                tracking=search.TrackingConfig(tensorboard="tb"))  # fmt: skip
    assert sorted(p.name for p in (workdir / "tb" / "api").iterdir()) == ["trial-00000", "trial-00001"]


def test_deleting_a_study_removes_its_kept_files_and_no_others(cli, workdir):
    for name in ("gone", "kept"):
        assert cli("run", "--study", name, "--n-trials", 3, "--max-epochs", 2, *QUICK)[0] == 0
    kept = {
        t.user_attrs["weights"]
        for t in optuna.load_study(study_name="kept", storage=DB).trials
        if "weights" in t.user_attrs
    }
    assert len(_files(workdir / ARTIFACTS)) == len(kept) + 3  # three of each (keep 5)
    code, out, err = cli("delete", "--study", "gone", "--yes")
    assert code == 0, err
    assert "and 3 kept files in studies/studies-artifacts" in out
    assert set(_files(workdir / ARTIFACTS)) == kept
