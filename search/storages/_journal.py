"""Optuna's journals (a file, a Redis), made safe against a write cut short (a full disk, a killed writer).

Optuna reads a journal without a last line that lacks its newline, but appends straight
after such a fragment: the next line is glued to it, and from then on neither this tool
nor plain Optuna can read the file. Here, under Optuna's own lock, every append first
checks that the file ends in a newline and moves a fragment aside (to a file beside the
journal, and says so in one line), and a write that fails is cut back off, so no fragment
is ever left for the next writer to build on. The file stays readable by plain Optuna at
every point.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

from search._optuna import journal_file_path, journal_lock, redis_journal

_TAIL_CHUNK = 1 << 16


class SafeJournalFileBackend(JournalFileBackend):
    """`JournalFileBackend` whose appends never build on a torn line, nor leave one."""

    def repair(self) -> Path | None:
        """Move a torn last line aside (under the journal's lock); the file it went to, or None."""
        with journal_lock(self):
            return self._repair_tail()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with journal_lock(self):
            self._repair_tail()
            with open(journal_file_path(self), "ab") as journal:
                size = journal.tell()
                try:
                    journal.write(text.encode("utf-8"))
                    journal.flush()
                    os.fsync(journal.fileno())
                except BaseException:
                    _cut_back(journal, size)
                    raise

    def _repair_tail(self) -> Path | None:
        path = Path(journal_file_path(self))
        with open(path, "r+b") as journal:
            end = journal.seek(0, os.SEEK_END)
            keep = _last_line_end(journal, end)
            if keep == end:
                return None
            journal.seek(keep)
            fragment = journal.read()
            aside = _aside_name(path)
            aside.write_bytes(fragment)
            journal.truncate(keep)
            journal.flush()
            os.fsync(journal.fileno())
        print(
            f"search: journal file {path} ended in a torn line ({len(fragment):,} bytes, a write cut short); "
            f"moved it to {aside}; the study is intact",
            file=sys.stderr,
            flush=True,
        )
        return aside


def _last_line_end(journal, end: int) -> int:
    """The offset just past the file's last newline (0 when it has none)."""
    position = end
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        journal.seek(start)
        chunk = journal.read(position - start)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def _aside_name(path: Path) -> Path:
    number = 1
    while (aside := path.with_name(f"{path.name}.torn-{number}")).exists():
        number += 1
    return aside


def _cut_back(journal, size: int) -> None:
    """Take a failed write's part back off the file (best effort: the next append checks again)."""
    try:
        journal.truncate(size)
        os.fsync(journal.fileno())
    except OSError:
        pass


# Optuna reads a Redis journal's entries PREFIX:log:0 .. PREFIX:log:<log_number>. A last entry
# that is not JSON is skipped, but once another is appended after it no reader gets past it;
# a last entry that is missing (its number taken, the entry never written: a cluster's
# two-step append cut short, an evicted key) makes every reader wait for it forever. Before
# each append, in the same server-side script (so no writer comes between), such an entry
# is copied to PREFIX:torn:N and replaced by an entry every reader skips: a study attribute
# of a study that does not exist, which Optuna's replay ignores. One round trip, as Optuna's.
_APPEND = """
local prefix = ARGV[1]
local counter = prefix .. ':log_number'
redis.call('setnx', counter, -1)
local last = tonumber(redis.call('get', counter))
local torn = -1
if last >= 0 then
  local key = prefix .. ':log:' .. last
  local entry = redis.call('get', key)
  if (not entry) or (not pcall(cjson.decode, entry)) then
    redis.call('set', prefix .. ':torn:' .. last, entry or '')
    redis.call('set', key, ARGV[2])
    torn = last
  end
end
for i = 3, #ARGV do
  redis.call('set', prefix .. ':log:' .. redis.call('incr', counter), ARGV[i])
end
return torn
"""
# What replaces a torn entry: Optuna's replay skips an attribute of a study id that no study has.
_SKIPPED = {"op_code": 3, "worker_id": "search:repair", "study_id": -1, "system_attr": {"search:torn": True}}


class SafeJournalRedisBackend(JournalRedisBackend):
    """`JournalRedisBackend` whose appends never build on a torn or missing last entry."""

    def repair(self) -> int | None:
        """Replace a torn or missing last entry now (before anything reads the journal); its number, or None."""
        return self._append([])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._append(logs)

    def _append(self, logs: list[dict[str, Any]]) -> int | None:
        client, prefix = redis_journal(self)
        torn = int(client.eval(_APPEND, 0, prefix, json.dumps(_SKIPPED), *(json.dumps(log) for log in logs)))
        if torn < 0:
            return None
        print(
            f"search: Redis journal {prefix or '(no prefix)'} ended in a torn or missing entry (number {torn}, a "
            f"write cut short); kept it as {prefix}:torn:{torn}; the study is intact",
            file=sys.stderr,
            flush=True,
        )
        return torn
