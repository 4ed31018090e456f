"""``yardmaster status --watch``: a live terminal view of a monitor snapshot (rich)."""

from __future__ import annotations

import threading

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scheduler.monitor.monitor import Monitor
from scheduler.monitor.snapshot import Snapshot

STATUS_STYLE = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(snap: Snapshot) -> Group:
    """One frame of the live view."""
    h = snap.health
    thr = snap.throughput.total
    disp = snap.dispatcher
    head = Text.assemble(
        ("yardmaster  ", "bold"),
        ("health ", "dim"),
        (f"{h.score:.0f} {h.status}", STATUS_STYLE[h.status]),
        ("   strategy ", "dim"),
        (str(disp.strategy or "-"), ""),
        ("   dispatcher ", "dim"),
        ("up" if disp.leader else "DOWN", "" if disp.leader else "bold red"),
    )
    workers = Table(title="workers", expand=True)
    for col in ("worker", "busy/slots", "utilization", "heartbeat", "succeeded", "failed"):
        workers.add_column(col, justify="left" if col == "worker" else "right")
    for w in snap.workers:
        workers.add_row(
            w.name, f"{w.busy}/{w.slots}", f"{w.utilization:.0%}",
            f"{w.heartbeat_age:.1f}s", str(w.succeeded), str(w.failed),
        )  # fmt: skip
    slots = snap.slots
    backlog = snap.backlog
    by_pri = ", ".join(f"p{p}: {n}" for p, n in sorted(backlog.by_priority.items(), reverse=True))
    summary = Text.assemble(
        ("slots ", "dim"), f"{slots.busy}/{slots.total} busy, {slots.free} free   ",
        ("backlog ", "dim"), f"{backlog.total}" + (f" ({by_pri})" if by_pri else "") + "\n",
        ("throughput ", "dim"), f"{thr['1s']:.1f}/s (1s)  {thr['1m']:.2f}/s (1m)  {thr['5m']:.2f}/s (5m)",
    )  # fmt: skip
    lat = Table(title="latency, seconds (long window)", expand=True)
    for col in ("", "p50", "p95", "p99", "count"):
        lat.add_column(col, justify="left" if not col else "right")
    for kind, measure in (("wait", snap.latency.wait), ("run", snap.latency.run)):
        a = measure.all
        lat.add_row(kind, _num(a.p50), _num(a.p95), _num(a.p99), str(a.count))
    anomalies = Table(title=f"anomalies ({len(snap.anomalies)})", expand=True)
    anomalies.add_column("severity")
    anomalies.add_column("type")
    anomalies.add_column("reason")
    for x in snap.anomalies:
        anomalies.add_row(Text(x.severity, style=SEVERITY_STYLE[x.severity]), x.type, x.reason)
    if not snap.anomalies:
        anomalies.add_row("-", "none", "")
    return Group(Panel(head), workers, summary, lat, anomalies)


def watch(
    monitor: Monitor,
    *,
    interval: float,
    count: int = 0,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Redraw every ``interval`` seconds until Ctrl-C, ``stop``, or ``count`` frames (0: no end)."""
    stop = stop or threading.Event()
    console = console or Console()
    frames = 0
    with Live(render(monitor.poll()), console=console, auto_refresh=False) as live:
        frames += 1
        live.refresh()
        while (count == 0 or frames < count) and not stop.wait(interval):
            live.update(render(monitor.poll()), refresh=True)
            frames += 1
