"""Chaos: 5,000 tasks, 3 workers and 2 dispatchers while workers are SIGKILLed and restarted
every few seconds, the leading dispatcher is SIGKILLed once and Redis is restarted once.

Every task must end in exactly one terminal state, no delivery may run a body twice, the
list the bodies append to through their outbox must hold each task id exactly once, and
the run must finish. The figures go to ``chaos.json`` in the test's directory, and to
``$YM_CHAOS_RESULTS`` when set (``benchmarks/chaos.py`` does that).
"""

from __future__ import annotations

import collections
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import StoreError
from scheduler.models import TaskState
from tests.reliability_support import (
    kill_tree,
    leader_token,
    leading_process,
    ledger_entries,
    same_attempt_repeats,
)

TASKS = 5000
WORKERS = ["w1@chaos", "w2@chaos", "w3@chaos"]
DISPATCHERS = ["d1", "d2"]
SETTINGS: dict[str, Any] = {
    "strategy": "fifo",
    "heartbeat_interval": 0.5,
    "worker_timeout": 3.0,
    "dispatcher_lease": 3.0,
    "dispatch_timeout": 4.0,
    "redis_retry": 120.0,
    "events_maxlen": 50_000,
}


def _done(c: Any) -> int:
    counters = c.store.events.counters()
    return sum(counters.get(s, 0) for s in ("succeeded", "failed", "cancelled", "expired"))


def _spawn_worker(c: Any, name: str) -> Any:
    cmd = [sys.executable, "-m", "scheduler.cli", "worker", "--slots", "2", "--name", name]
    cmd += ["--pool", "prefork", "--loglevel", "WARNING"]
    return c.spawn(f"{name}-{time.monotonic_ns()}", cmd)  # a log per life


@pytest.mark.slow
def test_chaos_every_task_ends_once_commits_its_effects_once_and_runs_no_delivery_twice(
    aof_cluster, tmp_path
):
    seed = int(os.environ.get("YM_CHAOS_SEED", "0")) or random.randrange(1, 10**6)
    rng = random.Random(seed)
    c = aof_cluster(**SETTINGS)
    for name in DISPATCHERS:
        c.dispatcher(name)
    for name in WORKERS:
        c.worker(name, slots=2)
    alive = {name: c.procs[name] for name in WORKERS}
    handles = c.client.submit_many(
        [{"name": "ledger", "args": ["chaos", 0.007]} for _ in range(TASKS)]
    )
    ids = [h.id for h in handles]

    figures: dict[str, Any] = {"tasks": TASKS, "workers": len(WORKERS), "seed": seed}
    killed_pids: set[int] = set()
    kills = 0
    restarts_due: list[tuple[float, str]] = []
    leader_killed_at: float | None = None
    old_leader = ""
    takeover: float | None = None
    redis_down: float | None = None
    started = time.monotonic()
    next_kill = started + rng.uniform(2.0, 3.5)
    deadline = started + 420
    finished = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        try:
            finished = _done(c)
            if finished >= TASKS:
                break
            if leader_killed_at is None and finished >= TASKS // 4:
                name = leading_process(c, DISPATCHERS)
                old_leader = leader_token(c)
                kill_tree(c.procs[name].pid)
                c.procs.pop(name).wait()
                leader_killed_at = time.monotonic()
                c.spawn(name + "-again", [sys.executable, "-m", "scheduler.cli", "dispatcher"])
            if leader_killed_at is not None and takeover is None:
                token = leader_token(c)
                if token and token != old_leader:
                    takeover = time.monotonic() - leader_killed_at
        except StoreError:
            pass  # Redis is restarting; everything must ride it out
        if redis_down is None and finished >= TASKS // 2:
            t0 = time.monotonic()
            c.redis.restart(down=1.0)
            redis_down = time.monotonic() - t0
        if now >= next_kill and len(alive) >= 2:  # one worker always runs
            name = rng.choice(sorted(alive))
            proc = alive.pop(name)
            killed_pids.update(kill_tree(proc.pid))
            proc.wait()
            kills += 1
            # Back sometimes before the worker timeout (its restart hands the tasks
            # back), sometimes after (the dispatcher declares it dead first).
            restarts_due.append((now + rng.uniform(0.2, 5.0), name))
            next_kill = now + rng.uniform(2.0, 4.0)
        for due, name in [r for r in restarts_due if r[0] <= now]:
            restarts_due.remove((due, name))
            alive[name] = _spawn_worker(c, name)
        time.sleep(0.05)
    wall = time.monotonic() - started

    records = c.store.tasks.records(ids)
    states = collections.Counter(r.state if r else "missing" for r in records)
    entries = ledger_entries(c, "chaos")  # one per body run
    committed = ledger_entries(c, "chaos", committed=True)  # through the outbox
    commits = collections.Counter(entry[0] for entry in committed)
    by_task: dict[str, list[tuple[str, int, str, int]]] = collections.defaultdict(list)
    for entry in entries:
        by_task[entry[0]].append(entry)
    repeats = same_attempt_repeats(entries)
    reruns = {t: e for t, e in by_task.items() if len(e) > 1}
    events = c.store.client.xrange(c.store.keys.events, count=TASKS * 2)
    terminal_events = collections.Counter(fields["id"] for _, fields in events)
    counters = c.store.events.counters()
    figures.update(
        dispatchers=len(DISPATCHERS),
        worker_kills=kills,
        dispatcher_kills=1 if leader_killed_at is not None else 0,
        redis_restarts=1 if redis_down is not None else 0,
        redis_down_seconds=round(redis_down or 0.0, 2),
        takeover_seconds=None if takeover is None else round(takeover, 2),
        lease_seconds=SETTINGS["dispatcher_lease"],
        finished=bool(finished >= TASKS),
        wall_seconds=round(wall, 1),
        states={str(k): v for k, v in states.items()},
        lost=TASKS - states.get(TaskState.SUCCEEDED, 0),
        duplicated=len(repeats),
        reruns_after_sigkill=len(reruns),
        bodies_completed=len(entries),
        effects_committed=len(committed),
        duplicate_effects=sum(n - 1 for n in commits.values()),
        attempts=dict(collections.Counter(r.attempt for r in records if r)),
        recovered_unstarted=counters.get("recovered_unstarted", 0),
        started_counter=counters.get("started", 0),
    )
    text = json.dumps(figures, indent=2, sort_keys=True)
    (tmp_path / "chaos.json").write_text(text)
    if os.environ.get("YM_CHAOS_RESULTS"):
        Path(os.environ["YM_CHAOS_RESULTS"]).write_text(text + "\n")
    print(text)

    assert figures["finished"], f"the run did not finish in time: {figures}"
    assert kills >= 3
    assert leader_killed_at is not None
    assert takeover is not None
    assert redis_down is not None
    # Every task in exactly one terminal state (succeeded), with one terminal event.
    assert states == {TaskState.SUCCEEDED: TASKS}, figures
    assert set(terminal_events) == set(ids)
    assert set(terminal_events.values()) == {1}
    assert counters["succeeded"] == TASKS
    # No delivery ran a body twice; every body that completed more than once
    # did so because the worker of its earlier attempt was SIGKILLed after the
    # body ended and before its outcome reached Redis (then it runs again, as
    # the next attempt).
    assert repeats == []
    assert set(by_task) == set(ids)
    for task_id, runs in reruns.items():
        runs.sort(key=lambda e: e[1])
        for earlier in runs[:-1]:
            assert earlier[3] in killed_pids, f"{task_id} ran twice without a kill: {runs}"
        final = records[ids.index(task_id)]
        assert final is not None
        assert runs[-1][1] == final.attempt
    # The Must-show: the list every task appends its id to (through the outbox)
    # holds each task exactly once, also for the tasks whose body ran twice; and
    # what was committed is what one of the task's runs appended.
    assert figures["duplicate_effects"] == 0, [t for t, n in commits.items() if n > 1]
    assert set(commits) == set(ids)
    assert len(committed) == TASKS
    assert set(committed) <= set(entries)
    # Nothing left behind.
    assert c.store.client.zcard(c.store.keys.pending) == 0
    for name in WORKERS:
        assert c.store.client.scard(c.store.keys.worker_tasks(name)) == 0
