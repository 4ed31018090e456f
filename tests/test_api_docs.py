"""The Python and curl examples of docs/api.md, run as written against a live stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api_live import TOKENS, live_stack

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _example(kind: str) -> str:
    found = re.findall(rf"<!-- example: {kind} -->\n```{kind}\n(.*?)```", DOC.read_text(), re.S)
    assert len(found) == 1, f"docs/api.md must hold one {kind} example"
    return found[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with live_stack(tmp_path_factory.mktemp("docs")) as live:
        yield live


def _env(stack) -> dict[str, str]:
    return dict(
        os.environ,
        YM_API_URL=stack.url,
        YM_API_TOKEN=TOKENS["submit"],
        YM_ADMIN_TOKEN=TOKENS["admin"],
    )


def test_the_python_example_runs_against_a_live_stack(stack):
    before = stack.counters().get("submitted", 0)
    run = subprocess.run(
        [sys.executable, "-c", _example("python")],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("succeeded {'slept': 0.05")
    assert lines[1:4] == ["succeeded"] * 3
    assert lines[4].startswith("422 priority priority=12 is not accepted")
    assert stack.counters()["submitted"] == before + 4


def test_the_curl_example_runs_against_a_live_stack(stack):
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _example("bash")],
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    replies = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    result, page, workers, changed, aged, rolled = replies
    assert result["state"] == "succeeded"
    assert result["result"]["slept"] == 0.05
    assert result["id"] in [t["id"] for t in page["tasks"]]
    assert [w["name"] for w in workers["workers"]] == ["w1@api"]
    assert changed["strategy"] == "fifo"
    assert changed["who"] == "api:admin-user"
    assert aged["params"] == {"priority_aging": 0.5}
    assert rolled["version"] == aged["version"] + 1
    assert rolled["strategy"] == "fifo"
    assert rolled["note"] == f"rollback to version {changed['version']}"
