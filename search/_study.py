"""Study orchestration: validate everything, open the storage, create or continue a study, optimise."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import EpochResult, Objective, SearchSpace, Splits

from search._clock import attach as attach_clock
from search._config import RunConfig
from search._errors import SearchError, is_storage_error
from search._heartbeat import retry_callback
from search._optuna import study_id, study_storage, trial_id
from search._record import BASELINE_ATTR, METRIC, STUDY_ATTR, RunSummary, count_states
from search._signals import INTERRUPTS
from search._pruners import make_pruner
from search._samplers import make_sampler
from search._storage import open_storage, redact, resolve_storage_url, scrub, storage_exists, storage_kind

# How long a worker waits for a storage that went away (a database restart) before giving up.
RECONNECT_SECONDS = float(os.environ.get("SEARCH_RECONNECT_SECONDS", "120"))
_POLL_SECONDS = 2.0  # between looks at a storage that went away


def study_metadata(config: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """How a study is made: what must stay the same for its trials to be comparable."""
    return {
        "dataset": config.data.dataset,
        "validation_fraction": config.data.validation_fraction,
        "seed": config.seed,
        "limit_train": config.data.limit_train,
        "stratified": config.data.stratify,
        "space": space.to_dict(),
        **({"table": table_record(config.data)} if config.data.dataset == "table" else {}),
    }


def table_record(data) -> dict[str, Any]:
    """What a table study was made from: the file and its content hash, the target, the test split."""
    from objectives._table import file_hash

    def digest(path: str | None) -> str | None:
        try:
            return file_hash(path) if path else None
        except OSError as exc:
            raise SearchError(f"cannot read {path}: {exc.strerror or exc}") from exc

    return {"file": data.data_file, "sha256": digest(data.data_file), "target": data.target,
            "test_fraction": data.test_fraction, "test_file": data.test_file, "test_sha256": digest(data.test_file),
            "drop": list(data.drop), "fill_missing": data.fill_missing}


def load_space(config: RunConfig, stored: dict[str, Any] | None = None) -> SearchSpace:
    """The space the run asks for; a continued study's own when the run names none."""
    if stored is not None and not ({"space", "max_epochs"} & config.given):
        return SearchSpace.from_mapping(stored)
    if config.space is None:
        return SearchSpace.from_mapping({}, max_epochs=config.max_epochs)
    return SearchSpace.from_file(config.space, max_epochs=config.max_epochs)


# The flag that sets each recorded key, for messages.
_FLAGS = {"dataset": "--dataset", "validation_fraction": "--validation-fraction", "seed": "--seed", "limit_train": "--limit-train"}


def continue_config(config: RunConfig, name: str, made: dict[str, Any]) -> RunConfig:
    """``config`` with what the user left out taken from the study it continues.

    A study's trials are comparable only on one data set, split and space, so a flag the
    user gave that differs from the study's record is refused, naming both values.
    """
    data = dict(dataset=config.data.dataset, validation_fraction=config.data.validation_fraction,
                seed=config.seed, limit_train=config.data.limit_train)
    for key, flag in _FLAGS.items():
        if key not in made:
            continue
        if key in config.given and made[key] != data[key]:
            raise SearchError(
                f"study {name!r} was made with {flag} {_show(made[key])}, but this run asks for {flag} {_show(data[key])}; "
                f"leave {flag} out to continue it, or choose another --study name"
            )
        data[key] = made[key]
    seed = data.pop("seed")
    # A study made before stratified splits keeps its plain random split.
    stratify = bool(made.get("stratified", False))
    data.update(_continue_table(config, name, made.get("table")))
    return dataclasses.replace(config, seed=seed, data=dataclasses.replace(config.data, seed=seed, stratify=stratify, **data))


_TABLE_FLAGS = {"target": "--target", "test_fraction": "--test-fraction", "test_file": "--test-data",
                "drop": "--drop", "fill_missing": "--fill-missing"}


def _continue_table(config: RunConfig, name: str, made: dict[str, Any] | None) -> dict[str, Any]:
    """A table study's file and options from its record; a changed file is refused, naming what changed."""
    if not made:
        return {}
    from objectives._table import file_hash

    given = config.given
    out: dict[str, Any] = {"data_file": config.data.data_file if "data_file" in given else made["file"]}
    for key, flag in _TABLE_FLAGS.items():
        asked = list(getattr(config.data, key)) if key == "drop" else getattr(config.data, key)
        if key in given and asked != made.get(key):
            raise SearchError(f"study {name!r} was made with {flag} {_show(made.get(key))}, but this run asks for "
                              f"{flag} {_show(asked)}; leave {flag} out to continue it, or choose another --study name")
        out[key] = tuple(made.get(key) or ()) if key == "drop" else made.get(key)
    for path_key, hash_key, flag in (("data_file", "sha256", "--data"), ("test_file", "test_sha256", "--test-data")):
        path = out[path_key]
        if not path:
            continue
        try:
            now = file_hash(path)
        except OSError:
            raise SearchError(f"study {name!r} was made from {flag} {path}, which is not there now; give its path with {flag}") from None
        if now != made.get(hash_key):
            raise SearchError(f"{flag} {path} has changed since study {name!r} was made (sha256 {str(made.get(hash_key))[:12]} "
                              f"then, {now[:12]} now); its trials would not be comparable: restore the file, or choose another --study name")
    return out


def _show(value: Any) -> str:
    return "(all)" if value is None else str(value)


def _space_differences(stored: dict[str, Any], asked: dict[str, Any]) -> str:
    keys = sorted(k for k in set(stored) | set(asked) if stored.get(k) != asked.get(k))
    return "; ".join(f"{k}: the study has {_brief(stored.get(k))}, this run {_brief(asked.get(k))}" for k in keys)


def _brief(spec: Any) -> str:
    if isinstance(spec, dict):
        if "choices" in spec:
            return str(spec["choices"])
        text = f"{spec.get('low')}..{spec.get('high')}"
        return text + (" log" if spec.get("log") else "")
    return repr(spec)


@dataclass
class Prepared:
    """What a run works with, all checked before the first write."""

    config: RunConfig  # with a continued study's record filled in
    space: SearchSpace
    objective: Objective
    url: str
    study: optuna.Study
    created: bool = False  # this process made the study (of workers starting at once, exactly one does)
    storage: Any = None  # the storage opened (under Optuna's cache, for RDB storages)


def prepare(config: RunConfig, on_epoch=None, splits: Splits | None = None, run_attrs: dict | None = None) -> Prepared:
    """Everything a run needs, checked before the first write, so a refused run changes nothing."""
    url = resolve_storage_url(config.storage)
    if config.jobs > 1 and storage_kind(url) == "sqlite":
        raise SearchError(
            f"--jobs {config.jobs} needs a storage that several processes can share, and SQLite is not "
            f"one; use --storage journal:///studies/{config.study}.log (this machine) "
            "or postgresql://... / mysql+pymysql://... / redis://... (many machines)"
        )
    # A storage file not made yet holds no study, and a refused run must not create it.
    storage = open_storage(url, heartbeat=config.heartbeat or None) if storage_exists(url) else None
    made = _recorded(storage, config.study) if storage is not None else None
    if made is not None:
        config = continue_config(config, config.study, made)
    space = load_space(config, made.get("space") if made else None)
    metadata = study_metadata(config, space)
    if made is not None and made.get("space") != metadata["space"]:
        raise SearchError(
            f"study {config.study!r} was made with another search space ({_space_differences(made['space'], metadata['space'])}); "
            "leave --space and --max-epochs out to continue it, or choose another --study name"
        )
    objective = Objective(space, config.data, config.device, config.seed, on_epoch=on_epoch, splits=splits,
                          stop=INTERRUPTS.stop_requested, run_attrs=run_attrs)
    encoder = objective.splits.encoder
    if "table" in metadata and encoder is not None:  # export and the report name them
        metadata["table"]["columns"] = {"numeric": encoder["numeric"], "text": encoder["text"]}
    if storage is None:
        storage = open_storage(url, heartbeat=config.heartbeat or None)
    study, created = _open_study(storage, config, metadata)
    return Prepared(config, space, objective, url, study, created, storage)


def _recorded(storage, name: str) -> dict[str, Any] | None:
    """How the study called ``name`` was made, or None when there is no such study yet."""
    try:
        sid = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    made = _wait_for_record(storage, sid)
    if made is None:
        raise SearchError(f"study {name!r} was not made by `search run`; choose another --study name")
    return made


# How long a worker that lost the race to create a study waits for the winner to record it.
RECORD_WAIT_SECONDS = 10.0


def _is_record(made: Any) -> bool:
    """Whether a study attribute is the record `search run` writes when it makes a study."""
    return isinstance(made, dict) and isinstance(made.get("space"), dict)


def _wait_for_record(storage, sid: int) -> dict[str, Any] | None:
    """The study's record; while the study is empty and has none, its maker is still writing it."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        made = storage.get_study_user_attrs(sid).get(STUDY_ATTR)
        if _is_record(made):
            return made
        # A study with trials, or one that stays bare, was made by something else.
        if storage.get_n_trials(sid) or time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def new_run_attrs(config: RunConfig) -> dict[str, Any]:
    """What every trial of this run records about it (the ``run`` user attribute)."""
    return {"id": uuid.uuid4().hex[:12], "sampler": config.sampler, "pruner": config.pruner, "host": socket.gethostname()}


def run_study(
    config: RunConfig,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, EpochResult], None] | None = None,
    worker: int = 0,
    splits: Splits | None = None,
    run_attrs: dict[str, Any] | None = None,
) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study`` in this process, creating it if new."""
    run = prepare(config, on_epoch, splits, run_attrs or new_run_attrs(config))
    config, study, url, objective = run.config, run.study, run.url, run.objective

    study.sampler = make_sampler(config.sampler, sampler_seed(config.seed, len(study.get_trials(deepcopy=False)),
                                                              worker, None if run.created else objective.run_attrs["id"]))
    study.pruner = make_pruner(config.pruner, run.space.max_epochs)
    # Recorded on every trial: what actually sampled and pruned it, not only the names asked for.
    objective.run_attrs = {**(objective.run_attrs or {}), "sampler_class": type(study.sampler).__name__,
                           "pruner_class": type(study.pruner).__name__}

    finished: list[FrozenTrial] = []
    running: dict[str, int | None] = {"trial_id": None}

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        running["trial_id"] = None
        if on_trial is not None:
            on_trial(study, trial)
        INTERRUPTS.check()  # a Ctrl-C during the trial's last steps or its tell stops here

    def tracked(trial: optuna.Trial) -> float:
        running["trial_id"] = trial_id(trial)
        try:
            return objective(trial)
        except RuntimeError as exc:  # the trial fails alone; its reason goes on record
            trial.set_user_attr("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
            raise

    clock = attach_clock(study_storage(study))
    started, before = time.perf_counter(), clock.time(0.0)
    with INTERRUPTS.deferred():
        while True:
            INTERRUPTS.check()
            left = None if config.n_trials is None else config.n_trials - len(finished)
            time_left = None if config.timeout is None else config.timeout - (time.perf_counter() - started)
            if left == 0 or (time_left is not None and time_left <= 0):
                break
            try:
                _optimize(study, tracked, left, time_left, collect)
                break
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                _wait_for_storage(study, url, exc)
                _fail_own_trial(study, running["trial_id"], "the storage connection was lost")
                running["trial_id"] = None
        wall = time.perf_counter() - started
        summary = summarize_safely(study, url, wall, finished, objective.splits.train_x.shape[0])
        return dataclasses.replace(summary, storage_time=clock.time(wall, since=before))


def sampler_seed(seed: int, trials: int, worker: int, run_id: str | None) -> int:
    """The sampler's seed: ``seed`` moved on by how far the study has come, and by worker.

    A fresh study with the same seed is reproducible, and a continued one does not replay
    the samples its first run drew. A run that joins a study another process made
    (``run_id`` given) may start beside others that see the same number of trials at the
    same moment (hosts started together, each with its worker 0): its run id keeps their
    samples apart.
    """
    salt = int(run_id, 16) % 1_000_003 if run_id else 0
    return (seed + trials + 7919 * worker + 104_729 * salt) % 2**32


def summarize_safely(study: optuna.Study, url: str, wall_seconds: float, finished: list[FrozenTrial], train_samples: int | None = None) -> RunSummary:
    """`summarize`, waiting for a storage that went away at the very end (the trials are stored)."""
    while True:
        try:
            return summarize(study, url, wall_seconds, finished, train_samples)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            _wait_for_storage(study, url, exc)


def _optimize(study, objective, n_trials, timeout, callback) -> None:
    with warnings.catch_warnings():
        # Optuna warns per trial for each fixed categorical it cannot model; noise to a user.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            callbacks=[callback],
            catch=(RuntimeError,),  # a failing trial (out of memory, say) fails alone
            gc_after_trial=False,
        )


def _wait_for_storage(study: optuna.Study, url: str, exc: BaseException) -> None:
    """Wait for the storage to answer again; a `SearchError` if it does not in time."""
    print(f"search: lost the storage {redact(url)} ({scrub(str(exc), url)}); reconnecting...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        INTERRUPTS.check()
        try:
            study.get_trials(deepcopy=False)
            print("search: the storage is back; the study goes on", file=sys.stderr, flush=True)
            return
        except Exception as again:  # noqa: BLE001 - any failure here means "not yet"
            if not is_storage_error(again):
                raise
    raise SearchError(
        f"the storage {redact(url)} has not answered for {RECONNECT_SECONDS:.0f}s; "
        "the finished trials are stored; continue the study when it is back"
    ) from exc


def _fail_own_trial(study: optuna.Study, trial_id: int | None, reason: str) -> None:
    """Fail the trial this worker was running when the storage went away, and queue it again."""
    if trial_id is None:
        return
    storage = study_storage(study)
    trial = storage.get_trial(trial_id)
    if trial.state != TrialState.RUNNING:
        return  # Optuna managed to record it, or a heartbeat check got there first
    try:
        storage.set_trial_user_attr(trial_id, "error", reason)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # another worker's stale-trial check failed it (and re-queued it) a moment ago
    retry_callback()(study, storage.get_trial(trial_id))


def _open_study(storage, config: RunConfig, metadata: dict[str, Any]) -> tuple[optuna.Study, bool]:
    """Load the study, or create it (then True); of many workers starting at once, exactly one creates it."""
    try:
        study = optuna.create_study(study_name=config.study, storage=storage, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:  # it exists, or another worker made it a moment ago
        study = optuna.load_study(study_name=config.study, storage=storage)
        _wait_for_record(storage, study_id(study))  # a study without one is refused just below
        check_compatible(config.study, study, metadata)
        return study, False
    # The storage let this process alone create it: only it writes the record and the baseline.
    study.set_user_attr(STUDY_ATTR, metadata)
    baseline = SearchSpace.from_mapping(metadata["space"]).baseline()
    if baseline is not None:  # the first trial: a known-good default the confirmation compares against
        study.enqueue_trial(baseline, user_attrs={BASELINE_ATTR: True})
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([METRIC])  # optuna-dashboard shows this instead of "Objective 0"
    return study, True


def check_compatible(name: str, study: optuna.Study, metadata: dict[str, Any]) -> None:
    """Refuse to join a study made with another data set, split or space (a worker that lost a race)."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if not _is_record(stored) or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {name!r} was not made by `search run`; choose another --study name")
    for key, flag in _FLAGS.items():
        if stored.get(key) != metadata[key]:
            raise SearchError(
                f"study {name!r} was made with {flag} {_show(stored.get(key))}, but this run asks for "
                f"{flag} {_show(metadata[key])}; choose another --study name"
            )
    if stored.get("table") != metadata.get("table"):
        raise SearchError(f"study {name!r} was made from another table (file, target or test split); choose another --study name")
    if bool(stored.get("stratified", False)) != metadata["stratified"]:
        raise SearchError(f"study {name!r} was made with another kind of validation split; choose another --study name")
    if stored.get("space") != metadata["space"]:
        raise SearchError(
            f"study {name!r} was made with another search space "
            f"({_space_differences(stored.get('space') or {}, metadata['space'])}); choose another --study name"
        )


def summarize(study: optuna.Study, url: str, wall_seconds: float, finished: list[FrozenTrial], train_samples: int | None = None) -> RunSummary:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return RunSummary(
        study=study.study_name,
        storage=redact(url),
        wall_seconds=wall_seconds,
        run_states=count_states(finished),
        study_states=count_states(trials),
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        train_samples=train_samples,
    )


@dataclass(frozen=True)
class ConfirmContext:
    """What a confirmation works on, read from the searched study."""

    config: RunConfig  # the study's own data set, split and seed
    url: str
    study: optuna.Study
    confirm: optuna.Study
    space: SearchSpace
    top: list[FrozenTrial]


def open_confirmation(config: RunConfig, candidates: int) -> ConfirmContext:
    """The searched study (it must exist), its leaders and the study of their retrains."""
    from search._confirm import confirmation_study, leaders

    url = resolve_storage_url(config.storage)
    if not storage_exists(url):
        raise SearchError(f"no study {config.study!r} in {redact(url)}; run it first with: search run --study {config.study}")
    storage = open_storage(url, heartbeat=config.heartbeat or None)
    made = _recorded(storage, config.study)
    if made is None:
        raise SearchError(f"no study {config.study!r} in {redact(url)}; `search studies` lists them")
    config = continue_config(dataclasses.replace(config, explicit=frozenset()), config.study, made)
    study = optuna.load_study(study_name=config.study, storage=storage)
    top = leaders(study, candidates)
    if not top:
        raise SearchError(f"study {config.study!r} has no completed trial to confirm yet")
    confirm = confirmation_study(storage, config.study)
    return ConfirmContext(config, url, study, confirm, SearchSpace.from_mapping(made["space"]), top)


def drain_confirmation(config: RunConfig, on_trial=None, on_epoch=None, context: ConfirmContext | None = None) -> int:
    """Run queued retrains until none is left; how many this process ran."""
    from search._confirm import DEFAULT_CANDIDATES, Retrain

    ctx = context or open_confirmation(config, DEFAULT_CANDIDATES)
    retrain = Retrain(ctx.space, ctx.config.data, config.device, ctx.config.seed, on_epoch, INTERRUPTS.stop_requested)
    finished: list[FrozenTrial] = []

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        if on_trial is not None:
            on_trial(study, trial)
        INTERRUPTS.check()
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.stop()  # the queue is empty: asking again would sample a fresh, unwanted trial

    running: dict[str, int | None] = {"trial_id": None}

    def tracked(trial: optuna.Trial) -> float:
        running["trial_id"] = trial_id(trial)
        return retrain(trial)

    with INTERRUPTS.deferred():
        while waiting := len(ctx.confirm.get_trials(deepcopy=False, states=(TrialState.WAITING,))):
            try:
                _optimize(ctx.confirm, tracked, waiting, None, collect)
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                _wait_for_storage(ctx.confirm, ctx.url, exc)
                _fail_own_trial(ctx.confirm, running["trial_id"], "the storage connection was lost")
            running["trial_id"] = None
    return len(finished)


def run_confirmation(config: RunConfig, spec, on_trial=None, on_epoch=None) -> dict[str, Any]:
    """Confirm the leaders of ``config.study`` round by round (racing between rounds); the stored summary.

    With ``config.jobs > 1`` each round's retrains are shared by that many worker processes.
    Resumable: retrains already finished (by this or an earlier, killed run) are not redone.
    """
    from search._confirm import enqueue_round, replay, results, store_summary

    ctx = open_confirmation(config, spec.candidates)
    for resample in range(spec.resamples):
        candidates = results(ctx.confirm, ctx.top)
        replay(candidates, resample)
        if not enqueue_round(ctx.confirm, candidates, ctx.top, resample):
            continue
        if config.jobs > 1:
            from search._workers import confirm_worker_main, run_processes

            share = dataclasses.replace(ctx.config, device=config.device, jobs=1, explicit=frozenset())
            run_processes(config, confirm_worker_main, [(share, index) for index in range(config.jobs)])
        else:
            drain_confirmation(config, on_trial, on_epoch, ctx)
    candidates = results(ctx.confirm, ctx.top)
    replay(candidates, spec.resamples)
    return _store_safely(ctx, spec, candidates, store_summary)


def _store_safely(ctx: ConfirmContext, spec, candidates, store) -> dict[str, Any]:
    while True:
        try:
            return store(ctx.study, spec, candidates)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            _wait_for_storage(ctx.study, ctx.url, exc)
