"""optuna-dashboard on a study storage, optionally read-only.

optuna-dashboard has no authentication and its page can delete studies and tell trials.
Read-only mode answers every request that is not a read (GET, HEAD, OPTIONS) with 403
before it reaches the dashboard, so nothing can change the stored studies.
"""

from __future__ import annotations

import json
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from search._errors import SearchError
from search._inspect import open_existing

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - one line per request is noise on a terminal
        pass


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
    app = optuna_dashboard.wsgi(opened)
    if readonly:
        app = read_only(app)
    try:
        return make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as exc:
        raise SearchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
