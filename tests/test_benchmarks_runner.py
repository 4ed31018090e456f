"""``python -m benchmarks``: one command runs the benchmarks, records the machine and the
commit, and regenerates the tables of docs/benchmarks.md (here on a copy).

Two cheap benchmarks (simulator speed and decision cost, no Redis) in their quick form.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- bench:{name} -->\n(.*?)<!-- /bench -->", text, re.S)
    assert match is not None, f"no bench:{name} section"
    return match.group(1)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_quick_run_of_two_benchmarks_records_the_machine_and_rewrites_only_their_tables(
    tmp_path,
):
    doc = tmp_path / "benchmarks.md"
    original = DOC.read_text()
    doc.write_text(original)
    results = tmp_path / "results.json"

    done = _run(
        "all",
        "--quick",
        "--only",
        "simulator_speed,decision_cost",
        "--json-out",
        str(results),
        "--doc",
        str(doc),
        "--note",
        "quick run in a test",
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads(results.read_text())
    assert report["quick"] is True
    assert set(report["benchmarks"]) == {"simulator_speed", "decision_cost"}
    for key in ("cpu_model", "nproc", "python", "celery", "redis_server", "loadavg_start"):
        assert key in report["machine"], key
    assert len(report["machine"]["loadavg_end"]) == 3
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert report["code"]["commit"].startswith(commit)
    speed = report["benchmarks"]["simulator_speed"]
    assert speed["tasks"] == 5000
    assert set(speed["strategies"]) == {"fifo", "sjf"}

    written = doc.read_text()
    table = _section(written, "simulator_speed")
    assert f"commit `{commit}`" in table
    assert "quick run in a test" in table
    for name, figures in speed["strategies"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{figures['tasks_per_s']:,}" in row
    cost = _section(written, "decision_cost")
    assert "1,000 pending" in cost
    assert "10,000 pending" in cost
    assert "1,000,000 pending" not in cost
    # Everything outside the two tables is as it was.
    for name in ("throughput", "chaos", "memory", "strategies"):
        assert _section(written, name) == _section(original, name)
    outside = re.sub(r"<!-- bench:(\w+) -->\n.*?<!-- /bench -->", r"\1", written, flags=re.S)
    assert outside == re.sub(
        r"<!-- bench:(\w+) -->\n.*?<!-- /bench -->", r"\1", original, flags=re.S
    )

    # The tables command alone writes the same tables from the results file.
    doc.write_text(original)
    again = _run("tables", str(results), "--doc", str(doc), "--note", "quick run in a test")
    assert again.returncode == 0, again.stderr[-3000:]
    assert doc.read_text() == written


def test_the_tables_command_refuses_a_document_without_the_markers_it_needs(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:chaos -->\n<!-- /bench -->\n")
    figures = {"redis_bytes_per_task": 380.0, "dispatcher_bytes_per_task": 480.0}
    figures["mem_allocator"] = "libc"
    result = tmp_path / "memory.json"
    result.write_text(json.dumps({"figures": {"1000": {"yardmaster": figures}}}))
    done = _run("tables", f"memory={result}", "--doc", str(doc))
    assert done.returncode != 0
    assert "no <!-- bench:NAME --> markers for ['memory']" in done.stderr
    assert doc.read_text() == "# Benchmarks\n\n<!-- bench:chaos -->\n<!-- /bench -->\n"
