"""`yardmaster up`: the whole stack in the foreground; Ctrl-C (SIGINT) stops all of it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import psutil

from scheduler.embedded import runtime_file


def test_up_runs_the_stack_on_an_embedded_redis_and_ctrl_c_stops_everything():
    namespace = "up" + uuid.uuid4().hex[:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env["YM_NAMESPACE"] = namespace
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monitor_port = sock.getsockname()[1]
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "up",
            "--workers",
            "2",
            "--no-flower",
            "--no-api",
            "--monitor-port",
            str(monitor_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("Ready.") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = up.stdout.readline()
            assert line, "up exited early:\n" + "".join(lines)
            lines.append(line)
        assert any("(embedded)" in line for line in lines)
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4  # redis-server, dispatcher, 2 workers (and pool processes)

        # another shell finds the embedded Redis through the runtime file
        assert json.loads(runtime_file(namespace).read_text())["redis_url"].startswith("redis://")
        cli = [sys.executable, "-m", "scheduler.cli"]
        out = subprocess.run(
            [*cli, "submit", "sleep", "0.01", "--wait"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert '"slept": 0.01' in out.stdout
        status = json.loads(
            subprocess.run(
                [*cli, "status", "--json"], env=env, capture_output=True, text=True, timeout=60
            ).stdout
        )
        assert len(status["workers"]) == 2
        assert status["dispatcher"]["leader"] is True
        assert any(f"http://127.0.0.1:{monitor_port}/dashboard" in line for line in lines)
        deadline = time.monotonic() + 30
        metrics = ""
        while True:  # the monitor `up` started serves the same cluster
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/metrics") as r:
                    metrics = r.read().decode()
            except OSError:
                pass
            # a snapshot is up to YM_MONITOR_INTERVAL old: it may predate the workers
            if "ym_workers 2" in metrics or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "ym_workers 2" in metrics, metrics
        assert 'ym_tasks_total{event="succeeded"}' in metrics

        up.send_signal(signal.SIGINT)
        rest = up.communicate(timeout=60)[0]
        assert up.returncode == 0, rest
        assert "stopped." in rest
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {[p.pid for p in alive]}"
        assert not runtime_file(namespace).exists()
    finally:
        if up.poll() is None:
            up.kill()
