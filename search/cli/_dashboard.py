"""optuna-dashboard on a study storage, optionally read-only.

optuna-dashboard has no authentication and its page can delete studies and tell trials.
Read-only mode answers every request that is not a read (GET, HEAD, OPTIONS) with 403
before it reaches the dashboard, so nothing can change the stored studies. The dashboard has
no read-only mode of its own, so its page still draws its create and delete buttons: every
page it serves carries a banner at the top saying that they are refused.
"""

from __future__ import annotations

import json
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from search._errors import SearchError
from search.study._inspect import open_existing

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
BANNER = (
    '<div id="search-read-only" style="position:sticky;top:0;z-index:9999;padding:6px 12px;background:#fff3cd;'
    'color:#664d03;font:14px sans-serif;border-bottom:1px solid #ffe69c">Read-only: this dashboard shows the '
    "studies; creating, deleting and editing them is refused (search dashboard --read-only).</div>"
)


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
            return _with_banner(app, environ, start_response)
        body = json.dumps({"reason": "this dashboard is read-only (search dashboard --read-only)"}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def _with_banner(app, environ, start_response):
    """The app's answer; an HTML page with the read-only banner first in its body. Any other answer passes
    through unread (the dashboard's scripts are megabytes)."""
    import gzip

    said: list = []
    answer = app(environ, lambda status, headers, exc_info=None: said.append((status, headers)))
    if not said:  # an app that starts its answer only when it is read
        answer = [b"".join(answer)]
    status, headers = said[0]
    kinds = {k.lower(): v for k, v in headers}
    if not kinds.get("content-type", "").startswith("text/html"):
        start_response(status, headers)
        return answer
    body = b"".join(answer)
    gzipped = kinds.get("content-encoding") == "gzip"
    page = gzip.decompress(body) if gzipped else body
    if b"<body" not in page:
        start_response(status, headers)
        return [body]
    at = page.index(b">", page.index(b"<body")) + 1
    page = page[:at] + BANNER.encode() + page[at:]
    if gzipped:
        page = gzip.compress(page)
    keep = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*keep, ("Content-Length", str(len(page)))])
    return [page]


def make_dashboard(
    storage: str | None, host: str, port: int, readonly: bool, artifacts: str | None = None
) -> WSGIServer:
    """A server for the dashboard, bound but not yet serving (``serve_forever`` starts it); each trial's page lists
    its artifacts (the kept weights) from the store ``search run`` wrote them to."""
    import optuna_dashboard

    from search.tracking._store import artifact_store_for

    url, opened, _ = open_existing(storage)
    _, store = artifact_store_for(artifacts, url)
    app = guarded(optuna_dashboard.wsgi(opened, artifact_store=store))
    if readonly:
        app = read_only(app)
    try:
        return make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as exc:
        raise SearchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
