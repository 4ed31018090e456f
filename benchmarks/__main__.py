"""``python -m benchmarks``: run every benchmark, or regenerate the tables of docs/benchmarks.md.

Usage::

    python -m benchmarks all [--quick] [--only a,b] [--json-out FILE] [--doc FILE] [--note TEXT]
    python -m benchmarks tables RESULTS.json [NAME=FILE ...] [--doc FILE] [--note TEXT]
    python -m benchmarks list

``all`` runs each benchmark module (see ``benchmarks/runner.py``) and writes
one results JSON (default ``benchmarks/results/all-<commit>.json``; a quick
run's goes to the temporary directory), then the tables. ``tables`` rewrites
the tables between ``<!-- bench:NAME -->`` and ``<!-- /bench -->`` from a
results file of ``all``, or from one benchmark's own JSON given as
``NAME=FILE`` (e.g. ``throughput=benchmarks/results/throughput.json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.runner import BENCHMARKS, run_all
from benchmarks.tables import DOC, regenerate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("all", help="run every benchmark (or --only some)")
    run.add_argument("--quick", action="store_true", help="small runs: a smoke test")
    run.add_argument("--only", help="comma-separated benchmark names")
    run.add_argument("--json-out", type=Path, help="the results file")
    run.add_argument("--doc", type=Path, help=f"the document whose tables to rewrite ({DOC})")
    run.add_argument("--note", default="", help="a remark printed with every table")
    tables = sub.add_parser("tables", help="regenerate the tables from results files")
    tables.add_argument("results", nargs="+", help="RESULTS.json of `all`, or NAME=FILE")
    tables.add_argument("--doc", type=Path, default=DOC)
    tables.add_argument("--note", default="", help="a remark printed with every table")
    sub.add_parser("list", help="the benchmarks and their full and quick arguments")
    args = parser.parse_args(argv)
    if args.command == "all":
        return run_all(args.only, args.quick, args.json_out, args.doc, args.note)
    if args.command == "tables":
        changed = regenerate(args.doc, args.results, note=args.note)
        print(f"{args.doc}: regenerated {', '.join(changed) or 'nothing'}")
        return 0
    for bench in BENCHMARKS:
        print(f"{bench.name:<16} full: {' '.join(bench.full) or '(defaults)'}")
        print(f"{'':<16} quick: {' '.join(bench.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
