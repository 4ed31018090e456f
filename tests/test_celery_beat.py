"""celery beat on a yardmaster app: each periodic run is a yardmaster submission.

A real ``celery -A tests.beat_tasks beat`` process (its schedule: ``beat.tick`` every
second) publishes through the app's ``apply_async``, so every run is a task record
in Redis, scheduled by the dispatcher and run by a real ``yardmaster worker``.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any

from scheduler.models import TaskRecord

MODULE = "tests.beat_tasks"
RUNS = 3


def tick_records(c: Any) -> list[TaskRecord]:
    """The records of every ``beat.tick`` submitted to ``c``, oldest first."""
    r, prefix = c.store.client, c.store.keys.task_prefix
    ids = [
        key[len(prefix) :]
        for key in r.scan_iter(match=prefix + "*", count=500)
        if r.type(key) == "hash" and r.hget(key, "name") == "beat.tick"
    ]
    found = [rec for rec in c.store.tasks.records(ids) if rec is not None]
    return sorted(found, key=lambda rec: rec.submitted_at)


def test_beat_runs_a_periodic_task_through_yardmaster_at_its_period(
    cluster: Any, tmp_path: Path
) -> None:
    c = cluster()
    c.dispatcher()
    c.worker("w1@test", slots=1, app_module=MODULE)
    schedule = tmp_path / "beat-schedule"
    beat = c.spawn(
        "beat",
        [sys.executable, "-m", "celery", "-A", MODULE, "beat", "-s", str(schedule),
         "--max-interval", "1", "--loglevel", "INFO"],
    )  # fmt: skip
    done: list[TaskRecord] = []
    give_up = time.monotonic() + 90
    while time.monotonic() < give_up:
        assert beat.poll() is None, (c.log_dir / "beat.log").read_text()
        done = [rec for rec in tick_records(c) if rec.state == "succeeded"]
        if len(done) >= RUNS:
            break
        time.sleep(0.2)
    assert len(done) >= RUNS, (c.log_dir / "beat.log").read_text()
    beat.terminate()
    beat.wait(timeout=20)
    runs = tick_records(c)
    # every run went through yardmaster: a record the dispatcher placed on our worker,
    # with beat's own header, the entry's argument and its options (priority, expires)
    for rec in done:
        assert rec.worker == "w1@test"
        assert rec.priority == 8
        result = c.store.tasks.outcome_detail(rec.id)
        assert '"beat": true' in result["result"]
        assert '"n": 7' in result["result"]
        assert '"priority": 8' in result["result"]
    # at its period: beat sends the next run only once the period has passed since the
    # last (a loaded machine makes them later, never earlier)
    gaps = [b.submitted_at - a.submitted_at for a, b in itertools.pairwise(runs)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    # the entry with an option yardmaster cannot honour was refused at each send, its
    # error naming the option and value, and nothing of it was stored
    log = (c.log_dir / "beat.log").read_text()
    assert "Couldn't apply scheduled task tick-to-an-exchange" in log
    assert "exchange='reports'" in log
    assert "cannot be honoured" in log
    assert all(rec.priority == 8 for rec in runs)  # only the honoured entry's runs
