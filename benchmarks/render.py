"""One Markdown table per benchmark result: the current figures of docs/benchmarks.md.

Over 400 lines: fifteen small renderers, one per benchmark, sharing the helpers above them.

Each renderer takes one benchmark's JSON and returns ``{marker: Markdown}``
for the tables it feeds (``throughput`` feeds two). Figures are medians with
their spread (min-max over rounds, or the per-round paired ratios); a target
is judged here against the targets of the issues, so an old JSON that
recorded a laxer one is not called met.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

TARGET_END_TO_END = 1.0  # issue #21: at least plain Celery's rate
TARGET_SUBMISSION = 3.0
TARGET_IO_BOUND = 1.0
TARGET_SIMULATOR = 200_000
TARGET_ADAPTIVE_SIMULATOR = 100_000
TARGET_DECISION_P99_US = 1000.0
TARGET_MONITORING_COST = 0.10
TARGET_REDIS_BYTES = 400
TARGET_DISPATCHER_BYTES = 250
TIMES = "\u00d7"  # the multiplication sign of a ratio
DASH = "\u2013"  # the en dash of a range


@dataclass(frozen=True)
class Meta:
    """Where a result comes from: what the first line of its table says."""

    command: str
    date: str
    commit: str
    machine: dict[str, Any]
    note: str

    @classmethod
    def of(cls, result: dict[str, Any], outer: dict[str, Any], note: str, file_date: str) -> Meta:
        code = result.get("code") or outer.get("code") or {}
        command = str(result.get("command", ""))
        # Where the run wrote its JSON is not part of the method; older results
        # kept another command (the timed one) in this field.
        command = re.sub(r" --json-out \S+", "", command) if command.startswith("python") else ""
        return cls(
            command=command,
            date=str(result.get("date") or outer.get("date") or file_date or "unknown"),
            commit=str(code.get("commit", "unknown"))[:7],
            machine=result.get("machine") or outer.get("machine") or {},
            note=note,
        )

    def header(self) -> str:
        """The line above a table: command, date, commit, machine (and the note)."""
        m = self.machine
        parts = [m.get("cpu_model", ""), f"{m['nproc']} cores" if m.get("nproc") else ""]
        if m.get("loadavg_start"):
            end = m.get("loadavg_end")
            load = f"load {m['loadavg_start'][0]:.2f}"
            parts.append(load + (f" → {end[0]:.2f}" if end else ""))
        for key, label in (("python", "Python"), ("celery", "Celery"), ("redis_server", "Redis")):
            if m.get(key):
                parts.append(f"{label} {m[key]}")
        machine = ", ".join(p for p in parts if p) or "machine not recorded"
        commit = f"commit `{self.commit}`" if self.commit != "unknown" else "commit not recorded"
        fields = [f"`{self.command}`"] if self.command else []
        line = "; ".join([*fields, f"{self.date}, {commit}", machine]) + ".\n"
        if self.note:
            line += f"**({self.note})**\n"
        return line + "\n"


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _x(x: float) -> str:
    return f"{x:.2f}{TIMES}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _span(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(min(values))}{DASH}{fmt(max(values))}" if len(values) > 1 else fmt(values[0])


def _met(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _rates(runs: list[dict[str, Any]]) -> list[float]:
    return [r["tasks_per_s"] for r in runs]


def throughput(result: dict[str, Any]) -> dict[str, str]:
    e2e = result["end_to_end"]
    shapes = {"1x2": e2e} if "median_tasks_per_s" in e2e else e2e
    tasks = result.get("config", {}).get("tasks")
    tasks = _n(tasks) if isinstance(tasks, int) else "N"
    rows = []
    for label, s in shapes.items():
        ym, plain = s["rounds"]["yardmaster"], s["rounds"]["plain_celery"]
        med = s["median_tasks_per_s"]
        rows.append(
            [
                f"{tasks} noops, {label} prefork",
                f"{_n(med['yardmaster'])} ({_span(_rates(ym), _n)})",
                f"{_n(med['plain_celery'])} ({_span(_rates(plain), _n)})",
                _x(s["ratio"]),
                _span(s["paired_ratios"], lambda v: f"{v:.2f}"),
                _met(s["ratio"] >= TARGET_END_TO_END),
            ]
        )
        same = s.get("same_transport")
        if same:
            rows.append(
                [
                    f"the same, plain Celery on yardmaster's transport ({label})",
                    "",
                    f"{_n(same['median_tasks_per_s'])} ({_span(_rates(same['rounds']), _n)})",
                    _x(same["ratio"]),
                    _span(same["paired_ratios"], lambda v: f"{v:.2f}"),
                    "",
                ]
            )
    head = ["measurement", "yardmaster tasks/s", "plain Celery tasks/s", "ratio", "paired"]
    e2e_table = _table([*head, f"≥ {TARGET_END_TO_END}{TIMES}?"], rows)
    sub = result["submission"]
    med = sub["median_tasks_per_s"]
    sub_row = [
        f"{tasks} noops, producer only",
        f"{_n(med['yardmaster'])} ({_span(_rates(sub['rounds']['yardmaster']), _n)})",
        f"{_n(med['plain_celery'])} ({_span(_rates(sub['rounds']['plain_celery']), _n)})",
        _x(sub["ratio"]),
        _span(sub["paired_ratios"], lambda v: f"{v:.1f}"),
        _met(sub["ratio"] >= TARGET_SUBMISSION),
    ]
    sub_head = ["measurement", "submit_many tasks/s", "apply_async tasks/s", "ratio", "paired"]
    return {
        "throughput": e2e_table,
        "submission": _table([*sub_head, f"≥ {TARGET_SUBMISSION:g}{TIMES}?"], [sub_row]),
    }


def io_bound(result: dict[str, Any]) -> dict[str, str]:
    rows = []
    for label, shape in result["shapes"].items():
        plain = shape["plain_celery"]
        for name, s in shape["strategies"].items():
            rows.append(
                [
                    label,
                    f"`{name}`",
                    _n(shape["ideal_tasks_per_s"]),
                    f"{_n(s['median_tasks_per_s'])} ({_pct(s['share_of_ideal'])})",
                    f"{_n(plain['median_tasks_per_s'])} ({_pct(plain['share_of_ideal'])})",
                    _x(s["ratio"]),
                    _span(s["paired_ratios"], lambda v: f"{v:.2f}"),
                    _met(s["ratio"] >= TARGET_IO_BOUND),
                ]
            )
    head = [
        "shape",
        "strategy",
        "ideal tasks/s",
        "yardmaster (of ideal)",
        "plain Celery (of ideal)",
    ]
    return {"io_bound": _table([*head, "ratio", "paired", f"≥ {TARGET_IO_BOUND}{TIMES}?"], rows)}


def scaling(result: dict[str, Any]) -> dict[str, str]:
    fig, per_worker = result["figures"], result["ideal_tasks_per_s_per_worker"]
    rows = []
    for n in result["config"]["workers"]:
        ym, plain = fig["yardmaster"][str(n)], fig["plain_celery"][str(n)]
        row = [str(n), _n(per_worker * n)]
        for p in (ym, plain):
            spread = _span([p["min_tasks_per_s"], p["max_tasks_per_s"]], _n)
            row += [f"{_n(p['median_tasks_per_s'])} ({spread})", f"{p['speedup']:.2f}"]
        row.append(_x(ym["median_tasks_per_s"] / plain["median_tasks_per_s"]))
        rows.append(row)
    head = ["workers", "ideal tasks/s", "yardmaster tasks/s", "speedup", "plain Celery tasks/s"]
    return {"scaling": _table([*head, "speedup", "ratio"], rows)}


def ceiling(result: dict[str, Any]) -> dict[str, str]:
    rows = []
    for variant, f in result["figures"].items():
        name, mode = variant.split("/")
        busy = f["median_cores_busy"]
        spread = _span([f["min_tasks_per_s"], f["max_tasks_per_s"]], _n)
        rows.append(
            [
                f"`{name}`",
                "hand-off list" if mode == "handoff" else "dispatcher only",
                f"{_n(f['median_tasks_per_s'])} ({spread})",
                _n(f["target_tasks_per_s"]),
                _met(f["meets_target"]),
                *(f"{busy.get(k, 0):.2f}" for k in ("dispatcher", "redis", "harness", "machine")),
                ", ".join(sorted(set(f["saturated"]))),
            ]
        )
    head = ["strategy", "slots filled by", "tasks/s", "target", "met?", "dispatcher", "Redis"]
    return {"ceiling": _table([*head, "harness", "machine", "saturated"], rows)}


def memory(result: dict[str, Any]) -> dict[str, str]:
    rows = []
    for size, row in result["figures"].items():
        ym, plain = row["yardmaster"], row.get("plain_celery")
        rows.append(
            [
                _n(int(size)),
                f"{ym['redis_bytes_per_task']:.0f} ({_met(ym['redis_bytes_per_task'] <= TARGET_REDIS_BYTES)})",
                f"{ym['dispatcher_bytes_per_task']:.0f} "
                f"({_met(ym['dispatcher_bytes_per_task'] <= TARGET_DISPATCHER_BYTES)})",
                f"{plain['redis_bytes_per_message']:.0f}" if plain else "not measured",
                ym["mem_allocator"],
            ]
        )
    head = [
        "pending tasks",
        f"Redis B/task (≤ {TARGET_REDIS_BYTES}?)",
        f"dispatcher B/task (≤ {TARGET_DISPATCHER_BYTES}?)",
        "plain Celery: Redis B/message",
        "Redis allocator",
    ]
    return {"memory": _table(head, rows)}


def mirror_bytes(result: dict[str, Any]) -> dict[str, str]:
    parts = ("record", "id", "names", "numbers", "index", "order")
    rows = [
        [
            f"`{name}`",
            *(f"{f[p]:.0f}" for p in parts),
            f"**{f['total']:.0f}**",
            f"{f['tracemalloc']:.0f}",
        ]
        for name, f in result["figures"].items()
    ]
    head = ["strategy", "record", "id", "names", "numbers", "index by id", "order", "total"]
    text = _table([*head, "tracemalloc"], rows)
    text += f"\nBytes per pending task, {_n(int(result['tasks']))} tasks pending.\n"
    return {"mirror_bytes": text}


def simulator_speed(result: dict[str, Any]) -> dict[str, str]:
    rows = []
    for name, s in result["strategies"].items():
        target = TARGET_ADAPTIVE_SIMULATOR if name == "adaptive" else TARGET_SIMULATOR
        rows.append(
            [
                f"`{name}`",
                f"{s['seconds']:.2f}",
                ", ".join(f"{v:.2f}" for v in s["all_seconds"]),
                _n(s["tasks_per_s"]),
                f"{s['cpu_seconds']:.2f}",
                _n(target),
                _met(s["tasks_per_s"] >= target),
            ]
        )
    head = ["strategy", "best s", "rounds (s)", "tasks/s (best)", "CPU s", "target", "met?"]
    text = _table(head, rows)
    text += (
        f"\n{_n(result['tasks'])} tasks, {result['workers']} workers; start-up (a one-task file) "
        f"{result['startup']['seconds']:.2f} s.\n"
    )
    return {"simulator_speed": text}


def decision_cost(result: dict[str, Any]) -> dict[str, str]:
    sizes = [str(s) for s in result["sizes"]]
    rows = []
    for name, per in result["results"].items():
        cells = [
            f"{per[s]['p50_us']:.0f} / {per[s]['p99_us']:.0f} / {per[s]['max_us']:.0f}"
            for s in sizes
        ]
        worst = max(per[s]["p99_us"] for s in sizes)
        rows.append([f"`{name}`", *cells, _met(worst <= TARGET_DECISION_P99_US)])
    head = ["strategy", *(f"{int(s):,} pending" for s in sizes), "p99 ≤ 1 ms?"]
    return {"decision_cost": "p50 / p99 / max µs per decision.\n\n" + _table(head, rows)}


def strategy_plot(result: dict[str, Any]) -> dict[str, str]:
    table = result["results"]
    names = list(next(iter(table.values())))
    rows = [
        [kind, *(f"{per[n]['mean_flow']:.3f} / {per[n]['deadline_misses']}" for n in names)]
        for kind, per in table.items()
    ]
    intro = (
        f"Mean flow (s) / deadline misses; {result['tasks']} tasks, {result['workers']} workers "
        "x 1 slot, in the simulator.\n\n"
    )
    return {"strategies": intro + _table(["kind", *(f"`{n}`" for n in names)], rows)}


def adaptive_sweep(result: dict[str, Any]) -> dict[str, str]:
    s = result["summary"]
    text = _table(
        ["cases", "within 5 % of the best fixed strategy", "`phases`: beats every fixed strategy"],
        [[s["cases"], s["within_5pct"], f"{s['phases_beats_every_fixed']} of {s['phases_cases']}"]],
    )
    misses = [r for r in result["rows"] if not r["within_5pct"]]
    if misses:
        rows = [
            [
                r["kind"],
                r["seed"],
                f"`{r['best_fixed']}`",
                f"{r['best'][0]} / {r['best'][1]:.3f}",
                f"{r['adaptive'][0]} / {r['adaptive'][1]:.3f}",
            ]
            for r in misses
        ]
        head = ["kind", "seed", "best fixed", "its misses / mean flow", "adaptive's"]
        text += "\nThe cases outside 5 %:\n\n" + _table(head, rows)
    return {"adaptive_sweep": text}


def cache(result: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "latency" in result:
        lat = result["latency"]
        ratios = [r["ratio"] for r in lat["rounds"]]
        text = _table(
            ["submit to result", "median ms", "ratio dispatched / hit", "per round"],
            [
                ["dispatched `noop`", f"{lat['dispatched_median_ms']:.2f}", "", ""],
                [
                    "cache hit",
                    f"{lat['cache_hit_median_ms']:.2f}",
                    _x(lat["median_ratio"]),
                    _span(ratios, lambda v: f"{v:.1f}"),
                ],
            ],
        )
        sub = result["submit_many"]
        rows = [
            [f"`{k}`" if k != "plain" else "none", _n(v), f"{sub['ratio_to_plain'][k]:.2f}"]
            for k, v in sub["median_per_s"].items()
        ]
        text += f"\n`submit_many` of {_n(sub['tasks'])} specs, per option:\n\n"
        out["cache"] = text + _table(["option on every task", "tasks/s", "ratio to none"], rows)
    guard = result.get("guard", {})
    if "start_median_us" in guard:
        rows = []
        for key, label in (
            ("start", "start report alone"),
            ("start_guarded", "start report taking the guard"),
            ("enter", "separate `guard_enter.lua` call"),
            ("exit", "`guard_exit.lua`, waited for (sent with the finish in a worker)"),
            ("ping", "`PING`"),
        ):
            values = [r[f"{key}_us"] for r in guard["rounds"]]
            rows.append(
                [label, f"{guard[f'{key}_median_us']:.0f}", _span(values, lambda v: f"{v:.0f}")]
            )
        out["cache_guard"] = _table(["per task", "median µs", "per round"], rows)
    return out


def monitoring(result: dict[str, Any]) -> dict[str, str]:
    rows = []
    for config, median in result["median_tasks_per_s"].items():
        watcher = result["cpu_ms_per_task_of_the_watcher"].get(config)
        rows.append(
            [
                config,
                _n(median),
                f"{result['ratio_to_off'][config]:.2f}",
                _span(result["paired_ratio_to_off"][config], lambda v: f"{v:.2f}"),
                f"{result['cpu_ms_per_task_all_processes'][config]:.3f}",
                "" if watcher is None else f"{watcher:.3f}",
            ]
        )
    head = ["configuration", "tasks/s", "ratio to off", "paired", "CPU ms/task, all", "watcher's"]
    met = result["cost"]["monitor"] <= TARGET_MONITORING_COST
    text = _table(head, rows)
    text += f"\nFull monitoring costs at most 10 % of throughput: {_met(met)}.\n"
    return {"monitoring": text}


def outbox(result: dict[str, Any]) -> dict[str, str]:
    pool, redis = result["pool_process_cpu_us_per_exit_call"], result["redis_us_per_guard_exit"]
    rows = [
        [
            kind,
            f"{pool[kind]:.2f}",
            f"{redis[kind]['median_us']:.2f} (min {redis[kind]['min_us']:.2f})",
        ]
        for kind in pool
    ]
    head = ["`guard_exit` call", "pool process CPU µs", "Redis µs (median of rounds)"]
    return {"outbox": _table(head, rows)}


def chaos(result: dict[str, Any]) -> dict[str, str]:
    keys = ["tasks", "worker_kills", "dispatcher_kills", "redis_restarts", "lost", "duplicated"]
    keys += ["duplicate_effects", "reruns_after_sigkill", "takeover_seconds"]
    rows = [
        [i, *(r.get(k, "") for k in keys), _met(bool(r.get("test_passed")))]
        for i, r in enumerate(result["runs"], 1)
    ]
    head = ["run", "tasks", "worker kills", "dispatcher kills", "Redis restarts", "lost"]
    head += ["duplicated", "duplicate effects", "re-runs after SIGKILL", "takeover s", "passed"]
    text = _table(head, rows)
    if len(rows) > 1:
        takeovers = [r["takeover_seconds"] for r in result["runs"] if "takeover_seconds" in r]
        text += f"\nMedian takeover {statistics.median(takeovers):.2f} s.\n" if takeovers else ""
    return {"chaos": text}


def backpressure(result: dict[str, Any]) -> dict[str, str]:
    rows = [
        [
            "one task per call" if shape == "single" else f"batches of {result['batch']}",
            _n(r["off_tasks_per_s"]),
            _n(r["on_tasks_per_s"]),
            f"{r['on_vs_off']:+.1%}",
            f"{r['redis_us_per_call_off']:.1f} / {r['redis_us_per_call_on']:.1f}",
            _met(bool(r["within_target"])),
        ]
        for shape, r in result["shapes"].items()
    ]
    head = ["submissions", "off tasks/s", "on tasks/s", "on vs off"]
    head += ["Redis µs per call (off / on)", "within 5 %?"]
    return {"backpressure": _table(head, rows)}


RENDERERS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "throughput": throughput,
    "io_bound": io_bound,
    "scaling": scaling,
    "ceiling": ceiling,
    "memory": memory,
    "mirror_bytes": mirror_bytes,
    "simulator_speed": simulator_speed,
    "decision_cost": decision_cost,
    "strategy_plot": strategy_plot,
    "adaptive_sweep": adaptive_sweep,
    "cache": cache,
    "cache-guard": cache,
    "monitoring": monitoring,
    "outbox": outbox,
    "chaos": chaos,
    "backpressure": backpressure,
}
