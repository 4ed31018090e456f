"""Summary statistics, named as DESIGN.md names them everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN when empty."""
    return sorted_percentile(sorted(values), q)


def sorted_percentile(ordered: Sequence[float], q: float) -> float:
    """:func:`percentile` of values already sorted (sort once, ask many times)."""
    if not ordered:
        return math.nan
    low, high, frac = _position(len(ordered), q)
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def percentiles(values: list[float], qs: Sequence[float]) -> list[float]:
    """:func:`percentile` at each of ``qs``: the same numbers, without sorting a long list.

    Each percentile reads two order statistics, and finding those costs less
    than sorting every value (sorting 300,000 flows was a third of a large
    simulation's metrics): see :func:`_order_statistics`.
    """
    if not values:
        return [math.nan for _ in qs]
    places = [_position(len(values), q) for q in qs]
    at = _order_statistics(values, sorted({r for low, high, _ in places for r in (low, high)}))
    if at is None:
        ordered = sorted(values)
        return [sorted_percentile(ordered, q) for q in qs]
    return [at[low] + (at[high] - at[low]) * frac for low, high, frac in places]


def _position(n: int, q: float) -> tuple[int, int, float]:
    """The ranks either side of the ``q``-th percentile of ``n`` values, and the
    fraction of the way from the first to the second."""
    pos = (n - 1) * q / 100.0
    low = math.floor(pos)
    return low, min(low + 1, n - 1), pos - low


_SAMPLE_STEP = 64  # every 64th value makes the sample
# A bracket spans this many standard errors of the sample's estimate of its rank,
# and a few entries more, either side.
_SPREAD = 5.0
_SELECT_FROM = 20_000  # below this many values, a sort is as quick


def _order_statistics(values: list[float], ranks: list[int]) -> dict[int, float] | None:
    """The values of ``ranks`` (ascending) in sorted ``values``; None when a sort must decide.

    A sorted sample (every 64th value) says roughly where each rank's value
    lies; one pass keeps the values in a bracket around it, wide enough for the
    sample's error, and another counts those below the bracket, so the rank is
    found in the sorted bracket (a few percent of the values). Brackets that
    overlap are merged; one that reaches the top tenth takes every value above
    it, which needs one pass (the count below is what it leaves). Whenever a bracket misses its ranks (the sample misjudged
    them) the answer is None, and so it is for NaN, which no bracket counts.
    """
    n = len(values)
    if n < _SELECT_FROM or any(map(math.isnan, values)):
        return None
    sample = sorted(values[::_SAMPLE_STEP])
    top = len(sample) - len(sample) // 10  # a bracket reaching the top tenth takes all above
    brackets: list[tuple[int, int, list[int]]] = []  # sample indices bounding each, its ranks
    for rank in ranks:
        share = rank / n
        margin = int(_SPREAD * math.sqrt(len(sample) * share * (1.0 - share))) + 8
        first, last = rank // _SAMPLE_STEP - margin, rank // _SAMPLE_STEP + margin
        if last >= top:
            last = len(sample)
        if brackets and first <= brackets[-1][1]:
            brackets[-1] = (brackets[-1][0], last, [*brackets[-1][2], rank])
        else:
            brackets.append((first, last, [rank]))
    found: dict[int, float] = {}
    for first, last, in_it in brackets:
        if first <= 0 and last >= len(sample) - 1:
            return None
        if first <= 0:
            high = sample[last]
            kept = [x for x in values if x <= high]
            below = 0
        elif last >= len(sample) - 1:
            low = sample[first]
            kept = [x for x in values if x >= low]
            below = n - len(kept)
        else:
            low, high = sample[first], sample[last]
            kept = [x for x in values if low <= x <= high]
            below = len([x for x in values if x < low])
        kept.sort()
        for rank in in_it:
            if not below <= rank < below + len(kept):
                return None
            found[rank] = kept[rank - below]
    return found


def t_critical(confidence: float, df: int) -> float:
    """The two-sided critical value of Student's t with ``df`` degrees of freedom: the ``t``
    with ``P(|T| <= t) = confidence`` (e.g. 2.776 for 0.95 and 4).

    Exact for whole ``df`` through the finite series of P(|T| <= t) in θ = atan(t / sqrt(df))
    (Abramowitz and Stegun, 26.7.3 and 26.7.4), solved for θ by bisection; so an interval
    over a handful of replicates needs no statistics package.
    """
    if df < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"df={df} and confidence={confidence}: need df >= 1 and 0 < confidence < 1"
        )
    low, high = 0.0, math.pi / 2
    for _ in range(100):
        mid = (low + high) / 2
        if _t_inside(mid, df) < confidence:
            low = mid
        else:
            high = mid
    theta = (low + high) / 2
    return math.sqrt(df) * math.tan(theta)


def _t_inside(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan θ) for Student's t with ``df`` degrees of freedom."""
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = total = math.cos(theta)
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * total)
