"""The Redis state store: the one place that talks to Redis."""

from __future__ import annotations

from scheduler.store.reports import ReportLine
from scheduler.store.state import Claim, StateStore, WorkerRecord, connect

__all__ = ["Claim", "ReportLine", "StateStore", "WorkerRecord", "connect"]
