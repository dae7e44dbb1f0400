import optuna
import pytest

from objectives import DataConfig, Objective, ObjectiveError, SearchSpace, resolve_device

SMALL = {"hidden_units": 32, "epochs": 3, "batch_size": 32}


def make_objective(root, **space):
    return Objective(SearchSpace.from_mapping({**SMALL, **space}), DataConfig(data_dir=str(root)), device="cpu")


def test_trial_reports_every_epoch_and_records_facts(fashion_root):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(make_objective(fashion_root, optimizer="adam", lr=1e-3), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3]
    assert trial.value == trial.intermediate_values[3] and trial.value > 0.8
    attrs = trial.user_attrs
    for key in ("seconds", "samples_per_second", "epochs_run", "val_loss", "n_params", "device", "seed", "config"):
        assert key in attrs, key
    assert (
        attrs["epochs_run"] == 3
        and attrs["device"] == "cpu"
        and attrs["n_params"] == 784 * 32 + 32 + 32 * 32 + 32 + 330
    )
    assert attrs["config"]["optimizer"] == "adam" and attrs["config"]["model"]["params"]["hidden_units"] == 32


def test_pruner_stops_weak_trial(fashion_root):
    # A threshold no trial reaches at epoch 1: every trial is pruned there.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    study.optimize(make_objective(fashion_root), n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.user_attrs["epochs_run"] == 1 and list(t.intermediate_values) == [1] for t in study.trials)


def test_diverged_trial_completes_with_reason_and_study_goes_on(fashion_root):
    study = optuna.create_study(direction="maximize")
    objective = make_objective(
        fashion_root, optimizer="momentum", momentum=0.9, lr={"choices": [1e4, 0.05]}, batch_size=16
    )
    study.enqueue_trial({"lr": 1e4})
    study.enqueue_trial({"lr": 0.05})
    study.optimize(objective, n_trials=2)
    diverged, healthy = study.trials
    assert diverged.state == optuna.trial.TrialState.COMPLETE and "diverged" in diverged.user_attrs
    assert diverged.value < 0.2 and diverged.user_attrs["epochs_run"] == 1
    assert healthy.value > 0.8 and "diverged" not in healthy.user_attrs


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ObjectiveError, match="device is 'tpu'"):
        resolve_device("tpu")
