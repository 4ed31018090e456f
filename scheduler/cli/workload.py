"""``yardmaster workload gen``: write a synthetic workload file of one kind."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.base import app
from scheduler.errors import InvalidInputError
from scheduler.workload_gen import DEFAULT_WARM_CAPACITY, KINDS, generate, to_jsonl

workload_app = typer.Typer(
    name="workload",
    help="Make workload files for `yardmaster simulate` and `yardmaster run`.",
    no_args_is_help=True,
)
app.add_typer(workload_app)


@workload_app.command()
def gen(
    kind: Annotated[str, typer.Option(help="One of: " + ", ".join(KINDS) + ".")],
    n: Annotated[int, typer.Option(help="Number of tasks.")],
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same file.")] = 0,
    workers: Annotated[int, typer.Option(help="Workers the load is sized for.")] = 2,
    slots: Annotated[int, typer.Option(help="Slots per worker the load is sized for.")] = 1,
    scale: Annotated[float, typer.Option(help="Factor on every duration, gap and deadline.")] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Generate a workload of one kind (deterministic for a seed); see docs/simulator.md."""
    try:
        tasks = generate(kind, n, seed, workers=workers, slots=slots, scale=scale)
    except InvalidInputError as exc:
        raise InvalidInputError("--" + exc.field, exc.value, exc.allowed) from None
    command = ["yardmaster", "workload", "gen", "--kind", kind, "--n", str(n), "--seed", str(seed)]
    command += ["--workers", str(workers), "--slots", str(slots), "--scale", f"{scale:g}"]
    header = f"made by: {shlex.join(command)} (warm capacity {DEFAULT_WARM_CAPACITY})"
    text = to_jsonl(tasks, header)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(tasks)} tasks ({kind}, seed {seed}) to {out}")
