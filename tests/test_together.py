"""Trials trained together (search/study/_together.py, objectives/_members.py): asked, grouped, told."""

from __future__ import annotations

import signal

import optuna
import pytest
from _procs import open_study, search, trials_in, wait_for
from optuna.trial import TrialState

DB = "sqlite:///studies/studies.db"
# One shape for every trial (the units, layers, batch size and dropout pinned): trials of it train together.
ONE_SHAPE = "hidden_units: 16\nhidden_layers: 1\nbatch_size: 32\ndropout: 0.2\nepochs: {low: 1, high: 3}\n"
QUICK = ["--dataset", "synthetic", "--limit-train", 300, "--confirm", "0", "--pruner", "none"]


def _finished(name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=DB)
    return sorted((t for t in study.trials if t.state.is_finished()), key=lambda t: t.number)


@pytest.mark.parametrize("space", [ONE_SHAPE, "hidden_units: 16\nepochs: {low: 1, high: 3}\n"])
def test_trials_trained_together_end_as_they_would_alone(cli, workdir, space):
    """The same six trials (the baseline and five warm-started ones, queued with their values) trained together and
    one at a time: each one's reports and value agree, epoch by epoch, within float rounding. In one shape all six
    are one model; with their batch sizes and dropout sampled, each trains with those of its own shape."""
    (workdir / "one.yaml").write_text(space)
    args = [*QUICK, "--space", "one.yaml"]
    assert cli("run", "--study", "old", "--n-trials", 8, "--fuse", 1, *args)[0] == 0
    for name, fuse in (("together", 6), ("alone", 1)):
        code, out, err = cli("run", "--study", name, "--warm-start", "old", "--n-trials", 6, "--fuse", fuse, *args)
        assert code == 0, err
    together, alone = (
        [t for t in _finished(name) if t.user_attrs.get("baseline") or t.user_attrs.get("warm_start")]
        for name in ("together", "alone")
    )
    assert len(together) >= 4 and [t.params for t in together] == [t.params for t in alone]
    shapes = {(t.params.get("batch_size"), t.params.get("dropout")) for t in together}
    if space == ONE_SHAPE:
        assert len(shapes) == 1 and max(t.user_attrs.get("trained_with", 1) for t in together) == len(together)
    else:
        assert len(shapes) > 1
    assert all("trained_with" not in t.user_attrs for t in alone)
    for fused, single in zip(together, alone, strict=True):
        assert fused.state == single.state == TrialState.COMPLETE
        assert fused.value == pytest.approx(single.value, abs=1e-9)
        assert fused.intermediate_values == pytest.approx(single.intermediate_values, abs=1e-9)
        assert fused.user_attrs["val_loss"] == pytest.approx(single.user_attrs["val_loss"], rel=1e-5)


def test_a_group_shares_its_first_trials_shape_and_the_run_keeps_its_count(cli, workdir):
    """Sampled trials join the group of the trial before them with its shape (dropout, units, batch size), each
    sampling its own training settings; the run does exactly the trials asked for, none left running."""
    code, out, err = cli("run", "--study", "s", "--n-trials", 7, "--fuse", 3, "--seed", 3, *QUICK)
    assert code == 0, err
    trials = optuna.load_study(study_name="s", storage=DB).trials
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    shape_keys = ("hidden_units", "batch_size", "dropout")
    shapes = [tuple(t.params.get(k) for k in shape_keys) for t in sorted(trials, key=lambda t: t.number)]
    # The baseline's group takes six trials (twice three); the seventh samples a shape of its own.
    assert len(set(shapes[:6])) == 1 and shapes[6] != shapes[0]
    assert len({t.params["lr"] for t in trials}) == 7  # each trial samples its own learning rate
    assert max(t.user_attrs["trained_with"] for t in trials) == 3


def test_a_pruned_member_leaves_and_the_others_finish(cli, workdir):
    """With the median pruner, members that fall behind are pruned in their group; the others complete."""
    (workdir / "one.yaml").write_text(ONE_SHAPE.replace("epochs: {low: 1, high: 3}", "epochs: 4"))
    args = ["--dataset", "synthetic", "--limit-train", 300, "--confirm", "0", "--space", "one.yaml"]
    code, out, err = cli("run", "--study", "p", "--n-trials", 16, "--fuse", 4, "--pruner", "median", "--seed", 1, *args)
    assert code == 0, err
    trials = _finished("p")
    assert len(trials) == 16
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    assert all(t.user_attrs["epochs_run"] < 4 for t in pruned)
    assert all(t.user_attrs["epochs_run"] == 4 and len(t.intermediate_values) == 4 for t in complete)


def test_a_member_another_worker_failed_leaves_its_group_and_the_others_finish(cli, workdir, monkeypatch):
    """Another worker's stale-trial check fails three members of a group (a long pause): one before its parameters
    are stored, one before its first report, both refused, one after its last report, whose tell is. Each leaves
    with one line, its copy queued by that check runs later in the run, and the rest of the group trains on (seen
    in CI: the refusal ended the worker)."""
    from objectives._objective import Objective
    from search._optuna import study_storage, trial_id
    from search.storages._heartbeat import retry_callback

    real, begin = Objective.hear, Objective.begin

    def other_worker_fails(trial) -> None:  # as its stale check does: fail the trial, queue its parameters again
        other = optuna.load_study(study_name="t", storage=DB)  # on a connection of its own
        study_storage(other).set_trial_state_values(trial_id(trial), TrialState.FAIL)
        retry_callback()(other, study_storage(other).get_trial(trial_id(trial)))

    def paused(self, member, result):
        if member.trial.number == 1 and result.epoch == 1:
            other_worker_fails(member.trial)
        goes_on = real(self, member, result)
        if member.trial.number == 0 and result.epoch == member.config.epochs:
            other_worker_fails(member.trial)
        return goes_on

    def asked(self, trial, resumable=True):
        member = begin(self, trial, resumable)
        if trial.number == 2:
            other_worker_fails(trial)
        return member

    monkeypatch.setattr(Objective, "hear", paused)
    monkeypatch.setattr(Objective, "begin", asked)
    (workdir / "one.yaml").write_text(ONE_SHAPE.replace("epochs: {low: 1, high: 3}", "epochs: 2"))
    code, out, err = cli("run", "--study", "t", "--n-trials", 6, "--fuse", 3, *QUICK, "--space", "one.yaml")
    assert code == 0 and "Traceback" not in err, err
    assert err.count("was failed by another worker") == 3
    trials = optuna.load_study(study_name="t", storage=DB).trials
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [0, 1, 2]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    copies = {t.system_attrs.get("failed_trial"): t for t in trials if "failed_trial" in t.system_attrs}
    assert set(copies) == {0, 1, 2} and all(copies[n].params == trials[n].params for n in (0, 1))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 6 and max(t.user_attrs["trained_with"] for t in done) == 3
    assert not trials[1].intermediate_values and not trials[2].intermediate_values  # their reports were refused
    assert 1 in trials[0].intermediate_values  # its first report stored: it trained, then was failed before its tell


def _user_model(workdir, extra: str = "") -> None:
    (workdir / "net.py").write_text(
        "import math\n\nfrom torch import nn\n\n\n"
        "def build(input_shape, num_outputs, hidden=8):\n"
        "    return nn.Sequential(\n"
        f"        nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.GELU(), {extra}nn.Linear(hidden, num_outputs)\n"
        "    )\n"
    )


def test_a_users_model_trains_together_under_torch_func_as_it_would_alone(cli, workdir):
    _user_model(workdir)
    (workdir / "space.yaml").write_text("hidden: 12\nbatch_size: 32\nepochs: {low: 1, high: 3}\n")
    args = ["--model", "net.py:build", "--space", "space.yaml", *QUICK]
    assert cli("run", "--study", "old", "--n-trials", 6, "--fuse", 1, *args)[0] == 0
    for name, fuse in (("together", 5), ("alone", 1)):
        code, out, err = cli("run", "--study", name, "--warm-start", "old", "--n-trials", 5, "--fuse", fuse, *args)
        assert code == 0, err
        assert "one at a time" not in err
    together, alone = _finished("together"), _finished("alone")
    assert max(t.user_attrs.get("trained_with", 1) for t in together) == 5
    for fused, single in zip(together, alone, strict=True):
        assert fused.params == single.params
        assert fused.intermediate_values == pytest.approx(single.intermediate_values, abs=1e-9)


class _Recorded:
    """Checkpoints that remember what they were told (`objectives.Checkpoints`), snapshots taken as offered."""

    def __init__(self) -> None:
        self.offered, self.ended, self.cut = [], [], []

    def resume(self, trial):
        return None

    def offer(self, trial, epoch, seed, snapshot):
        self.offered.append((trial.number, epoch, snapshot()["epoch"]))

    def finished(self, trial, model, value):
        self.ended.append(trial.number)

    def dropped(self, trial):
        self.cut.append(trial.number)


class _PruneOne(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number == 1 and max(trial.intermediate_values) >= 2


def test_each_member_tells_its_checkpoints_how_it_ended():
    """Every epoch offered with its own state; the pruned member's checkpoint dropped, the others' finished."""
    from objectives import DataConfig, Objective, SearchSpace
    from objectives._members import Together

    space = SearchSpace.from_mapping({"hidden_units": 16, "epochs": 3, "batch_size": 32, "dropout": 0.0})
    objective = Objective(space, DataConfig(dataset="synthetic", limit_train=200), device="cpu")
    objective.checkpoints = recorded = _Recorded()
    study = optuna.create_study(direction="maximize", pruner=_PruneOne())
    together = Together(objective)
    for _ in range(3):
        together.join(objective.begin(study.ask()))
    ended = {}
    while together.members:
        ended.update({member.trial.number: outcome for member, outcome in together.epoch()})
    assert isinstance(ended[1], optuna.TrialPruned) and all(isinstance(ended[n], float) for n in (0, 2))
    assert recorded.cut == [1] and sorted(recorded.ended) == [0, 2]
    assert sorted(recorded.offered) == [(0, 1, 1), (0, 2, 2), (1, 1, 1), (2, 1, 1), (2, 2, 2)]


def test_a_model_that_cannot_fuse_runs_one_trial_at_a_time_with_one_line(cli, workdir):
    _user_model(workdir, extra="nn.Dropout(0.5), ")
    code, out, err = cli("run", "--study", "c", "--model", "net.py:build", "--n-trials", 2, "--fuse", 4, *QUICK)
    assert code == 0, err
    assert err.count("trials train one at a time: torch.func cannot batch the model") == 1
    assert all("trained_with" not in t.user_attrs for t in _finished("c"))


def test_fuse_must_be_a_positive_count(cli):
    code, _, err = cli("run", "--study", "x", "--fuse", 0, *QUICK)
    assert code == 2 or code == 1
    assert "--fuse is 0, but must be an integer >= 1" in err and "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_an_interrupt_fails_every_trial_of_the_group_and_queues_each_again(tmp_path, sig):
    """A Ctrl-C while a group trains: each of its trials is failed and queued again, and the line says how many."""
    url = f"sqlite:///{tmp_path}/s.db"
    (tmp_path / "long.yaml").write_text("hidden_units: 16\nbatch_size: 64\nepochs: 400\ndropout: 0\n")
    args = ["--dataset", "synthetic", "--limit-train", 2000, "--space", str(tmp_path / "long.yaml")]
    worker = search(
        tmp_path, "run", "--study", "i", "--storage", url, "--n-trials", 6, "--fuse", 3, "--jobs", 1, *args, popen={}
    )
    wait_for(lambda: len([t for t in trials_in(url, "i", TrialState.RUNNING) if t.params]) == 3)
    worker.send_signal(sig)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 130, err
    assert "the 3 running trials are marked failed" in err and "Traceback" not in err
    trials = open_study(url, "i").get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(failed) == 3 and len(waiting) == 3
    assert sorted(t.system_attrs["failed_trial"] for t in waiting) == sorted(t.number for t in failed)
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_a_short_fused_run_starts_fewer_workers_unless_told_how_many(cli, workdir):
    """Eight trials in groups of four are one worker's two groups: a second process would cost more to start than
    it gives. The number the user sets stands."""
    for study, extra, workers in (("auto", [], 1), ("told", ["--jobs", 2], 2)):
        code, out, err = cli("run", "--study", study, "--n-trials", 8, "--fuse", 4, *extra, *QUICK)
        assert code == 0, err
        trials = _finished(study)
        assert len(trials) == 8
        assert {t.user_attrs["run"]["jobs"] for t in trials} == {workers}


def test_a_confirmations_retrains_on_one_resample_train_together_as_they_would_alone(cli, workdir):
    """The same leaders confirmed with --fuse 4 and --fuse 1: the retrains of one resample (one shape here) train
    as one model, and every retrain ends with the value it has alone."""
    (workdir / "one.yaml").write_text(ONE_SHAPE)
    args = ["--dataset", "synthetic", "--limit-train", 300, "--pruner", "none", "--space", "one.yaml"]
    assert cli("run", "--study", "old", "--n-trials", 6, "--fuse", 1, "--confirm", 0, *args)[0] == 0
    for name, fuse in (("together", 4), ("alone", 1)):
        code, out, err = cli(
            "run", "--study", name, "--warm-start", "old", "--n-trials", 6, "--fuse", fuse, "--confirm", "3,2", *args
        )
        assert code == 0, err

    def retrains(name: str) -> dict:
        study = optuna.load_study(study_name=f"{name}:confirm", storage=DB)
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        return {(t.user_attrs["source_trial"], t.user_attrs["resample"]): t for t in done}

    together, alone = retrains("together"), retrains("alone")
    assert together.keys() == alone.keys() and len(together) >= 6
    assert max(t.user_attrs.get("trained_with", 1) for t in together.values()) > 1
    for key, trial in together.items():
        assert trial.value == pytest.approx(alone[key].value, abs=1e-9)
