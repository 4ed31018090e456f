"""``yardmaster up``: Redis (embedded when none is configured), a dispatcher, workers, Flower."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console

from scheduler.cli.base import app
from scheduler.cli.stack_api import API_TOKEN_FILE, AUTH_OFF_WARNING, api_token_env, wait_api
from scheduler.embedded import EmbeddedRedis, clear_runtime, write_runtime
from scheduler.errors import YardmasterError
from scheduler.redaction import redact_url
from scheduler.settings import Settings, load_settings
from scheduler.store import StateStore, connect

console = Console()


class Stack:
    """The processes of a local cluster, started and stopped together.

    Args:
        settings: Cluster settings; ``redis_url`` unset starts an embedded Redis.
        workers: Number of worker processes.
        slots: Slots (concurrency) of each worker.
        strategy: Strategy of the dispatcher.
        flower: Also start Flower (and send task events from the workers).
        monitor_port: Port of yardmaster's monitor (``/metrics``, ``/dashboard``);
            None starts none.
        log_dir: Where each process writes its log.
        loglevel: Log level of the workers (INFO logs every task, which costs
            noticeable throughput on short tasks).
        api: Also start the HTTP API (``yardmaster api``) on ``api_port``.
        api_port: Its port; ``YM_API_PORT`` by default.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 2,
        slots: int = 2,
        strategy: str | None = None,
        flower: bool = False,
        monitor_port: int | None = None,
        log_dir: Path | None = None,
        loglevel: str = "WARNING",
        api: bool = False,
        api_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.n_workers = workers
        self.slots = slots
        self.strategy = strategy or settings.strategy
        self.flower = flower
        self.monitor_port = monitor_port
        self.loglevel = loglevel
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="yardmaster-up-"))
        self.redis: EmbeddedRedis | None = None
        self.url = settings.redis_url or ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.api = api
        self.api_port = api_port or settings.api_port
        self.api_token_file: Path | None = None

    def start(self, timeout: float = 60.0) -> Stack:
        """Start everything and wait until every worker has registered."""
        if not self.url:
            self.redis = EmbeddedRedis().start()
            self.url = self.redis.url
            write_runtime(self.settings.namespace, self.url)
        env = dict(os.environ, YM_REDIS_URL=self.url, YM_STRATEGY=self.strategy)
        env["YM_NAMESPACE"] = self.settings.namespace
        py = [sys.executable, "-m", "scheduler.cli"]
        self._spawn("dispatcher", [*py, "dispatcher", "--loglevel", self.loglevel], env)
        host = socket.gethostname()
        for i in range(1, self.n_workers + 1):
            cmd = [*py, "worker", "--slots", str(self.slots), "--name", f"w{i}@{host}"]
            cmd += ["--loglevel", self.loglevel]
            if self.flower:
                cmd.append("--events")
            self._spawn(f"w{i}", cmd, env)
        api_env = dict(env, **api_token_env(self.settings, self.log_dir)) if self.api else env
        if self.monitor_port is not None:
            # The monitor serves the API under /api with the same tokens, so that
            # the dashboard can call it on its own origin (docs/observability.md).
            cmd = [*py, "monitor", "--port", str(self.monitor_port)]
            self._spawn("monitor", cmd, api_env)
        self.wait_ready(timeout)
        if self.flower:
            # Flower asks the workers for their details once, when it starts, and
            # serves that answer from /api/workers; started before the workers are
            # up it would list none, so it starts now and `up` waits for it.
            # Flower 2.2 refuses its API without authentication unless told this
            # is a local, unauthenticated setup (it listens on 127.0.0.1 only).
            flower_env = dict(env, FLOWER_UNAUTHENTICATED_API="true")
            port = str(self.settings.flower_port)
            cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "flower"]
            cmd += [f"--port={port}", "--address=127.0.0.1"]
            self._spawn("flower", cmd, flower_env)
            wait_flower(self.settings.flower_port, self.n_workers, timeout, self.procs["flower"])
        if self.api:
            if "YM_API_TOKENS" in api_env and "YM_API_TOKENS" not in env:
                self.api_token_file = self.log_dir / API_TOKEN_FILE
            cmd = [*py, "api", "--port", str(self.api_port), "--loglevel", self.loglevel]
            self._spawn("api", cmd, api_env)
            wait_api(self.api_url, self.procs["api"], self.log_dir, timeout)
        return self

    @property
    def api_url(self) -> str:
        """Base URL of the stack's HTTP API."""
        return f"http://{self.settings.api_host}:{self.api_port}"

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        self._logs.append(log)
        # Own process group: Ctrl-C reaches only `up`, which stops the children in order.
        self.procs[name] = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def store(self) -> StateStore:
        """A state store on this stack's Redis."""
        return StateStore(connect(self.url), self.settings)

    def wait_ready(self, timeout: float) -> None:
        """Block until all workers registered and a dispatcher holds the lease."""
        store = self.store()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise YardmasterError(
                        f"{name} exited with code {proc.returncode}; see {self.log_dir}/{name}.log"
                    )
            registered = len(store.load_workers())
            if registered >= self.n_workers and store.redis.exists(store.keys.leader):
                return
            time.sleep(0.1)
        raise YardmasterError(
            f"the stack was not ready within {timeout:g}s; logs in {self.log_dir}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Stop workers first (they finish running tasks), then the rest, then Redis."""
        order = [n for n in self.procs if n.startswith("w")] + [
            n for n in self.procs if not n.startswith("w")
        ]
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
        for log in self._logs:
            log.close()
        if self.redis is not None:
            clear_runtime(self.settings.namespace)
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_flower(
    port: int, workers: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> dict[str, Any]:
    """Wait until Flower's API lists ``workers`` workers; returns its /api/workers answer."""
    url = f"http://127.0.0.1:{port}/api/workers?refresh=1"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise YardmasterError(f"flower exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                found: dict[str, Any] = json.loads(reply.read())
            if len(found) >= workers:
                return found
            last = f"it lists {len(found)} of {workers} workers"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise YardmasterError(f"Flower on port {port} was not ready within {timeout:g}s: {last}")


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    slots: Annotated[int, typer.Option(min=1, max=512, help="Slots per worker.")] = 2,
    strategy: Annotated[str | None, typer.Option(help="Strategy; default YM_STRATEGY.")] = None,
    flower: Annotated[bool, typer.Option(help="Start Flower (workers then send events).")] = True,
    monitor: Annotated[
        bool, typer.Option(help="Start yardmaster's monitor (/metrics, /dashboard).")
    ] = True,
    monitor_port: Annotated[
        int | None, typer.Option(help="Port of the monitor; default YM_MONITOR_PORT.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level of the processes.")] = "WARNING",
    api: Annotated[bool, typer.Option(help="Start the HTTP API (yardmaster api).")] = True,
    api_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="HTTP API port; default YM_API_PORT.")
    ] = None,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C."""
    settings = load_settings(**({"strategy": strategy} if strategy else {}))
    port = (monitor_port or settings.monitor_port) if monitor else None
    stack = Stack(
        settings,
        workers=workers,
        slots=slots,
        flower=flower,
        monitor_port=port,
        loglevel=loglevel.upper(),
        api=api,
        api_port=api_port,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print("[bold]yardmaster up[/]: starting ...")
    try:
        stack.start()
        shown = redact_url(stack.url)
        console.print(f"  Redis      {shown}" + ("  (embedded)" if stack.redis else ""))
        console.print(f"  dispatcher strategy {stack.strategy}")
        console.print(f"  workers    {workers} x {slots} slots")
        if flower:
            console.print(f"  Flower     http://127.0.0.1:{settings.flower_port}/")
        if api:
            console.print(f"  HTTP API   {stack.api_url}/docs")
            if stack.api_token_file is not None:
                console.print(f"             admin token in {stack.api_token_file} (this run only)")
            elif not settings.api_auth:
                console.print(f"  [bold red]WARNING[/] {AUTH_OFF_WARNING}", highlight=False)
        if port is not None:
            console.print(f"  monitor    http://127.0.0.1:{port}/dashboard  (and /metrics)")
        console.print(f"  logs       {stack.log_dir}")
        console.print(
            "Ready. Try `yardmaster submit sleep 0.5` and `yardmaster status` in another shell; Ctrl-C stops."
        )
        while not stop.wait(1.0):
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    raise YardmasterError(
                        f"{name} exited with code {proc.returncode}; see {stack.log_dir}/{name}.log"
                    )
    finally:
        console.print("stopping ...")
        stack.stop()
        console.print("stopped.")
