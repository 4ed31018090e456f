"""Scheduling strategies: one interface, one registry."""

from __future__ import annotations

from scheduler.errors import InvalidInputError
from scheduler.settings import STRATEGY_NAMES, Settings
from scheduler.strategies.base import HeapQueue, Snapshot, Strategy, TaskQueue, plan
from scheduler.strategies.fifo import FifoStrategy
from scheduler.strategies.priority import PriorityStrategy

__all__ = [
    "STRATEGY_NAMES",
    "FifoStrategy",
    "HeapQueue",
    "PriorityStrategy",
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
    raise InvalidInputError("strategy", name, "one of: " + ", ".join(STRATEGY_NAMES))
