"""Group commit of manifest rows: the rows that workers save at about the same time share
one transaction.

``submit`` returns only once a transaction holding its row has committed, so each worker's
record still precedes its next step (a kill -9 loses nothing it went on from); only the
COMMIT, and what must precede it, is shared. There is no committer thread: a worker that
finds no commit in progress commits everything queued, its own row included, while the
rows that arrive meanwhile wait for the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class _Ticket:
    __slots__ = ("done", "error", "row")

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, write: Callable[[list[tuple[Any, ...]]], None]) -> None:
        self._write = write
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Ticket] = []
        self._committing = False

    def submit(self, row: tuple[Any, ...]) -> None:
        ticket = _Ticket(row)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._committing:
                    self._cond.wait()
                    continue
                batch, self._queue = self._queue, []
                self._committing = True
                self._cond.release()
                error: BaseException | None = RuntimeError("the committing thread was interrupted")
                try:
                    error = self._commit([t.row for t in batch])
                finally:
                    self._cond.acquire()
                    self._committing = False
                    for done in batch:
                        done.done, done.error = True, error
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, rows: list[tuple[Any, ...]]) -> BaseException | None:
        try:
            self._write(rows)
        except BaseException as exc:  # every row of the batch failed: each waiter raises it
            return exc
        return None
