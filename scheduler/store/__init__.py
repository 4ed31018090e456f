"""The Redis state store: the one place that talks to Redis (see :mod:`.facade`)."""

from __future__ import annotations

from scheduler.store.connection import connect
from scheduler.store.deliveries import FinishReport, Verdict
from scheduler.store.facade import Store
from scheduler.store.pending import Claim
from scheduler.store.reports import ReportLine
from scheduler.store.workers import RunningTask, WorkerSummary

__all__ = [
    "Claim",
    "FinishReport",
    "ReportLine",
    "RunningTask",
    "Store",
    "Verdict",
    "WorkerSummary",
    "connect",
]
