"""optuna-dashboard on a study storage, optionally read-only.

optuna-dashboard has no authentication and its page can delete studies and tell trials.
Read-only mode answers every request that is not a read (GET, HEAD, OPTIONS) with 403
before it reaches the dashboard, so nothing can change the stored studies.
"""

from __future__ import annotations

import json
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from search._errors import SearchError
from search.study._inspect import open_existing

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - one line per request is noise on a terminal
        pass


class _OneLineErrors:
    """Stands in for ``wsgi.errors``: a traceback the app writes becomes one line on stderr."""

    def __init__(self, method: str, path: str):
        self.where, self.text = f"{method} {path}", []

    def write(self, text: str) -> None:
        self.text.append(text)

    def writelines(self, lines) -> None:
        self.text.extend(lines)

    def flush(self) -> None:
        lines = [line for line in "".join(self.text).splitlines() if line.strip()]
        self.text = []
        if lines:
            print(f"search dashboard: error answering {self.where}: {lines[-1].strip()}", file=sys.stderr, flush=True)


def guarded(app):
    """WSGI middleware for what optuna-dashboard leaves unguarded.

    It reads ``Accept-Encoding`` without a default (a client that sends none got a 500);
    and an error inside it is one line on stderr, never a traceback.
    """

    def serve(environ, start_response):
        environ.setdefault("HTTP_ACCEPT_ENCODING", "identity")
        environ["wsgi.errors"] = _OneLineErrors(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"))
        return app(environ, start_response)

    return serve


def read_only(app):
    """WSGI middleware refusing every request that could write."""

    def guarded(environ, start_response):
        if environ.get("REQUEST_METHOD", "GET").upper() in _READS:
            return app(environ, start_response)
        body = json.dumps({"reason": "this dashboard is read-only (search dashboard --read-only)"}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def make_dashboard(storage: str | None, host: str, port: int, readonly: bool) -> WSGIServer:
    """A server for the dashboard, bound but not yet serving (``serve_forever`` starts it)."""
    import optuna_dashboard

    _, opened, _ = open_existing(storage)
    app = guarded(optuna_dashboard.wsgi(opened))
    if readonly:
        app = read_only(app)
    try:
        return make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as exc:
        raise SearchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
