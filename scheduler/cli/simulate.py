"""``yardmaster simulate``: predict a strategy's schedule for a workload file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scheduler.adaptive import build_strategy
from scheduler.cli.base import app, finish
from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, load_settings
from scheduler.simulator import METRIC_NAMES, WORKFLOW_METRIC_NAMES, Simulator, outcome_metrics
from scheduler.workload import load_workload


@app.command()
def simulate(
    ctx: typer.Context,
    workload: Annotated[
        Path, typer.Argument(help="Workload file (JSON Lines).", exists=True, dir_okay=False)
    ],
    workers: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated workers.")] = 2,
    slots: Annotated[int, typer.Option(min=1, max=512, help="Slots per worker.")] = 1,
    strategy: Annotated[str, typer.Option(help="A strategy name, or 'all'.")] = "all",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object keyed by strategy.")
    ] = False,
    trace: Annotated[Path | None, typer.Option(help="Write one JSON line per task here.")] = None,
    seed: Annotated[
        int, typer.Option(help="Seed (the engine is deterministic; kept in the output).")
    ] = 0,
    dispatch_overhead: Annotated[
        float, typer.Option(min=0.0, help="Seconds from decision to start.")
    ] = 0.0,
) -> None:
    """Simulate the workload under one strategy or all of them, with the live strategy code."""
    names = list(STRATEGY_NAMES) if strategy == "all" else [strategy]
    if strategy != "all" and strategy not in STRATEGY_NAMES:
        raise InvalidInputError("--strategy", strategy, "one of: all, " + ", ".join(STRATEGY_NAMES))
    settings = load_settings()
    tasks = load_workload(workload)
    results = {}
    switches: dict[str, int] = {}
    trace_lines: list[str] = []
    for name in names:
        sim = Simulator.from_settings(
            build_strategy(name, settings),
            settings,
            workers=workers,
            slots=slots,
            dispatch_overhead=dispatch_overhead,
        )
        outcome = sim.simulate(tasks)
        results[name] = outcome_metrics(outcome, workers * slots)
        if sim.switches:
            switches[name] = len(sim.switches)
        if trace is None:
            continue
        for r in outcome.records():
            row = {"id": r.task.id, "worker": r.worker, "start": r.start, "finish": r.finish}
            row["state"] = r.state
            if len(names) > 1:
                row["strategy"] = name
            trace_lines.append(json.dumps(row))
    if trace is not None:
        trace.write_text("\n".join(trace_lines) + "\n")
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        finish(ctx)
        return
    from rich.console import Console  # only for the table: --json starts faster without it
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"{workload.name}: {len(tasks)} tasks, {workers} workers x {slots} slots, seed {seed}"
    )
    table.add_column("metric", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    shown: tuple[str, ...] = METRIC_NAMES
    if WORKFLOW_METRIC_NAMES[0] in results[names[0]]:  # a workload with dependencies
        shown += WORKFLOW_METRIC_NAMES
    for metric in shown:
        cells = []
        for name in names:
            value = results[name][metric]
            cells.append(
                "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
            )
        table.add_row(metric, *cells)
    if switches:
        table.add_row("switches", *(str(switches.get(name, "-")) for name in names))
    if not console.is_terminal:
        console.width = max(console.width, 16 + 12 * len(names))
    console.print(table)
    finish(ctx)
