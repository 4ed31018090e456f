"""The current-figures tables of docs/benchmarks.md, written from results JSON.

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench -->``;
:func:`regenerate` replaces what is between the markers and nothing else, so
the prose around a table (method, reading) stays as written. A table begins
with the line that says what produced it (command, date, commit, machine)
and ends with the target and whether it is met, judged against the targets
below (issue #21 and earlier), whatever the JSON itself recorded.

The renderers live in ``benchmarks/render.py``; this module finds the
results and the markers.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from benchmarks.render import RENDERERS, Meta

DOC = ROOT / "docs" / "benchmarks.md"
SECTION = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench -->)", re.S)


def _file_date(path: Path) -> str:
    """The date ``path`` was last committed (for result files that do not record their own)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%cs", "--", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out


def load(sources: list[str | Path], note: str = "") -> list[tuple[str, dict[str, Any], Meta]]:
    """(benchmark name, result, meta) for every result in ``sources``.

    A source is the results file of ``python -m benchmarks all`` (every
    benchmark in it), or ``NAME=FILE``: one benchmark's own JSON.
    """
    out: list[tuple[str, dict[str, Any], Meta]] = []
    for source in sources:
        text = str(source)
        name, sep, file = text.partition("=")
        path = Path(file if sep and not Path(text).exists() else text)
        data = json.loads(path.read_text())
        if "benchmarks" in data and isinstance(data["benchmarks"], dict):
            outer_note = note or data.get("note", "")
            for bench, result in data["benchmarks"].items():
                if "error" in result:
                    continue
                out.append((bench, result, Meta.of(result, data, outer_note, _file_date(path))))
        else:
            bench = name if sep else str(data.get("benchmark", path.stem))
            out.append((bench, data, Meta.of(data, {}, note, _file_date(path))))
    return out


def regenerate(doc: Path, sources: list[str | Path], note: str = "") -> list[str]:
    """Rewrite the tables in ``doc`` that ``sources`` have figures for; returns their names."""
    tables: dict[str, str] = {}
    for bench, result, meta in load(sources, note):
        render = RENDERERS.get(bench)
        if render is None:
            raise SystemExit(
                f"no table is made from benchmark {bench!r}; known: {sorted(RENDERERS)}"
            )
        for marker, body in render(result).items():
            tables[marker] = meta.header() + body.rstrip("\n") + "\n"
    text = doc.read_text()
    present = {m.group(2) for m in SECTION.finditer(text)}
    missing = sorted(set(tables) - present)
    if missing:
        raise SystemExit(f"{doc} has no <!-- bench:NAME --> markers for {missing}")
    changed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in tables:
            return match.group(0)
        changed.append(name)
        return match.group(1) + tables[name] + match.group(4)

    doc.write_text(SECTION.sub(replace, text))
    return changed
