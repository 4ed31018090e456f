"""Helpers shared by the reliability tests: who leads, killing process trees, the ledger."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import psutil


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and all its children; returns every pid killed."""
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return [p.pid for p in procs]


def wait_for(ready: Callable[[], Any], what: str, timeout: float = 60.0, step: float = 0.02) -> Any:
    """Poll ``ready`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = ready()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout}s")


def leader_token(c: Any) -> str:
    """The token of the dispatcher holding the lease ('' when none does)."""
    return str(c.store.client.get(c.store.keys.leader) or "")


def leading_process(c: Any, names: list[str]) -> str:
    """Which of the named dispatcher processes holds the lease (read from their logs)."""
    token = leader_token(c)
    assert token, "no dispatcher holds the lease"

    def named() -> str:
        # the leader writes its log line just after it takes the lease: allow it a moment
        for name in names:
            log = (c.log_dir / f"{name}.log").read_text(errors="replace")
            if f"dispatcher {token[:8]} is the leader" in log:
                return name
        return ""

    return str(wait_for(named, f"a dispatcher log naming the leader {token[:8]}", timeout=10))


def ledger_entries(
    c: Any, name: str, *, committed: bool = False
) -> list[tuple[str, int, str, int]]:
    """(task id, attempt, worker, pid) of every completed ``ledger`` body, or with
    ``committed`` of every entry the bodies committed through the outbox."""
    out = []
    for entry in c.store.demo.ledger(name, committed=committed):
        task_id, attempt, worker, pid = entry.rsplit(":", 3)
        out.append((task_id, int(attempt), worker, int(pid)))
    return out


def same_attempt_repeats(entries: list[tuple[str, int, str, int]]) -> list[tuple[str, int]]:
    """(task id, attempt) pairs whose body completed more than once: must be empty."""
    counts = collections.Counter((e[0], e[1]) for e in entries)
    return [pair for pair, n in counts.items() if n > 1]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process tree the test started and reap it."""
    kill_tree(proc.pid)
    proc.wait()
