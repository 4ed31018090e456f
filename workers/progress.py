"""A running task's progress, written to its record at most once per ``YM_PROGRESS_INTERVAL``.

``YardmasterTask.progress(done, total, note)`` lands here. The first report of a
run is written at once; a report inside the interval after a write is kept, and
goes out with the next report past the interval, or when the run ends
(``YardmasterTask.after_return``), so the record always ends with the last value
the body reported. The write is fenced on the worker and attempt the record
names (``progress.lua``): a stale delivery cannot overwrite a newer run's progress.

Progress is information, not an outcome: a write Redis refuses is logged, and
the body goes on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from broker_config.celery_app import app_settings
from scheduler.errors import InvalidInputError, StoreError
from workers.hooks import store_for

log = logging.getLogger("yardmaster.worker")

MAX_NOTE = 500
"""Characters of a note kept (a longer one is cut)."""


@dataclass(slots=True)
class Throttle:
    """Which progress reports of one run to write: pure, fed with a monotonic clock."""

    interval: float
    last: float = -math.inf
    kept: tuple[float, float | None, str] | None = None

    def offer(
        self, now: float, value: tuple[float, float | None, str]
    ) -> tuple[float, float | None, str] | None:
        """The value to write now, or None when it is kept for later."""
        if now - self.last >= self.interval:
            self.last, self.kept = now, None
            return value
        self.kept = value
        return None

    def take_kept(self) -> tuple[float, float | None, str] | None:
        """The report kept since the last write (written when the run ends), if any."""
        kept, self.kept = self.kept, None
        return kept


# Keyed by (task id, attempt, thread): one run's throttle; two runs of one task
# never share it, even in the threads pool.
_runs: dict[tuple[str, int, int], Throttle] = {}


def check(done: Any, total: Any, note: Any) -> tuple[float, float | None, str]:
    """The report as written, or a clear error naming the bad field.

    Raises:
        InvalidInputError: ``done`` is not a finite number >= 0, ``total`` not None or a
            finite number > 0, or ``note`` not a string.
    """
    for field, value, allowed in (
        ("done", done, "a finite number >= 0"),
        ("total", total, "None or a finite number > 0"),
    ):
        if value is None and field == "total":
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0 or (field == "total" and value == 0):
            raise InvalidInputError(f"progress({field})", value, allowed)
    if not isinstance(note, str):
        raise InvalidInputError("progress(note)", note, "a string")
    return float(done), None if total is None else float(total), note[:MAX_NOTE]


def report(task: Any, done: Any, total: Any, note: Any) -> bool:
    """Record a report of ``task``'s current run; True when written now (False when kept
    for later, refused, or when the body does not run in a yardmaster worker)."""
    value = check(done, total, note)
    key = _key(task)
    if key is None:
        return False
    throttle = _runs.get(key)
    if throttle is None:
        throttle = _runs[key] = Throttle(app_settings(task.app).progress_interval)
    due = throttle.offer(time.monotonic(), value)
    return due is not None and _write(task, key, due)


def finish(task: Any) -> None:
    """The run ended: write the report kept back by the interval, if any, and forget it."""
    key = _key(task)
    throttle = None if key is None else _runs.pop(key, None)
    kept = None if throttle is None else throttle.take_kept()
    if key is not None and kept is not None:
        _write(task, key, kept)


def _key(task: Any) -> tuple[str, int, int] | None:
    request = task.request
    attempt = getattr(request, "ym_attempt", None)
    if attempt is None or request.called_directly or request.id is None:
        return None
    return str(request.id), int(attempt), threading.get_ident()


def _write(task: Any, key: tuple[str, int, int], value: tuple[float, float | None, str]) -> bool:
    task_id, attempt, _ = key
    worker = str(task.request.hostname)
    try:
        return store_for(task.app).tasks.set_progress(task_id, worker, attempt, *value)
    except StoreError as exc:
        log.warning("progress of %s not recorded: %s", task_id, exc)
        return False
