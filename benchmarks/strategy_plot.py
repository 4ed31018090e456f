"""Every strategy on every workload kind, in the simulator: numbers and two bar charts.

Usage::

    python -m benchmarks.strategy_plot [--tasks N] [--workers W] [--json-out FILE]

For each kind of ``scheduler.workload_gen`` (seed fixed per kind, 2,000
tasks sized for 4 workers x 1 slot by default) it simulates every strategy in
``scheduler.settings.STRATEGY_NAMES`` with the settings' defaults, exactly as
``yardmaster simulate FILE --workers W --strategy all --json`` does, and
writes the metrics to ``benchmarks/results/strategies.json``. It draws two
grouped bar charts as hand-written SVG: mean flow and deadline misses per
strategy, one panel per kind, each panel with its own scale (the kinds differ
by orders of magnitude), to ``docs/img/mean_flow.svg`` and
``docs/img/deadline_misses.svg``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tree this file belongs to
    sys.path.insert(0, str(ROOT))

from benchmarks.common import code_state, emit, finish_machine, machine, progress, today  # noqa: E402
from scheduler.adaptive import build_strategy  # noqa: E402
from scheduler.settings import STRATEGY_NAMES, load_settings  # noqa: E402
from scheduler.simulator import Simulator, metrics  # noqa: E402
from scheduler.strategies import FifoStrategy  # noqa: E402
from scheduler.workload_gen import KINDS, generate  # noqa: E402

SEEDS = {"mixed": 11, "bursty": 12, "deadlines": 13, "affinity": 14, "phases": 15}
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948")


class PinnedByKey(FifoStrategy):
    """A reference, not a strategy of the registry: each affinity key has one worker.

    Submission order; a task waits for the worker its key belongs to (key
    number modulo the workers). It shows what placement by affinity can gain
    on the ``affinity`` kind.
    """

    name = "pinned_by_key"

    def pick_worker(self, task, workers, snapshot):
        if task.affinity_key is None:
            return super().pick_worker(task, workers, snapshot)
        names = sorted(w.name for w in snapshot.workers)
        owner = names[int(task.affinity_key.rsplit("-", 1)[1]) % len(names)]
        return next((w for w in workers if w.name == owner), None)


def nice_step(top: float, ticks: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) covering ``top`` in ``ticks``."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def label(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}" if value < 10 else f"{value:.0f}"


def bar_chart(title: str, unit: str, kinds: list[str], series: list[str], values) -> str:
    """SVG with one panel per kind, one bar per series in each, a y axis per panel, a legend."""
    panel_w, panel_h, gap = 170, 220, 30
    left, top, bottom = 70, 70, 50
    width = left + len(kinds) * (panel_w + gap)
    height = top + panel_h + bottom
    bar_w = (panel_w - 20) / len(series)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<text transform="translate(16 {top + panel_h / 2}) rotate(-90)" '
        f'text-anchor="middle" font-size="12">{escape(unit)}</text>',
    ]
    legend_x = left
    for i, name in enumerate(series):
        out.append(
            f'<rect x="{legend_x}" y="34" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>'
        )
        out.append(f'<text x="{legend_x + 16}" y="44">{escape(name)}</text>')
        legend_x += 22 + 7 * len(name) + 20
    for k, kind in enumerate(kinds):
        x0 = left + k * (panel_w + gap)
        y0 = top + panel_h  # the x axis
        highest = max(values[kind][s] for s in series)
        step = nice_step(highest)
        ceiling = step * max(1, math.ceil(highest / step - 1e-9))
        tick = 0.0
        while tick <= ceiling + 1e-9:
            y = y0 - panel_h * tick / ceiling
            out.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#ddd"/>'
            )
            out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{label(tick)}</text>')
            tick += step
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{y0}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + panel_w}" y2="{y0}" stroke="black"/>')
        for i, name in enumerate(series):
            value = values[kind][name]
            h = panel_h * value / ceiling
            x = x0 + 10 + i * bar_w
            out.append(
                f'<rect x="{x + 2:.1f}" y="{y0 - h:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[i % len(COLOURS)]}"><title>{escape(kind)} / {escape(name)}: '
                f"{label(value)}</title></rect>"
            )
            out.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y0 - h - 3:.1f}" text-anchor="middle" '
                f'font-size="9">{label(round(value, 3))}</text>'
            )
        out.append(
            f'<text x="{x0 + panel_w / 2}" y="{y0 + 20}" text-anchor="middle" '
            f'font-size="12" font-weight="bold">{escape(kind)}</text>'
        )
    out.append(
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" fill="#555">workload kind '
        "(each panel has its own scale)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "strategies.json"
    )
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    info = machine()
    settings = load_settings()
    kinds = list(KINDS)
    table: dict[str, dict[str, dict]] = {}
    commands = {}
    by_phase: dict[str, dict[str, dict]] = {}
    for kind in kinds:
        tasks = generate(kind, args.tasks, SEEDS[kind], workers=args.workers)
        commands[kind] = (
            f"yardmaster workload gen --kind {kind} --n {args.tasks} --seed {SEEDS[kind]} "
            f"--workers {args.workers}"
        )
        table[kind] = {}
        for name in STRATEGY_NAMES:
            sim = Simulator.from_settings(
                build_strategy(name, settings), settings, workers=args.workers
            )
            records = sim.run(tasks)
            table[kind][name] = metrics(records, args.workers)
            if kind == "phases":
                by_phase[name] = {
                    p: metrics([r for r in records if r.task.id.startswith(p)], args.workers)
                    for p in "abc"
                }
        progress(
            f"{kind:<10} "
            + "  ".join(
                f"{n}: flow {m['mean_flow']:.3f} miss {m['deadline_misses']}"
                for n, m in table[kind].items()
            )
        )
    reference = Simulator(
        PinnedByKey(),
        workers=args.workers,
        warm_capacity=settings.warm_capacity,
        warm_factor=settings.warm_factor,
    )
    affinity_tasks = generate("affinity", args.tasks, SEEDS["affinity"], workers=args.workers)
    pinned = metrics(reference.run(affinity_tasks), args.workers)
    progress(
        f"affinity   pinned_by_key: flow {pinned['mean_flow']:.3f} hits {pinned['affinity_hits']}"
    )
    series = list(STRATEGY_NAMES)
    flows = {k: {s: table[k][s]["mean_flow"] for s in series} for k in kinds}
    misses = {k: {s: float(table[k][s]["deadline_misses"]) for s in series} for k in kinds}
    args.img_dir.mkdir(parents=True, exist_ok=True)
    subtitle = f"{args.tasks} tasks, {args.workers} workers x 1 slot, simulator"
    (args.img_dir / "mean_flow.svg").write_text(
        bar_chart(f"Mean flow per strategy ({subtitle})", "mean flow (s)", kinds, series, flows)
    )
    (args.img_dir / "deadline_misses.svg").write_text(
        bar_chart(
            f"Deadline misses per strategy ({subtitle})", "deadline misses", kinds, series, misses
        )
    )
    emit(
        {
            "benchmark": "strategy_plot",
            "command": " ".join(["python -m benchmarks.strategy_plot", *sys.argv[1:]]),
            "date": today(),
            "machine": finish_machine(info),
            "code": code_state(),
            "tasks": args.tasks,
            "workers": args.workers,
            "slots": 1,
            "workload_commands": commands,
            "results": table,
            "affinity_reference": {"pinned_by_key": pinned},
            "phases_by_phase": by_phase,
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
