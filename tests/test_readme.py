"""The README works as written: each of its shell and Python examples is run, in order,
against a private cluster, so a README change that breaks one fails here.

The cluster is started by the fixtures (a dispatcher, a worker, the HTTP API); the
README's local addresses (``redis://127.0.0.1:6379/0``, ``http://127.0.0.1:8000``)
are replaced by the private ones, and ``$TOKEN`` is an admin token of its API. A
Python block whose first line is ``# NAME.py`` is a module: it is written to that
file, next to where the other blocks run. A command that starts a worker (``celery
-A ... worker``, ``yardmaster worker``) runs in the background until the end. The
opening block (install, demo, test suite) is checked by tests/test_setup.py in a
fresh clone; here its demo command runs, on a small workload.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from scheduler.cli import app
from tests.conftest import ROOT

README = ROOT / "README.md"
BIN = str(Path(sys.executable).parent)
TOKEN = "readme-" + uuid.uuid4().hex
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
LOCAL_API = "http://127.0.0.1:8000"
SERVICE = re.compile(r"^(celery -A \S+ worker|yardmaster worker)\b")


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced bash and python block, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```(bash|python)\n(.*?)```", text, re.S)


def commands(block: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip()]


def test_the_readme_has_the_examples_this_test_runs():
    kinds = [kind for kind, _ in blocks()]
    assert kinds[0] == "bash"  # the opening block: install, demo, tests
    assert "python" in kinds[1:]
    assert "bash" in kinds[1:]


def test_the_readme_demo_command_runs(tmp_path):
    opening = commands(blocks()[0][1])
    demo = opening[0].split("&&")[-1].strip()
    assert demo == "yardmaster demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env.update(
        PATH=BIN + os.pathsep + env["PATH"],
        XDG_RUNTIME_DIR=str(tmp_path),
        YM_NAMESPACE="demo" + uuid.uuid4().hex[:6],
        # the dispatcher checks its count of pending tasks each refresh: often here,
        # so a false "inbox entry was lost" while the breaker holds tasks would show
        YM_HEARTBEAT_INTERVAL="0.2",
        COLUMNS="200",
    )
    done = subprocess.run(
        ["bash", "-c", demo + " --tasks 40"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # the comparison: the same workload under fifo and priority, side by side
    row = re.search(r"wait p95, priority 7-9\s*\S\s*([\d.]+)\s*\S\s*([\d.]+)", out)
    assert row is not None, out
    assert re.search(r"high-priority tasks \(priority 7-9\) waited [\d.]+s \(p95\) under fifo", out)
    assert "makespan" in out
    # the breaker, opened on purpose, and said so
    assert "breaker of flaky: closed -> open" in out, out
    assert "breaker of flaky: half_open -> closed" in out, out
    assert re.search(r"(\d+) failed \(the outage\), (\d+) succeeded", out)
    assert "8 failed (the outage), 16 succeeded" in out
    assert "The 16 tasks submitted while it was open stayed pending in Redis" in out
    logs = re.search(r"logs (\S+)\)", out)
    assert logs is not None, out
    text = {p.name: p.read_text() for p in Path(logs.group(1)).glob("*.log")}
    assert "breaker flaky: closed -> open" in text["dispatcher.log"]
    for name, log in text.items():
        assert "inbox entry was lost" not in log, f"{name}: {log[-2000:]}"


def test_every_example_after_the_opening_block_works_on_a_private_cluster(cluster, tmp_path):
    tokens = json.dumps([{"name": "readme", "scope": "admin", "token": TOKEN}])
    c = cluster(api_tokens=tokens)
    c.dispatcher()
    c.worker("readme@test", slots=2)
    api_url = c.api()
    work = tmp_path / "work"
    work.mkdir()
    env = c.env(
        PATH=BIN + os.pathsep + os.environ["PATH"],
        PYTHONPATH=f"{work}{os.pathsep}{ROOT}",
        TOKEN=TOKEN,
    )

    def local(text: str) -> str:
        return text.replace(LOCAL_REDIS, c.url).replace(LOCAL_API, api_url)

    ran = 0
    for number, (kind, text) in enumerate(blocks()[1:], start=2):
        where = f"README block {number} ({kind})"
        if kind == "python":
            first = text.splitlines()[0]
            module = re.fullmatch(r"# (\w+\.py)", first.strip())
            if module:
                (work / module.group(1)).write_text(local(text), encoding="utf-8")
                continue
            done = subprocess.run(
                [sys.executable, "-"], input=local(text),
                env=env, cwd=work, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, f"{where}:\n{text}\n{done.stdout}{done.stderr}"
            ran += 1
            continue
        for command in commands(local(text)):
            if SERVICE.match(command):
                before = len(c.store.workers.load())
                c.spawn(f"readme-{number}", ["bash", "-c", "exec " + command], **env)
                c.wait_for(lambda n=before: len(c.store.workers.load()) > n, command, 60)
                continue
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, f"{where}: {command}\n{done.stdout}{done.stderr}"
            ran += 1
    assert ran >= 4
    # what the examples did is visible: the module's own worker joined, 1000+ tasks went in
    assert len(c.store.workers.load()) == 2
    assert c.store.events.counters().get("submitted", 0) > 1000


def test_every_command_in_the_readme_table_exists():
    from typer.testing import CliRunner

    rows = re.findall(
        r"^\| `yardmaster ([a-z]+)((?: [a-z]+(?:\\\|[a-z]+)*)?)", README.read_text(), re.M
    )
    assert len(rows) >= 15
    runner = CliRunner()
    for command, subcommands in rows:
        names = [s for s in subcommands.strip().split("\\|") if s] or [""]
        for sub in names:
            args = [command, *([sub] if sub else []), "--help"]
            done = runner.invoke(app, args)
            assert done.exit_code == 0, f"yardmaster {' '.join(args)}: {done.output}"
