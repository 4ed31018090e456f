"""Search ranges, declared on the settings they belong to.

A setting becomes searchable by ``yardmaster tune`` when its declaration in
:mod:`scheduler.settings` carries one of these markers in its ``Annotated``
type, e.g. ``priority_aging: Annotated[float, Range(0.0, 2.0)] = Field(...)``.
The range is what a search may try, usually narrower than what validation
allows; which strategies a setting matters to is said by each strategy class
(``Strategy.settings_read``). Plain data, so the settings module can carry
them without importing anything of the tuning package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """A numeric interval a search may try.

    Attributes:
        low: Smallest value tried.
        high: Largest value tried.
        log: Sample on a log scale (both ends must then be > 0).
        integer: Only whole numbers.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def describe(self) -> str:
        """The range in words, for messages and the docs."""
        scale = ", log scale" if self.log else ""
        kind = "integers" if self.integer else "numbers"
        return f"{kind} from {self.low:g} to {self.high:g}{scale}"


@dataclass(frozen=True)
class Choice:
    """A finite set of values a search may try.

    Attributes:
        values: The values, in the order a listing shows them.
    """

    values: tuple[Any, ...]

    def describe(self) -> str:
        """The choice in words, for messages and the docs."""
        return "one of: " + ", ".join(str(v) for v in self.values)


Searchable = Range | Choice
