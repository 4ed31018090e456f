"""Run Celery's integration tests on plain Celery and on yardmaster, and compare.

    python -m tests.celery_suite [--target both|plain|yardmaster] [-k EXPR]
                                 [--out benchmarks/results/celery_suite.json]

The celery sdist of the installed version is downloaded once (``pip download``) into
``~/.cache/yardmaster/celery-suite``; its ``t/`` folder and ``pyproject.toml`` (for its
pytest settings) are used as they are. Each pass gets a private ``redis-server``:
plain Celery uses it as broker (db 0) and result backend (db 1), as Celery's own CI
does with ``TEST_BROKER`` / ``TEST_BACKEND``; yardmaster uses it as its store, broker
and (through its records) result backend. The JSON holds each pass's counts and every
test's outcome; the comparison lists the tests that pass on plain Celery and not on
yardmaster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import celery

from scheduler.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
FILES = ("t/integration/test_tasks.py", "t/integration/test_canvas.py")
CACHE = Path.home() / ".cache" / "yardmaster" / "celery-suite"


def sdist() -> Path:
    """The extracted test tree of the celery sdist matching the installed Celery."""
    version = celery.__version__
    tree = CACHE / f"celery-{version}"
    if (tree / "t" / "integration").is_dir():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"celery-{version}.tar.gz"
    if not archive.exists():
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:"]
        cmd += ["--no-deps", "--dest", str(CACHE), f"celery=={version}"]
        subprocess.run(cmd, check=True)
    tree.mkdir(exist_ok=True)
    prefix = f"celery-{version}/"
    with tarfile.open(archive) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix + "t/") or m.name == prefix + "pyproject.toml"
        ]
        for member in wanted:
            member.name = member.name[len(prefix) :]
        tar.extractall(tree, members=wanted, filter="data")
    return tree


def run_pass(target: str, tree: Path, keyword: str | None, timeout: int, out: Path) -> dict:
    """One pass of the suite against ``target``; its counts and outcomes."""
    redis = EmbeddedRedis().start()
    junit = out.with_name(f"celery_suite_{target}.xml")
    env = dict(os.environ, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port))
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(ROOT)])
    cmd = [sys.executable, "-m", "pytest", *FILES, "-p", "celery.contrib.pytest"]
    cmd += ["-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts="]
    cmd += [f"--timeout={timeout}", f"--junitxml={junit}", "-q", "-rfEs"]
    if target == "plain":
        env["TEST_BROKER"] = f"redis://127.0.0.1:{redis.port}/0"
        env["TEST_BACKEND"] = f"redis://127.0.0.1:{redis.port}/1"
    else:
        env["YM_REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
        env["YM_NAMESPACE"] = "ymsuite"
        env["YM_SUITE_LOGS"] = str(out.with_name("celery_suite_logs"))
        Path(env["YM_SUITE_LOGS"]).mkdir(parents=True, exist_ok=True)
        cmd[cmd.index("celery.contrib.pytest") - 1 : cmd.index("celery.contrib.pytest") - 1] = [
            "-p",
            "tests.celery_suite.plugin",
        ]
    if keyword:
        cmd += ["-k", keyword]
    started = time.monotonic()
    try:
        subprocess.run(cmd, cwd=tree, env=env, check=False)
    finally:
        redis.stop()
    outcomes = read_junit(junit)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"seconds": round(time.monotonic() - started), "counts": counts, "outcomes": outcomes}


def read_junit(path: Path) -> dict[str, str]:
    """``{test id: passed|failed|error|skipped}`` from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "error" in kinds:
            outcomes[name] = "error"
        elif "failure" in kinds:
            outcomes[name] = "failed"
        elif "skipped" in kinds:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def compare(report: dict) -> list[str]:
    """The tests that pass on plain Celery and do not pass on yardmaster."""
    plain = report["plain"]["outcomes"]
    ours = report["yardmaster"]["outcomes"]
    return sorted(t for t, o in plain.items() if o == "passed" and ours.get(t) != "passed")


def table(report: dict) -> str:
    """The Markdown table of counts, as in docs/celery.md."""
    kinds = ("passed", "failed", "error", "skipped")
    lines = ["| target | " + " | ".join(kinds) + " | time (s) |", "|---" * (len(kinds) + 2) + "|"]
    for target in ("plain", "yardmaster"):
        if target in report:
            counts = report[target]["counts"]
            cells = " | ".join(str(counts.get(k, 0)) for k in kinds)
            lines.append(f"| {target} | {cells} | {report[target]['seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.celery_suite", description=__doc__)
    parser.add_argument("--target", choices=("both", "plain", "yardmaster"), default="both")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a subset)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/celery_suite.json")
    args = parser.parse_args(argv)
    tree = sdist()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    report["celery"] = celery.__version__
    targets = ("plain", "yardmaster") if args.target == "both" else (args.target,)
    for target in targets:
        report[target] = run_pass(target, tree, args.keyword, args.timeout, args.out)
        args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(table(report))
    if "plain" in report and "yardmaster" in report:
        missing = compare(report)
        report["passes_on_plain_only"] = missing
        args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        print(f"\n{len(missing)} tests pass on plain Celery and not on yardmaster:")
        for test in missing:
            print(f"  {test} ({report['yardmaster']['outcomes'].get(test, 'not run')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
