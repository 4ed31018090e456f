"""Scheduling strategies: one interface, one registry."""

from __future__ import annotations

from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.strategies.base import HeapQueue, Snapshot, Strategy, TaskQueue, plan
from scheduler.strategies.edf import EdfStrategy
from scheduler.strategies.fifo import FifoStrategy
from scheduler.strategies.priority import PriorityStrategy
from scheduler.strategies.sjf import EstimateQueue, SjfStrategy

__all__ = [
    "STRATEGY_NAMES",
    "EdfStrategy",
    "EstimateQueue",
    "FifoStrategy",
    "HeapQueue",
    "PriorityStrategy",
    "SjfStrategy",
    "Snapshot",
    "Strategy",
    "TaskQueue",
    "create_strategy",
    "plan",
]


def create_strategy(name: str, settings: Settings) -> Strategy:
    """Build the named strategy with its parameters taken from ``settings``.

    Raises:
        InvalidInputError: When ``name`` is not a known strategy.
    """
    if name == "fifo":
        return FifoStrategy()
    if name == "priority":
        return PriorityStrategy(aging=settings.priority_aging)
    if name == "sjf":
        return SjfStrategy()
    if name == "edf":
        return EdfStrategy()
    raise InvalidInputError("strategy", name, "one of: " + ", ".join(STRATEGY_NAMES))
