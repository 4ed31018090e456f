"""A local cluster: Redis (embedded when none is configured), dispatchers, workers,
and Flower, the monitor and the HTTP API as asked, as real processes on this host.

``yardmaster up`` and ``yardmaster demo`` start one whole (:meth:`LocalCluster.start`);
the test fixtures start its processes one by one, on a Redis they share between
clusters, and read their logs. Every process is started the way an operator
would (``python -m scheduler.cli ...`` or ``celery -A ...``), in its own process
group, so Ctrl-C reaches only the caller, which stops them in order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scheduler.embedded import EmbeddedRedis, clear_runtime, free_port, write_runtime
from scheduler.errors import YardmasterError
from scheduler.local_services import API_TOKEN_FILE, api_token_env, wait_api, wait_flower
from scheduler.sentinel_topology import SentinelRedis
from scheduler.settings import Settings
from scheduler.store import Store, connect

CLI = (sys.executable, "-m", "scheduler.cli")


class LocalCluster:
    """The processes of a local cluster, started, watched and stopped together.

    Args:
        settings: Cluster settings: its namespace and strategy are given to every
            process; ``redis_url`` unset (and no ``redis``) means an embedded
            Redis, started by :meth:`start_redis`.
        redis: A running embedded Redis (or Redis with Sentinels) to use (the caller
            stops it; the test fixtures share one between clusters).
        log_dir: Where each process writes ``NAME.log`` (a new temporary
            directory by default).
        env: More environment for every process (``YM_*`` settings, ``PYTHONPATH``).
        cwd: Working directory of the processes (the caller's by default).
        ha: With no Redis configured, :meth:`start_redis` starts a primary, a replica
            and three Sentinels (:class:`~scheduler.sentinel_topology.SentinelRedis`)
            instead of one server, and the processes connect through the Sentinels.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        redis: EmbeddedRedis | SentinelRedis | None = None,
        log_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ha: bool = False,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.ha = ha
        self.url = redis.url if redis is not None else settings.redis_url or ""
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="yardmaster-up-"))
        self.extra_env = dict(env or {})
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = ""
        self.api_token_file: Path | None = None
        self._api_tokens: dict[str, str] | None = None
        self._workers: set[str] = set()
        self._own_redis = False
        self._store: Store | None = None

    @property
    def namespace(self) -> str:
        """The cluster's key namespace."""
        return self.settings.namespace

    @property
    def strategy(self) -> str:
        """The strategy its dispatchers start with."""
        return self.settings.strategy

    @property
    def store(self) -> Store:
        """A state store on the cluster's Redis (made on first use)."""
        if self._store is None:
            if not self.url:
                raise YardmasterError("the local cluster has no Redis yet: call start_redis()")
            self._store = Store(
                connect(self.url, master=self.settings.sentinel_master), self.settings
            )
        return self._store

    # -- starting processes ----------------------------------------------------
    def start_redis(self) -> str:
        """The cluster's Redis URL; with none configured, an embedded Redis is started
        and its URL recorded for other shells (``yardmaster status`` finds it)."""
        if not self.url:
            if self.ha:
                self.redis = SentinelRedis(master=self.settings.sentinel_master).start()
            else:
                self.redis = EmbeddedRedis().start()
            self._own_redis = True
            self.url = self.redis.url
            write_runtime(self.namespace, self.url)
        return self.url

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of the cluster's processes, plus ``extra``."""
        env = dict(os.environ, YM_STRATEGY=self.strategy)
        env.update(self.extra_env)
        env.update(extra)
        env.update(YM_REDIS_URL=self.url, YM_NAMESPACE=self.namespace)
        if isinstance(self.redis, SentinelRedis):
            env.update(YM_SENTINEL_MASTER=self.redis.master)
        return env

    def spawn(self, name: str, cmd: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        """Start ``cmd`` as process ``name`` (its key in :attr:`procs`), its output in
        ``log_dir/NAME.log``, with ``extra_env`` added to its environment."""
        with open(self.log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                env=self.env(**extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def dispatcher(
        self,
        name: str = "dispatcher",
        *,
        loglevel: str | None = None,
        wait: bool = True,
        **extra_env: str,
    ) -> subprocess.Popen[bytes]:
        """Start a dispatcher; with ``wait``, return once a dispatcher holds the lease."""
        cmd = [*CLI, "dispatcher"] + (["--loglevel", loglevel] if loglevel else [])
        proc = self.spawn(name, cmd, **extra_env)
        if wait:
            self.wait_for(self.has_leader, f"{name} lease")
        return proc

    def worker(
        self,
        name: str,
        slots: int = 1,
        pool: str = "prefork",
        *,
        hostname: str | None = None,
        events: bool = False,
        loglevel: str = "WARNING",
        wait: bool = True,
        app_module: str | None = None,
        resources: str | None = None,
        labels: tuple[str, ...] = (),
        queues: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``yardmaster worker`` as process ``name`` (its Celery hostname
        ``hostname``, else ``name``), running the app ``app_module`` (``-A``) if given,
        with ``--resources``, a ``--label`` per ``labels`` item and ``-Q queues`` when
        given; with ``wait``, return once it registered."""
        cmd = [*CLI, "worker", "--slots", str(slots), "--name", hostname or name]
        cmd += ["-A", app_module] if app_module else []
        cmd += ["--pool", pool, "--loglevel", loglevel] + (["--events"] if events else [])
        cmd += ["--resources", resources] if resources is not None else []
        for label in labels:
            cmd += ["--label", label]
        cmd += ["-Q", queues] if queues is not None else []
        proc = self.spawn(name, cmd)
        self._workers.add(name)  # stopped first
        if wait:
            self.wait_worker(hostname or name)
        return proc

    def native_worker(
        self,
        name: str,
        module: str,
        slots: int = 1,
        *,
        wait: bool = True,
        queues: str | None = None,
        **extra_env: str,
    ) -> subprocess.Popen[bytes]:
        """Start a plain ``celery -A module worker`` named ``name`` (an app with its own
        tasks), with ``-Q queues`` when given and ``extra_env``
        (``YM_WORKER_RESOURCES=...``) in its environment."""
        cmd = [sys.executable, "-m", "celery", "-A", module, "worker", "-c", str(slots)]
        cmd += ["-n", name, "--without-gossip", "--without-mingle", "-l", "WARNING"]
        cmd += ["-Q", queues] if queues is not None else []
        proc = self.spawn(name, cmd, **extra_env)
        self._workers.add(name)
        if wait:
            self.wait_worker(name)
        return proc

    def monitor(
        self, port: int, name: str = "monitor", **extra_env: str
    ) -> subprocess.Popen[bytes]:
        """Start ``yardmaster monitor`` on ``port`` (/metrics, /dashboard; the HTTP API
        under /api when ``YM_API_TOKENS`` is in its environment)."""
        return self.spawn(name, [*CLI, "monitor", "--port", str(port)], **extra_env)

    def flower(self, port: int, workers: int, timeout: float = 60.0) -> subprocess.Popen[bytes]:
        """Start Flower on ``port`` and return once it lists ``workers`` workers.

        Flower asks the workers for their details once, when it starts, so start
        it after them. Flower 2.2 refuses its API without authentication unless
        told this is a local, unauthenticated setup (it listens on 127.0.0.1 only).
        """
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "flower"]
        cmd += [f"--port={port}", "--address=127.0.0.1"]
        proc = self.spawn("flower", cmd, FLOWER_UNAUTHENTICATED_API="true")
        wait_flower(port, workers, timeout, proc)
        return proc

    def api(
        self,
        port: int | None = None,
        *,
        name: str = "api",
        loglevel: str = "WARNING",
        timeout: float = 60.0,
        **extra_env: str,
    ) -> str:
        """Start ``yardmaster api`` (a free port by default) and return its base URL
        once it answers; with auth on and no tokens configured, it gets this run's
        admin token (:meth:`api_tokens`)."""
        port = port or free_port()
        if "YM_API_TOKENS" not in self.env(**extra_env):
            extra_env = {**self.api_tokens(), **extra_env}
        cmd = [*CLI, "api", "--port", str(port), "--loglevel", loglevel]
        proc = self.spawn(name, cmd, **extra_env)
        url = f"http://{self.settings.api_host}:{port}"
        wait_api(url, proc, self.log_dir / f"{name}.log", timeout)
        if not self.api_url:
            self.api_url = url
        return url

    def api_tokens(self) -> dict[str, str]:
        """``YM_API_TOKENS`` for this run's API and monitor: nothing when tokens are
        configured or auth is off; else one admin token, made on first use and
        written to :attr:`api_token_file`, so that every process of the run accepts
        the same token."""
        if "YM_API_TOKENS" in self.env():
            return {}
        if self._api_tokens is None:
            self._api_tokens = api_token_env(self.settings, self.log_dir)
            if self._api_tokens:
                self.api_token_file = self.log_dir / API_TOKEN_FILE
        return self._api_tokens

    def start(
        self,
        *,
        workers: int = 2,
        slots: int = 2,
        flower: bool = False,
        monitor_port: int | None = None,
        api: bool = False,
        api_port: int | None = None,
        loglevel: str = "WARNING",
        timeout: float = 60.0,
        app_module: str | None = None,
    ) -> LocalCluster:
        """Start the whole cluster and wait until it is ready (``yardmaster up``).

        Args:
            workers: Worker processes (``w1`` ...; Celery hostnames ``w1@HOST`` ...).
            slots: Slots (concurrency) of each worker.
            flower: Also start Flower on ``YM_FLOWER_PORT`` (workers then send events).
            monitor_port: Start yardmaster's monitor on this port (None: no monitor).
            api: Also start the HTTP API on ``api_port`` (``YM_API_PORT`` by default).
            api_port: Its port.
            loglevel: Log level of the dispatcher, workers and API (INFO logs every
                task, which costs noticeable throughput on short tasks).
            timeout: Seconds to wait for each service to be ready.
            app_module: The workers run this Celery app (``-A``, as ``celery -A``
                reads it) instead of yardmaster's own.
        """
        self.start_redis()
        self.dispatcher(loglevel=loglevel, wait=False)
        host = socket.gethostname()
        for i in range(1, workers + 1):
            self.worker(
                f"w{i}",
                slots,
                hostname=f"w{i}@{host}",
                events=flower,
                loglevel=loglevel,
                wait=False,
                app_module=app_module,
            )
        if monitor_port is not None:
            # The monitor serves the API under /api with the same tokens, so that
            # the dashboard can call it on its own origin (docs/observability.md).
            self.monitor(monitor_port, **(self.api_tokens() if api else {}))
        self.wait_ready(workers, timeout)
        if flower:
            self.flower(self.settings.flower_port, workers, timeout)
        if api:
            self.api(api_port or self.settings.api_port, loglevel=loglevel, timeout=timeout)
        return self

    # -- waiting ---------------------------------------------------------------
    def has_leader(self) -> bool:
        """Whether a dispatcher holds the lease."""
        return self.store.leases.leader() is not None

    def wait_worker(self, name: str, timeout: float = 30.0) -> None:
        """Block until a worker of Celery hostname ``name`` registered."""
        self.wait_for(lambda: any(w.name == name for w in self.store.workers.load()), name, timeout)

    def wait_ready(self, workers: int, timeout: float = 60.0) -> None:
        """Block until ``workers`` workers registered and a dispatcher holds the lease."""
        self.wait_for(
            lambda: len(self.store.workers.load()) >= workers and self.has_leader(),
            f"the cluster ({workers} workers and a dispatcher)",
            timeout,
        )

    def wait_for(self, ready: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
        """Poll ``ready`` until it is true.

        Raises:
            YardmasterError: A process exited meanwhile (the end of its log is
                quoted), or ``what`` was not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log = self.log_dir / f"{name}.log"
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise YardmasterError(
                        f"{name} exited with code {proc.returncode}; see {log}:\n{tail}"
                    )
            time.sleep(0.05)
        raise YardmasterError(f"{what} not ready within {timeout:g}s; logs in {self.log_dir}")

    # -- stopping --------------------------------------------------------------
    def stop(self, timeout: float = 20.0) -> None:
        """Stop workers first (they finish running tasks), then the rest, then an
        embedded Redis this cluster started; a process still running after
        ``timeout`` seconds is killed."""
        order = [n for n in self.procs if n in self._workers]
        order += [n for n in self.procs if n not in self._workers]
        for name in order:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_redis and self.redis is not None:
            clear_runtime(self.namespace)
            self.redis.stop()
            self.redis = None
            self._own_redis = False

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
