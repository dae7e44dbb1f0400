import pytest

from search import SearchError, open_storage, redact, resolve_storage_url
from search._storage import storage_kind


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
    ],
)
def test_passwords_are_redacted(url, shown):
    assert redact(url) == shown


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
    assert (tmp_path / "j" / "study.log").exists()


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
