"""The README's first command from a fresh clone, and the compose file (when Docker runs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block of two commands"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2
    return lines


def test_readme_opens_with_the_demo_command_and_ci_runs_its_test_command():
    demo, tests = readme_commands()
    assert demo.endswith("yardmaster demo")
    assert "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_the_readme_demo_command_works_in_a_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    demo, _ = readme_commands()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YM_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    )
    proc = subprocess.run(
        ["bash", "-c", demo], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "the same workload, two strategies" in out
    assert "breaker of flaky: closed -> open" in out
    assert "demo finished" in out


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.docker
def test_the_compose_stack_runs_tasks():
    if not _docker_engine():
        pytest.skip(
            "no Docker engine is running on this machine (the docker client alone is not enough)"
        )
    compose = ["docker", "compose", "-p", "ymtest", "-f", str(ROOT / "docker-compose.yml")]
    try:
        subprocess.run(
            [*compose, "up", "-d", "--build", "--scale", "worker=2"], check=True, timeout=900
        )
        out = subprocess.run(
            [*compose, "run", "--rm", "dispatcher", "yardmaster", "submit", "sleep", "0.1", "--wait"],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert '"slept": 0.1' in out.stdout
    finally:
        subprocess.run([*compose, "down", "-v"], timeout=300)
