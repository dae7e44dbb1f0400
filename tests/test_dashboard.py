"""The dashboard started for real: its HTTP API, read-only mode, and a headless browser."""

import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import optuna
import pytest

from search.cli._dashboard import make_dashboard


@pytest.fixture
def storage(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    study = optuna.create_study(study_name="visible-study", storage=url, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    return url


def serve(storage, readonly):
    server = make_dashboard(storage, "127.0.0.1", 0, readonly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def request(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("readonly", [False, True])
def test_api_lists_the_study(storage, readonly):
    server, base = serve(storage, readonly)
    try:
        status, body = request(base + "/api/studies")
        assert status == 200
        assert [s["study_name"] for s in json.loads(body)["study_summaries"]] == ["visible-study"]
    finally:
        server.shutdown()


def delete_first_study(storage, readonly):
    """DELETE the first study through the dashboard's API: (status, body)."""
    server, base = serve(storage, readonly)
    try:
        study_id = json.loads(request(base + "/api/studies")[1])["study_summaries"][0]["study_id"]
        return request(f"{base}/api/studies/{study_id}", method="DELETE")
    finally:
        server.shutdown()


def test_read_only_refuses_writes(storage):
    status, body = delete_first_study(storage, readonly=True)
    assert status == 403 and b"read-only" in body
    assert optuna.get_all_study_names(storage) == ["visible-study"]


def test_writable_dashboard_can_delete(storage):
    """The control: without --read-only the same request does delete."""
    assert delete_first_study(storage, readonly=False)[0] in (200, 204)
    assert optuna.get_all_study_names(storage) == []


def test_browser_sees_the_study(storage):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed (apt-get install chromium; .ci/run installs it)"
    server, base = serve(storage, readonly=True)
    try:
        dom = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=15000",
                "--dump-dom",
                base + "/dashboard/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        assert "visible-study" in dom
    finally:
        server.shutdown()


def test_cli_refuses_a_taken_port(cli, storage):
    server, base = serve(storage, readonly=False)
    try:
        code, _, err = cli("dashboard", "--storage", storage, "--port", str(server.server_port))
        assert code == 1 and "cannot listen on 127.0.0.1" in err
    finally:
        server.shutdown()


def test_no_accept_encoding_and_no_traceback(storage, capfd):
    """optuna-dashboard reads Accept-Encoding unguarded; a client without it gets the page, not a 500."""
    import http.client

    server, base = serve(storage, readonly=True)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        connection.putrequest("GET", "/static/bundle.js", skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200 and len(body) > 1000
        assert response.getheader("Content-Encoding") != "gzip"
        status, _ = request(base + "/api/studies/12345")  # an error inside the dashboard
        assert status >= 400
    finally:
        server.shutdown()
    err = capfd.readouterr().err
    assert "Traceback" not in err


def test_ctrl_c_stops_a_dashboard_started_in_the_background(storage, tmp_path):
    """A background job of a non-interactive shell starts with SIGINT ignored; the banner says Ctrl-C stops it."""
    import signal

    from _procs import read_until, search

    server = search(
        tmp_path,
        "dashboard",
        "--storage",
        storage,
        "--port",
        "0",
        popen={"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)},
    )
    read_until(server.stdout, "Ctrl-C stops it")
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=30)
    assert server.returncode == 0


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_read_only_page_says_so_at_its_top(storage, encoding):
    """optuna-dashboard has no read-only mode: its page still draws the delete buttons, so it says they are refused."""
    import gzip

    for readonly in (True, False):
        server, base = serve(storage, readonly)
        try:
            ask = urllib.request.Request(base + "/dashboard", headers={"Accept-Encoding": encoding})
            with urllib.request.urlopen(ask, timeout=30) as response:
                raw = response.read()
                page = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
                assert int(response.headers["Content-Length"]) == len(raw)
            assert (b"Read-only: this dashboard shows the studies" in page) == readonly
            assert b"<script" in page  # the dashboard's own page, whole
            status, body = request(base + "/api/studies")
            assert status == 200 and b"Read-only" not in body  # its API answers untouched
        finally:
            server.shutdown()
