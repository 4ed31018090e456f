"""The HTTP API as a command: refused without tokens, loud when auth is off, and part of
``yardmaster up`` with a token made for the run."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

from scheduler.embedded import free_port
from tests.conftest import ROOT


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _wait_live(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            if httpx.get(url + "/healthz/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def test_the_api_refuses_to_start_without_tokens_and_warns_loudly_when_auth_is_off(
    redis_server, tmp_path
):
    cmd = [sys.executable, "-m", "scheduler.cli", "api", "--port", str(free_port())]
    refused = subprocess.run(
        cmd, env=_env(YM_REDIS_URL=redis_server.url), capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "YM_API_TOKENS" in refused.stderr
    assert "YM_API_AUTH=false" in refused.stderr
    for bad in (
        '[{"name": "ops", "scope": "admin", "token": "s3cret-s3cret-s3cret"',  # not JSON
        '[{"name": "ops", "scope": "root", "token": "s3cret-s3cret-s3cret"}]',  # no such scope
        '[{"name": "ops", "scope": "admin", "token": "s3cret"}]',  # too short
    ):
        wrong = subprocess.run(
            cmd,
            env=_env(YM_REDIS_URL=redis_server.url, YM_API_TOKENS=bad),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode == 2, wrong.stderr
        assert "YM_API_TOKENS" in wrong.stderr
        assert "s3cret" not in wrong.stderr

    port = free_port()
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        open_api = subprocess.Popen(
            [sys.executable, "-m", "scheduler.cli", "api", "--port", str(port)],
            env=_env(YM_REDIS_URL=redis_server.url, YM_API_AUTH="false"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_live(url, open_api)
        assert httpx.get(url + "/v1/workers").json() == {"workers": []}
        text = log.read_text()
        assert "WARNING" in text
        assert "WITHOUT A TOKEN" in text
    finally:
        open_api.terminate()
        open_api.wait(timeout=20)


def test_up_starts_the_api_with_a_token_for_the_run_and_stops_it(tmp_path):
    namespace = "upapi" + uuid.uuid4().hex[:6]
    port = free_port()
    cmd = [sys.executable, "-m", "scheduler.cli", "up", "--workers", "1", "--no-flower"]
    up = subprocess.Popen(
        [*cmd, "--api-port", str(port)],
        env=_env(YM_NAMESPACE=namespace),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("Ready.") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = up.stdout.readline()
            assert line, "up exited early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/docs" in text
        token_file = Path(re.search(r"admin token in (\S+)", text).group(1))
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert token not in text
        api_pid = next(
            p.pid
            for p in psutil.Process(up.pid).children(recursive=True)
            if " api " in " ".join(p.cmdline()) + " "
        )

        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/v1/workers").status_code == 401
        task = httpx.post(
            url + "/v1/tasks", json={"name": "sleep", "args": [0.01]}, headers=headers
        )
        assert task.status_code == 201, task.text
        done = httpx.get(
            f"{url}/v1/tasks/{task.json()['id']}/result",
            params={"wait": 30},
            headers=headers,
            timeout=60,
        ).json()
        assert done["state"] == "succeeded"
        assert httpx.get(url + "/healthz/ready").json()["ready"] is True

        # The stack's monitor serves the API under /api with the run's token, so that
        # the dashboard can roll the strategy back on its own origin.
        monitor = re.search(r"monitor +(http://\S+)/dashboard", text).group(1)
        assert httpx.get(monitor + "/monitor/config").json() == {"api": "api/"}
        steer = monitor + "/api/v1/strategy"
        assert httpx.post(steer + "/rollback").status_code == 401
        for name in ("fifo", "priority"):
            set_to = httpx.put(steer, json={"strategy": name}, headers=headers)
            assert set_to.status_code == 200, set_to.text
        rolled = httpx.post(steer + "/rollback", headers=headers)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["strategy"] == "fifo"

        up.send_signal(signal.SIGINT)
        rest = up.communicate(timeout=60)[0]
        assert up.returncode == 0, rest
        assert not psutil.pid_exists(api_pid) or psutil.Process(api_pid).status() == "zombie"
    finally:
        if up.poll() is None:
            up.kill()
