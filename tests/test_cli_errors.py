"""Every client command meets a Redis it cannot use (a closed port, a wrong password, a
plain-TCP server behind rediss://, a server that never answers) with at most two lines
naming the Redis (password hidden) and what to check, exit code 2 and no traceback;
``yardmaster --debug`` shows the traceback. Run through the real ``yardmaster`` program."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.embedded import EmbeddedRedis, free_port, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
YARDMASTER = str(Path(sys.executable).with_name("yardmaster"))
PASSWORD = "wrong-pass-" + uuid.uuid4().hex[:6]
WORKLOAD = str(ROOT / "examples" / "workloads" / "mixed.jsonl")

CLIENT_COMMANDS = {
    "status": ["status"],
    "status --json": ["status", "--json"],
    "status --watch": ["status", "--watch", "--count", "1"],
    "status ID": ["status", "some-task-id"],
    "submit": ["submit", "sleep", "0.1"],
    "health": ["health"],
    "strategy show": ["strategy", "show"],
    "strategy set": ["strategy", "set", "fifo"],
    "strategy history": ["strategy", "history"],
    "strategy rollback": ["strategy", "rollback"],
    "cache stats": ["cache", "stats"],
    "cache clear": ["cache", "clear"],
    "ratelimit show": ["ratelimit", "show"],
    "ratelimit set": ["ratelimit", "set", "sleep", "5"],
    "ratelimit clear": ["ratelimit", "clear", "sleep"],
    "run": ["run", WORKLOAD, "--strategy", "fifo"],
    "cancel": ["cancel", "some-task-id"],
    "breaker": ["breaker"],
    "submit --after": ["submit", "sleep", "0.1", "--after", "some-task-id"],
    "workflow show": ["workflow", "show", "some-workflow-id"],
    "workflow cancel": ["workflow", "cancel", "some-workflow-id"],
    "trace export": [
        "trace",
        "export",
        "--out",
        "/tmp/ym-cli-errors-{port}.jsonl",
        "--since",
        "1h",
    ],
    "api": ["api", "--port", "{port}"],
    "monitor": ["monitor", "--port", "{port}"],
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """A closed port, a server with a password the client does not know, and a plain-TCP
    server reached through rediss:// (the client then expects a TLS handshake)."""
    plain = EmbeddedRedis().start()
    folder = tempfile.mkdtemp(prefix="yardmaster-auth-")
    port = free_port()
    secured = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", folder, "--requirepass", "the-right-" + uuid.uuid4().hex],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the password-protected redis-server did not start"
            time.sleep(0.05)
        yield {
            "closed port": f"redis://127.0.0.1:{free_port()}/0",
            "wrong password": f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
            "plain TCP behind rediss": f"rediss://127.0.0.1:{plain.port}/0",
        }
    finally:
        secured.terminate()
        secured.wait(timeout=10)
        plain.stop()


def run_command(args: list[str], url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env.update(
        YM_REDIS_URL=url,
        YM_NAMESPACE="err" + uuid.uuid4().hex[:6],
        YM_CLIENT_TIMEOUT="2",
        YM_API_TOKENS=json.dumps([{"name": "t", "scope": "admin", "token": "t" * 24}]),
    )
    args = [a.replace("{port}", str(free_port())) for a in args]
    return subprocess.run(
        [YARDMASTER, *extra, *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("failure", ["closed port", "wrong password", "plain TCP behind rediss"])
@pytest.mark.parametrize("command", list(CLIENT_COMMANDS))
def test_a_client_command_meets_an_unusable_redis_with_two_lines_and_exit_2(
    servers, command, failure
):
    url = servers[failure]
    done = run_command(CLIENT_COMMANDS[command], url)
    out = done.stdout + done.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert done.returncode == 2, out
    assert 1 <= len(lines) <= 2, out
    assert "Traceback" not in out
    assert PASSWORD not in out
    assert url.replace(PASSWORD, "<hidden>") in lines[0], out


def test_a_server_that_never_answers_ends_the_command_after_the_client_timeout():
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        done = run_command(["status"], url)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, lines
    assert len(lines) == 2, lines
    assert f"{url} did not answer within 2s" in lines[0]


def test_debug_shows_the_traceback(servers):
    done = run_command(["status"], servers["closed port"], "--debug")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "ConnectionError" in done.stderr


@pytest.mark.parametrize("command", [["up", "--no-flower", "--no-api", "--no-monitor"], ["demo"]])
def test_up_and_demo_on_an_unreachable_redis_stop_what_they_started_and_exit_2(command, servers):
    done = run_command(command, servers["closed port"])
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out
    assert "cannot reach Redis at " + servers["closed port"] in out


# Commands that need no cluster here: the stack's own processes (dispatcher, worker, up,
# demo: they wait for a Redis or start one), and the offline tools (simulate, tune on a
# file, workload gen).
NOT_CLIENT_COMMANDS = {"demo", "dispatcher", "simulate", "tune", "up", "worker", "workload gen"}


def test_every_command_is_checked_here_or_said_to_need_no_cluster():
    import typer

    from scheduler.cli import app  # reading it loads every command module

    def names(group, prefix: str = "") -> list[str]:
        found = []
        for name, command in group.commands.items():
            full = f"{prefix}{name}"
            if hasattr(command, "commands"):  # a group (typer carries its own click)
                found += names(command, full + " ")
            else:
                found.append(full)
        return found

    covered = {
        " ".join(args[:2]) if args[0] in GROUPS else args[0] for args in CLIENT_COMMANDS.values()
    }
    missing = [
        name for name in names(typer.main.get_command(app))
        if name not in covered and name not in NOT_CLIENT_COMMANDS
    ]  # fmt: skip
    assert not missing, f"commands with no unreachable-Redis check here: {missing}"


GROUPS = {"strategy", "cache", "ratelimit", "workflow", "trace", "workload", "tune"}
