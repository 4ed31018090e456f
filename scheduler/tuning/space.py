"""Search spaces: the settings a strategy reads that carry a search range.

Each strategy class says which settings it reads (``settings_read``) and each
setting's declaration says what a search may try (a
:class:`~scheduler.searchable.Range` or :class:`~scheduler.searchable.Choice`
in its ``Annotated`` type; the ``weights`` object's fields carry theirs). So
a setting becomes searchable by one line where it is declared. A user may
narrow or fix a dimension (``--space priority_aging=0..0.5``,
``--space edf_late=expire``); a space none of whose points passes the rules
(:mod:`scheduler.tuning.rules`) is refused before any trial runs.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from scheduler.errors import InvalidInputError
from scheduler.searchable import Choice, Range, Searchable
from scheduler.settings import Settings
from scheduler.tuning.rules import Config, settings_for, settings_read

PROBES = 300  # random points tried, besides the corners, before a space is called empty
MAX_CORNERS = 256


@dataclass(frozen=True)
class Dimension:
    """One searchable setting.

    Attributes:
        setting: The setting's name; a field of ``weights`` is ``weights.<field>``.
        domain: What a search may try.
    """

    setting: str
    domain: Searchable

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as the experiment record and the advisor request show it."""
        if isinstance(self.domain, Choice):
            return {"setting": self.setting, "choice": list(self.domain.values)}
        d = self.domain
        return {"setting": self.setting, "low": d.low, "high": d.high, "log": d.log}


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a search may vary for one strategy (none: a single point).

    Attributes:
        strategy: The strategy's name.
        dimensions: Its searchable settings.
    """

    strategy: str
    dimensions: tuple[Dimension, ...]

    def config(self, point: Mapping[str, Any]) -> Config:
        """The configuration of a point (setting name -> value; ``weights.x`` nested)."""
        params: dict[str, Any] = {}
        for name, value in point.items():
            outer, dot, inner = name.partition(".")
            if dot:
                params.setdefault(outer, {})[inner] = value
            else:
                params[name] = value
        return Config(self.strategy, params)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"strategy": self.strategy, "dimensions": [d.as_dict() for d in self.dimensions]}

    def probe_points(self, seed: int = 0) -> Iterable[dict[str, Any]]:
        """Points to look for a valid one in: the corners (up to 256), then random points."""
        if not self.dimensions:
            yield {}
            return
        ends = [_ends(d.domain) for d in self.dimensions]
        for corner in itertools.islice(itertools.product(*ends), MAX_CORNERS):
            yield {d.setting: v for d, v in zip(self.dimensions, corner, strict=True)}
        rng = random.Random(seed)
        for _ in range(PROBES):
            yield {d.setting: _draw(d.domain, rng) for d in self.dimensions}

    def check(self, base: Settings) -> None:
        """Refuse a space with no valid point.

        Raises:
            InvalidInputError: Naming the strategy's space, the ranges and the
                first rule a probed point broke.
        """
        first: InvalidInputError | None = None
        for point in self.probe_points():
            try:
                settings_for(self.config(point), base)
                return
            except InvalidInputError as exc:
                first = first or exc
        shown = {d.setting: d.domain.describe() for d in self.dimensions}
        raise InvalidInputError(
            f"search space of {self.strategy}",
            shown,
            "a space with at least one point every rule accepts",
            problem=f"no point of it is valid; for example {first}",
        )


def space_for(strategy: str, overrides: Mapping[str, Searchable] | None = None) -> SearchSpace:
    """The search space of ``strategy``, with the user's narrowed dimensions.

    Raises:
        InvalidInputError: For an unknown strategy, or an override that is not
            one of its dimensions' settings.
    """
    dims: list[Dimension] = []
    for name in settings_read(strategy):
        dims.extend(_dimensions(name))
    overrides = overrides or {}
    for name, domain in overrides.items():
        dims = [Dimension(d.setting, domain) if d.setting == name else d for d in dims]
    return SearchSpace(strategy, tuple(dims))


def searchable_settings(strategies: Iterable[str]) -> list[str]:
    """Every searchable setting of ``strategies``, in their order."""
    names: list[str] = []
    for strategy in strategies:
        for d in space_for(strategy).dimensions:
            if d.setting not in names:
                names.append(d.setting)
    return names


def parse_override(text: str) -> tuple[str, Searchable]:
    """``NAME=LOW..HIGH`` (a range), ``NAME=A,B`` (a choice) or ``NAME=VALUE`` (fixed).

    Values are JSON where they parse (``true``, ``0.5``), else bare words (``expire``).

    Raises:
        InvalidInputError: Naming the ``--space`` text and the accepted forms.
    """
    name, sep, rest = text.partition("=")
    allowed = "NAME=LOW..HIGH, NAME=A,B or NAME=VALUE, e.g. priority_aging=0..0.5"
    if not sep or not name or not rest:
        raise InvalidInputError("--space", text, allowed)
    if ".." in rest:
        low_text, _, high_text = rest.partition("..")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise InvalidInputError("--space", text, allowed, problem="ends not numbers") from None
        if low > high:
            raise InvalidInputError("--space", text, allowed, problem="low end above high end")
        return name, Range(low, high)
    return name, Choice(tuple(_value(v) for v in rest.split(",")))


def check_overrides(overrides: Mapping[str, Searchable], strategies: Iterable[str]) -> None:
    """Refuse an override naming no searchable setting of the strategies searched.

    Raises:
        InvalidInputError: Naming the override and the searchable settings.
    """
    known = searchable_settings(strategies)
    for name in overrides:
        if name not in known:
            raise InvalidInputError(
                "--space",
                name,
                "a searchable setting of the strategies searched: " + ", ".join(known),
            )


def _dimensions(name: str) -> list[Dimension]:
    field = Settings.model_fields[name]
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [
            Dimension(f"{name}.{inner}", domain)
            for inner, sub in annotation.model_fields.items()
            if (domain := _domain(sub.metadata)) is not None
        ]
    domain = _domain(field.metadata)
    return [] if domain is None else [Dimension(name, domain)]


def _domain(metadata: list[Any]) -> Searchable | None:
    return next((m for m in metadata if isinstance(m, Range | Choice)), None)


def _ends(domain: Searchable) -> tuple[Any, ...]:
    if isinstance(domain, Choice):
        return domain.values
    return (domain.low, domain.high)


def _draw(domain: Searchable, rng: random.Random) -> Any:
    if isinstance(domain, Choice):
        return rng.choice(domain.values)
    return rng.uniform(domain.low, domain.high)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
