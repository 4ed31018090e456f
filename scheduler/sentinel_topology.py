"""A local Redis with Sentinel: a primary, replicas and Sentinels on loopback ports.

``yardmaster up --ha`` and the failover tests start one to try what a
Sentinel deployment does: the primary and each replica are private
``redis-server`` processes (:class:`~scheduler.embedded.EmbeddedRedis`, AOF on),
the Sentinels ``redis-sentinel`` processes (``redis-server --sentinel`` where
Debian's wrapper is missing), each with a config file in the topology's own
directory, which Sentinel rewrites as it learns about the others. Clients reach it by
:attr:`SentinelRedis.url` (``sentinel://...``) and the master's name.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.embedded import EmbeddedRedis, free_port, redis_server_binary
from scheduler.errors import RedisUnavailableError, StoreError
from scheduler.store.sentinel import ask

HOST = "127.0.0.1"


def sentinel_command() -> list[str]:
    """How to start a Sentinel: ``redis-sentinel``, else ``redis-server --sentinel``."""
    found = shutil.which("redis-sentinel")
    return [found] if found else [redis_server_binary(), "--sentinel"]


class SentinelRedis:
    """A primary, ``replicas`` replicas and ``sentinels`` Sentinels on free loopback ports.

    Args:
        replicas: Replicas of the primary (at least 1, to have one to promote).
        sentinels: Sentinel processes (a majority of them is the failover quorum).
        master: The name the Sentinels monitor the primary by.
        down_after_ms: How long the master must not answer before a Sentinel holds it
            down (Sentinel's ``down-after-milliseconds``).
        failover_timeout_ms: Sentinel's ``failover-timeout``.
    """

    def __init__(
        self,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        master: str = "mymaster",
        down_after_ms: int = 2000,
        failover_timeout_ms: int = 10000,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"replicas={replicas}: a failover needs at least 1 replica")
        if sentinels < 1:
            raise ValueError(f"sentinels={sentinels}: at least 1 Sentinel is needed")
        self.master = master
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.dir = Path(tempfile.mkdtemp(prefix="yardmaster-sentinel-"))
        self.servers = [EmbeddedRedis(appendonly=True)]
        primary = self.servers[0].port
        self.servers += [
            EmbeddedRedis(appendonly=True, options=("--replicaof", HOST, str(primary)))
            for _ in range(replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The ``sentinel://H:P;sentinel://H:P/0`` URL of the Sentinels."""
        return ";".join(f"sentinel://{HOST}:{port}" for port in self.sentinel_ports) + "/0"

    @property
    def quorum(self) -> int:
        """Sentinels that must agree the master is down."""
        return len(self.sentinel_ports) // 2 + 1

    def start(self, timeout: float = 30.0) -> SentinelRedis:
        """Start the servers, then the Sentinels; return once every Sentinel knows the
        master, all its replicas and the other Sentinels (so a failover can happen)."""
        try:
            for server in self.servers:
                server.start()
            for port in self.sentinel_ports:
                self._sentinels.append(self._start_sentinel(port))
            self._wait(self._all_known, "the Sentinels to know the topology", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sentinel(self, port: int) -> subprocess.Popen[bytes]:
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {HOST}",
                    f"dir {self.dir}",
                    f"sentinel monitor {self.master} {HOST} {self.servers[0].port} {self.quorum}",
                    f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.master} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {self.master} 1",
                    "",
                ]
            )
        )
        log = open(self.dir / f"sentinel-{port}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [*sentinel_command(), str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return proc

    def _ask(self, port: int, *command: str) -> Any:
        return ask(HOST, port, *command)

    def _all_known(self) -> bool:
        for port in self.sentinel_ports:
            try:
                info = self._ask(port, "SENTINEL", "MASTER", self.master)
            except StoreError:
                return False
            # redis-py reads the reply into a dict with its numbers as int
            if int(info["num-slaves"]) < len(self.servers) - 1:
                return False
            if int(info["num-other-sentinels"]) < len(self.sentinel_ports) - 1:
                return False
        return True

    def _wait(self, ready: Callable[[], Any], what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self._sentinels:
                if proc.poll() is not None:
                    raise RedisUnavailableError(
                        f"a Sentinel exited with {proc.returncode}; see {self.dir}"
                    )
            got = ready()
            if got:
                return got
            time.sleep(0.1)
        raise RedisUnavailableError(f"waited {timeout:g}s for {what}; logs in {self.dir}")

    def master_port(self) -> int | None:
        """The master's port as the first Sentinel that answers reports it."""
        for port in self.sentinel_ports:
            try:
                _, found = self._ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)
                return int(found)
            except (StoreError, TypeError, ValueError):
                continue
        return None

    def server(self, port: int) -> EmbeddedRedis:
        """The server listening on ``port``."""
        return next(s for s in self.servers if s.port == port)

    def kill_master(self) -> EmbeddedRedis:
        """SIGKILL the current master (no AOF flush, no goodbye); returns its server."""
        port = self.master_port()
        if port is None:
            raise RedisUnavailableError("no Sentinel names a master")
        victim = self.server(port)
        victim.kill()
        return victim

    def wait_failover(self, old: int, timeout: float = 60.0) -> int:
        """Wait until the Sentinels name a master other than port ``old`` and it answers
        as a master; returns its port."""

        def promoted() -> int | None:
            port = self.master_port()
            if port is None or port == old:
                return None
            try:
                role = self._ask(port, "ROLE")
            except StoreError:
                return None
            return port if role[0] == "master" else None

        return int(self._wait(promoted, "a replica to be promoted", timeout))

    def rejoin(self, server: EmbeddedRedis, timeout: float = 30.0) -> None:
        """Start a killed server again, as a replica of the current master (Sentinel
        would turn it into one anyway; naming the master at start leaves no moment in
        which it answers as a second master)."""
        port = self.master_port()
        if port is None:
            raise RedisUnavailableError("no Sentinel names a master")
        server.options = (*server.options, "--replicaof", HOST, str(port))
        server.start(timeout)

    def stop(self) -> None:
        """Stop the Sentinels and the servers, and remove their directories."""
        for proc in self._sentinels:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._sentinels = []
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
