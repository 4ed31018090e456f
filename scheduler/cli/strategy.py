"""``yardmaster strategy show|set|history|rollback``: live steering of the dispatcher."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client
from scheduler.errors import InvalidInputError
from scheduler.models import StrategyVersion
from scheduler.settings import STRATEGY_PARAMS, load_settings

console = Console()
strategy_app = typer.Typer(
    help="Show or change the live strategy; every change is a version that can be rolled back.",
    no_args_is_help=True,
)
app.add_typer(strategy_app, name="strategy")


WaitOption = Annotated[
    float, typer.Option(min=0.0, help="Seconds to wait for the dispatcher to apply it (0: don't).")
]
WhoOption = Annotated[str | None, typer.Option(help="Recorded author (default user@host).")]


def _client() -> Client:
    return Client(open_store())


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                "--param", pair, "NAME=VALUE, NAME one of: " + ", ".join(STRATEGY_PARAMS)
            )
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text  # a bare word such as expire
    return params


def _print_version(config: StrategyVersion, title: str) -> None:
    params = json.dumps(config.params, sort_keys=True) if config.params else "(cluster settings)"
    console.print(
        f"{title}: version {config.version}: [bold]{config.strategy}[/] {params}\n"
        f"  set by {config.who} at {_when(config.at)}"
        + (f"; {config.note}" if config.note else ""),
        highlight=False,
    )


def _report(client: Client, config: StrategyVersion, title: str, wait: float) -> None:
    """Print the stored version; then wait (unless 0) until the dispatcher applied it."""
    _print_version(config, title)
    if wait > 0:
        active = client.wait_strategy_active(config.version, wait)
        console.print(f"applied by dispatcher {active.dispatcher}", highlight=False)


@strategy_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The configured strategy, what the dispatcher runs, and recent adaptive switches."""
    client = _client()
    config = client.strategy()
    active = client.active_strategy()
    switches = client.store.strategy.recent_switches(5)
    if as_json:
        out = {
            "configured": None if config is None else config.as_dict(),
            "active": None
            if active is None
            else {"strategy": active.strategy, "version": active.version, "since": active.since},
            "switches": switches,
            "switch_count": client.store.events.counters().get("strategy_switches", 0),
        }
        typer.echo(json.dumps(out, indent=2))
        return
    if config is None:
        console.print(
            f"not steered: the dispatcher uses YM_STRATEGY ({load_settings().strategy})",
            highlight=False,
        )
    else:
        _print_version(config, "configured")
    if active is None:
        console.print("active: no dispatcher has led yet")
    else:
        console.print(
            f"active: [bold]{active.strategy}[/] (version {active.version}, since "
            f"{_when(active.since)}, dispatcher {active.dispatcher})",
            highlight=False,
        )
    for sw in switches:
        console.print(
            f"  switch at {_when(sw['at'])}: {sw['from']} -> {sw['to']} ({sw['reason']})",
            highlight=False,
        )


@strategy_app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="The strategy to run.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE (VALUE as JSON, or a bare word), e.g. priority_aging=0.5; repeatable.",
        ),
    ] = None,
    who: WhoOption = None,
    note: Annotated[str, typer.Option(help="Free text kept with the version.")] = "",
    wait: WaitOption = 10.0,
) -> None:
    """Switch the live strategy without a restart; pending tasks are re-ordered at once."""
    client = _client()
    config = client.set_strategy(name, _parse_params(param or []), who=who, note=note)
    _report(client, config, "set", wait)


@strategy_app.command("history")
def history(
    limit: Annotated[int, typer.Option(min=0, help="Show the last N versions (0: all).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Every version: who set what, when."""
    versions = _client().strategy_history(limit)
    if as_json:
        for v in versions:
            typer.echo(json.dumps(v.as_dict()))
        return
    table = Table(title="strategy versions")
    for column in ("version", "strategy", "params", "who", "at", "note"):
        table.add_column(column, overflow="fold")
    for v in versions:
        params = json.dumps(v.params, sort_keys=True) if v.params else ""
        table.add_row(str(v.version), v.strategy, params, v.who, _when(v.at), v.note)
    console.print(table)


@strategy_app.command("rollback")
def rollback(
    to: Annotated[
        int | None, typer.Option(help="Version to restore (default: the one before the current).")
    ] = None,
    who: WhoOption = None,
    wait: WaitOption = 10.0,
) -> None:
    """Restore an earlier version; the restore is itself a new version."""
    client = _client()
    config = client.rollback_strategy(to, who=who)
    _report(client, config, "restored", wait)
