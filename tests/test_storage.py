import os

import pytest

from search import SearchError, open_storage, redact, resolve_storage_url
from search.storages import storage_kind


def test_default_and_environment(monkeypatch):
    monkeypatch.delenv("SEARCH_STORAGE", raising=False)
    assert resolve_storage_url(None) == "sqlite:///studies/studies.db"
    monkeypatch.setenv("SEARCH_STORAGE", "sqlite:///elsewhere.db")
    assert resolve_storage_url(None) == "sqlite:///elsewhere.db"
    assert resolve_storage_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://me:s3cret@db:5432/optuna", "postgresql://me:***@db:5432/optuna"),
        ("mysql+pymysql://root:pw@127.0.0.1/test", "mysql+pymysql://root:***@127.0.0.1/test"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("sqlite:///studies/studies.db", "sqlite:///studies/studies.db"),
        ("postgresql://me:s3cret@db:notaport/x", "postgresql://me:***@db:notaport/x"),
        ("--storage=postgresql://root:s3cret@host/db", "--storage=postgresql://root:***@host/db"),
        ("postgresql://me@db/x?password=s3cret&sslmode=require", "postgresql://me@db/x?password=***&sslmode=require"),
        ("postgresql:///x?host=db&user=me&password=s3cret", "postgresql:///x?host=db&user=me&password=***"),
        ("mysql+pymysql://root@h/t?passwd=s3cret", "mysql+pymysql://root@h/t?passwd=***"),
        ("postgresql://me@db/x?sslpassword=s3cret", "postgresql://me@db/x?sslpassword=***"),
        ("rediss://user:s3cret@cache:6380/0", "rediss://user:***@cache:6380/0"),
        ("redis://cache:6379/0?password=s3cret", "redis://cache:6379/0?password=***"),
        ("unix://:s3cret@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
        ("postgresql://me:a/b?c@db/x", "postgresql://me:***@db/x"),
    ],
)
def test_passwords_are_redacted(url, shown):
    assert redact(url) == shown
    assert "s3cret" not in redact(url)


def test_driver_messages_are_scrubbed():
    from search.storages import scrub

    url = "postgresql://me:p%40ss@db/x?password=other"
    message = "(psycopg.OperationalError) password p@ss and other and p%40ss rejected\nmore"
    assert scrub(message, url) == "password *** and *** and *** rejected"


def test_continue_lines_hide_passwords_in_every_form():
    from search.cli._command_lines import command_line

    line = command_line(["run", "--storage=postgresql://u:s3cret@h/d", "--storage", "redis://h/0?password=s3cret"])
    assert "s3cret" not in line and line.count("***") == 2


def test_unknown_scheme_is_refused():
    with pytest.raises(SearchError, match="is not a storage URL"):
        storage_kind("studies.db")
    with pytest.raises(SearchError, match="is not a storage URL"):
        storage_kind("mongodb://x")


def test_sqlite_folder_is_created(tmp_path):
    open_storage(f"sqlite:///{tmp_path}/deep/er/s.db")
    assert (tmp_path / "deep" / "er" / "s.db").exists()


def test_missing_sqlite_is_not_created_when_asked_not_to(tmp_path):
    with pytest.raises(SearchError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_unwritable_sqlite_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SearchError, match="cannot create"):
        open_storage(f"sqlite:///{blocker}/sub/s.db")


def test_unreachable_database_is_one_line_without_password():
    with pytest.raises(SearchError) as err:
        open_storage("postgresql://root:topsecret@127.0.0.1:1/test")
    message = str(err.value)
    assert "cannot open storage postgresql://root:***@127.0.0.1:1/test" in message
    assert "topsecret" not in message and "\n" not in message


def test_journal_file(tmp_path):
    import optuna

    storage = open_storage(f"journal:///{tmp_path}/j/study.log")
    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(f"journal:///{tmp_path}/j/study.log", create=False))
    assert [t.state.name for t in again.trials] == ["COMPLETE", "COMPLETE"]
    assert [t.params for t in again.trials] == [
        t.params for t in optuna.load_study(study_name="s", storage=storage).trials
    ]


def test_journal_urls_follow_sqlites_convention(tmp_path, monkeypatch):
    """Three slashes: relative to the working directory; four: absolute."""
    monkeypatch.chdir(tmp_path)
    open_storage("journal:///studies/rel.log").get_all_studies()
    assert (tmp_path / "studies" / "rel.log").parent.is_dir()
    open_storage(f"journal:///{tmp_path}/abs/a.log")  # f-string gives four slashes: /tmp/...
    assert (tmp_path / "abs").is_dir()
    with pytest.raises(SearchError, match="journal:///relative/path.log"):
        open_storage("journal://studies/x.log")


def test_corrupt_files_are_one_clear_error(tmp_path):
    (tmp_path / "bad.log").write_text("garbage{\n")
    with pytest.raises(SearchError, match="is not an Optuna journal \\(line 1 is not JSON\\)"):
        open_storage(f"journal:///{tmp_path}/bad.log")
    (tmp_path / "bad.db").write_text("not sqlite")
    with pytest.raises(SearchError, match="file is not a database"):
        open_storage(f"sqlite:///{tmp_path}/bad.db")


def test_unreachable_redis():
    with pytest.raises(SearchError, match="cannot open storage redis://127.0.0.1:1/0"):
        open_storage("redis://127.0.0.1:1/0")


def test_missing_driver_names_a_pip_line_that_works(monkeypatch):
    """The hint names the driver's own package, as pyproject's db extra does."""
    import sys
    import tomllib
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "pymysql", None)  # "not installed"
    with pytest.raises(SearchError) as err:
        open_storage("mysql+pymysql://root@127.0.0.1:3306/test")
    assert "install it with: pip install 'pymysql'" in str(err.value)
    extra = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["db"]
    assert any(req.lower().startswith("pymysql") for req in extra)


def test_verbose_keeps_the_cause(cli):
    code, _, err = cli("studies", "--storage", "postgresql://root:topsecret@127.0.0.1:1/test")
    assert code == 1 and len(err.strip().splitlines()) == 1
    code, _, err = cli("studies", "--storage", "postgresql://root:topsecret@127.0.0.1:1/test", "--verbose")
    assert code == 1 and "Traceback" in err and "OperationalError" in err
    assert err.strip().splitlines()[-1].startswith("search: error: cannot open storage")


def test_network_drivers_get_timeouts():
    from search.storages._open import NETWORK_TIMEOUTS, _network_args, _redis_url

    pg = _network_args("postgresql://u@h/d", "postgresql")
    assert pg["connect_timeout"] == NETWORK_TIMEOUTS["connect"] and pg["keepalives"] == 1
    assert pg["tcp_user_timeout"] == NETWORK_TIMEOUTS["read"] * 1000 and "statement_timeout" in pg["options"]
    assert f"idle_in_transaction_session_timeout={NETWORK_TIMEOUTS['read'] * 1000}" in pg["options"]
    assert "connect_timeout" not in _network_args("postgresql://u@h/d?connect_timeout=3", "postgresql")  # the URL wins
    assert _network_args("mysql+pymysql://u@h/d", "mysql")["read_timeout"] == NETWORK_TIMEOUTS["read"]
    assert "socket_timeout=60" in _redis_url("redis://h:6379/0") and "socket_timeout=5" in _redis_url(
        "redis://h/0?socket_timeout=5"
    )


@pytest.mark.parametrize(
    "url, plain, prefix",
    [
        ("unix:///run/redis.sock?db=0&prefix=s1", "unix:///run/redis.sock?db=0", "s1"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0", ""),
        ("redis://:pw@h:6379/2?prefix=a", "redis://:pw@h:6379/2", "a"),
    ],
)
def test_redis_urls_keep_their_form_for_redis_py(url, plain, prefix):
    from redis.connection import parse_url

    from search.storages._open import _redis_url, redis_prefix

    assert redis_prefix(url) == (plain, prefix)
    parse_url(_redis_url(plain))  # redis-py refuses "unix:/run/..." (the form urlunsplit writes back)


@pytest.fixture(params=["postgresql", "mysql"])
def empty_database(request):
    """A database with no tables yet, on the machine's own server; dropped afterwards."""
    import uuid

    import sqlalchemy

    name = f"race_{uuid.uuid4().hex[:8]}"
    server = {
        "postgresql": "postgresql://root@127.0.0.1:5432/test",
        "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
    }[request.param]
    engine = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        sqlalchemy.orm.close_all_sessions()
        with engine.connect() as c:
            if request.param == "postgresql":  # the workers' pools may still hold connections
                c.execute(
                    sqlalchemy.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                )
            c.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
        engine.dispose()


def test_workers_opening_an_empty_database_at_once_all_get_the_storage(empty_database):
    """Hosts started together each create Optuna's tables: the losers of that race go on."""
    import threading

    start, opened, errors = threading.Barrier(8), [], []

    def open_it():
        start.wait()
        try:
            opened.append(open_storage(empty_database))
        except SearchError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 8
    for storage in opened:
        storage.engine.dispose()


def test_released_connections_are_closed_and_the_storage_still_works(tmp_path):
    from search.storages import release_connections

    storage = open_storage("postgresql://root@127.0.0.1:5432/test")
    storage.get_all_studies()
    assert storage.engine.pool.checkedin() >= 1  # an idle connection, held open
    release_connections(storage)
    assert storage.engine.pool.checkedin() == 0
    storage.get_all_studies()  # opens a new one when used again
    release_connections(open_storage(f"journal:///{tmp_path}/j.log"))  # a journal has nothing to close


@pytest.mark.parametrize("url", ["postgresql://root@127.0.0.1:5432/test", "mysql+pymysql://root@127.0.0.1:3306/test"])
def test_a_session_that_dies_in_a_transaction_releases_its_locks(monkeypatch, url):
    """A worker host gone mid-transaction must not hold the rows others need for long.

    The worker's sessions ask the server to end a session idle in its transaction for
    the read timeout (here 1 s): a session that stops talking while holding a study's row
    lock is ended by the server, and another worker takes the lock."""
    import time
    import uuid

    import optuna
    import sqlalchemy

    import search.storages._open

    monkeypatch.setitem(search.storages._open.NETWORK_TIMEOUTS, "read", 1)
    storage = open_storage(url)
    name = f"lock{uuid.uuid4().hex[:8]}"
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
    lock = sqlalchemy.text("SELECT study_id FROM studies WHERE study_id = :s FOR UPDATE NOWAIT")
    dead = storage.engine.connect()
    try:
        dead.execute(lock, {"s": study_id})  # holds the row, then falls silent (its host died)
        with storage.engine.connect() as other:
            with pytest.raises(sqlalchemy.exc.OperationalError):
                other.execute(lock, {"s": study_id})  # held now
        with storage.engine.connect() as other:  # the server ends the silent session after ~1 s
            deadline = time.monotonic() + 30
            while True:
                try:
                    other.execute(lock, {"s": study_id})
                    break
                except sqlalchemy.exc.OperationalError:
                    other.rollback()
                    assert time.monotonic() < deadline, "the lock was never released"
                    time.sleep(0.2)
            other.rollback()
    finally:
        dead.invalidate()
        storage.engine.dispose()
        # Cleaned up with the usual timeouts: on a loaded machine the 1 s one can end a pooled session mid-delete.
        monkeypatch.undo()
        cleaner = open_storage(url)
        cleaner.delete_study(study_id)
        cleaner.engine.dispose()


def _take_all(url: str, ready, start) -> list[int]:
    import optuna

    study = optuna.load_study(study_name="queue", storage=open_storage(url))
    ready.set()
    start.wait()
    taken = []
    while (trial := study._pop_waiting_trial_id()) is not None:
        taken.append(trial)
    return taken


def test_processes_sharing_sqlite_never_take_one_queued_trial_twice(tmp_path):
    """Optuna's read-then-write take of a queued trial is not atomic on SQLite; ours is."""
    import multiprocessing

    import optuna

    url = f"sqlite:///{tmp_path}/q.db"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for x in range(400):
        study.enqueue_trial({"x": x})
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    readies, start = [manager.Event() for _ in range(3)], manager.Event()
    with context.Pool(3) as pool:
        results = [pool.apply_async(_take_all, (url, ready, start)) for ready in readies]
        for ready in readies:
            ready.wait()
        start.set()
        taken = [r.get() for r in results]
    everyone = [t for part in taken for t in part]
    assert sorted(everyone) == sorted(set(everyone)) and len(everyone) == 400
    assert all(part for part in taken)  # all three took some: they did race


def test_passwords_of_every_special_character_are_never_printed(cli):
    """Fuzz: passwords built of the URL's special characters, unescaped, through redact, scrub and a command's error."""
    import random

    from search.storages import scrub

    rng = random.Random(23)
    alphabet = "@:/#?&;=%+ab1"
    for _ in range(300):
        password = "Zq" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) + "Zq"
        for url in (
            f"postgresql://user:{password}@127.0.0.1:5432/x",
            f"redis://:{password}@cache:6379/0",
            f"mysql+pymysql://root:{password}@db/t?charset=utf8",
        ):
            shown = redact(url)
            assert password not in shown and "Zq" not in shown, (url, shown)
            assert "Zq" not in scrub(f"could not connect with {password}", url)
    password = "p@ss:w/rd#1"
    code, out, err = cli("studies", "--storage", f"postgresql://user:{password}@127.0.0.1:1/x")
    assert code != 0 and "ss:w" not in out + err and "rd#1" not in out + err and len(err.strip().splitlines()) == 1


def _plain_optuna_trials(path) -> list[str]:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return [t.state.name for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id)]


def test_a_torn_last_line_is_moved_aside_before_anything_is_appended(tmp_path, capsys):
    import optuna

    path = tmp_path / "j.log"
    study = optuna.create_study(storage=open_storage(f"journal:///{path}"), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = path.read_bytes()
    os.truncate(path, len(whole) - 30)  # a killed writer, a full disk: the last line cut short
    again = optuna.load_study(study_name="s", storage=open_storage(f"journal:///{path}"))
    again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    err = capsys.readouterr().err
    assert "ended in a torn line" in err and len([line for line in err.splitlines() if "torn" in line]) == 1
    aside = tmp_path / "j.log.torn-1"
    assert aside.read_bytes() == whole[whole.rfind(b"\n", 0, len(whole) - 30) + 1 : len(whole) - 30]
    assert _plain_optuna_trials(path).count("COMPLETE") == 4  # the torn line's update is lost, nothing else
    assert path.read_bytes().endswith(b"\n")


def test_a_failed_journal_write_leaves_no_fragment(tmp_path, monkeypatch):
    import errno

    import optuna

    from search.storages import _journal

    path = tmp_path / "j.log"
    study = optuna.create_study(storage=open_storage(f"journal:///{path}"), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    before = path.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        monkeypatch.setattr(_journal.os, "fsync", real_fsync)  # one failure, then space again
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_journal.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert path.read_bytes() == before
    assert _plain_optuna_trials(path) == ["COMPLETE", "COMPLETE"]


def _plain_optuna_redis_trials(prefix: str) -> list[str]:
    import optuna
    from optuna.storages.journal import JournalRedisBackend

    storage = optuna.storages.JournalStorage(JournalRedisBackend("redis://127.0.0.1:6379/0", prefix=prefix))
    return [t.state.name for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id)]


@pytest.mark.parametrize("tear", ["torn", "missing"])
def test_a_torn_or_missing_last_redis_entry_is_kept_aside_before_anything_is_appended(own_storage, capsys, tear):
    """An append cut short (a cluster's two-step write, an evicted key): the study goes on, readable by plain Optuna."""
    import optuna
    import redis

    url = own_storage("redis")
    prefix = url.split("prefix=", 1)[1]
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    cut = client.incr(f"{prefix}:log_number")  # the next entry's number taken...
    if tear == "torn":
        client.set(f"{prefix}:log:{cut}", b'{"op_code": 6, "worker_id": "dead", "trial_')  # ...and half written
    again = optuna.load_study(study_name="s", storage=open_storage(url))  # a missing entry would hang this read
    again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "torn or missing entry" in line]) == 1, err
    assert client.get(f"{prefix}:torn:{cut}") == (
        b'{"op_code": 6, "worker_id": "dead", "trial_' if tear == "torn" else b""
    )
    assert _plain_optuna_redis_trials(prefix) == ["COMPLETE"] * 4


def test_a_redis_append_is_one_round_trip_and_plain_optuna_reads_it(own_storage):
    """The check rides in the append's own script: one call an append, where Optuna's makes two (a SETNX, then the EVAL)."""
    import optuna

    url = own_storage("redis")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    client = storage._backend._redis
    sent = []
    real = client.execute_command
    client.execute_command = lambda *args, **kw: (sent.append(args[0]), real(*args, **kw))[1]
    study.optimize(lambda t: t.suggest_float("x", 0, 1, log=False) + t.suggest_float("y", 0, 1), n_trials=3)
    client.execute_command = real
    writes = sent.count("EVAL")
    assert writes >= 3 * 4 and sent.count("SETNX") == 0  # create, two params, state: at least four entries a trial
    assert _plain_optuna_redis_trials(url.split("prefix=", 1)[1]) == ["COMPLETE"] * 3
