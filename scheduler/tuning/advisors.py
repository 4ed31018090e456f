"""Advisors: where proposals come from, and the checks every proposal passes.

An advisor answers an :class:`AdvisorRequest` (the workload's summary, the
current configuration, the strategies and their search spaces) with a
proposal: ``{"strategy": NAME, "params": {...}, "note": "..."}``. The search
(:class:`SearchAdvisor`) is one; :class:`HttpAdvisor` posts the request as JSON
to a URL and reads the proposal from the response body (e.g. an LLM
service). Whatever the source, :func:`consult` puts each answer through

1. parsing (JSON): else ``parse_error``; nothing (an empty body, ``null``,
   ``{}``): ``empty``;
2. the schema (:class:`Proposal`, pydantic): a known strategy, parameters
   that strategy reads, no other fields: else ``schema_violation``;
3. the rules (:func:`~scheduler.tuning.rules.settings_for`: the settings' own
   ranges and rules, and no priority inversion): else ``semantic_violation``;

and a transport that fails is ``timed_out`` or ``transport_failure``. A bad
answer is retried up to ``retries`` times; when none is good the caller
keeps the current configuration. Every answer is counted by advisor and
class in this process (:func:`advisor_counts`, for the monitor), and per
consultation in its :class:`Consultation` (for the experiment record). A
valid proposal still has to pass the regression gate before anyone applies it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from scheduler.errors import InvalidInputError
from scheduler.settings import Settings, StrategyName
from scheduler.tuning.rules import Config, settings_for, settings_read
from scheduler.workload import WorkloadTask

PROTOCOL: Literal["yardmaster.tune/1"] = "yardmaster.tune/1"


class AnswerClass(StrEnum):
    """How an advisor's answer was classified."""

    ACCEPTED = "accepted"
    PARSE_ERROR = "parse_error"
    SCHEMA_VIOLATION = "schema_violation"
    SEMANTIC_VIOLATION = "semantic_violation"
    EMPTY = "empty"
    TIMED_OUT = "timed_out"
    TRANSPORT_FAILURE = "transport_failure"


class BadAnswer(Exception):  # noqa: N818  (an answer, not a program error: caught by consult)
    """An advisor's answer that cannot be used, with its class and why."""

    def __init__(self, kind: AnswerClass, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


class Proposal(BaseModel):
    """The response schema: a configuration an advisor proposes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: StrategyName
    params: dict[str, JsonValue] = Field(default_factory=dict)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _params_the_strategy_reads(self) -> Proposal:
        allowed = settings_read(self.strategy)
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"params {unknown} are not settings {self.strategy} reads; allowed: "
                + (", ".join(allowed) or "none")
            )
        return self

    def config(self) -> Config:
        """The proposal as a configuration."""
        return Config(self.strategy, dict(self.params))


class WorkloadSummary(BaseModel):
    """What an advisor learns of the workload (the training part): no task's arguments."""

    tasks: int
    span: float = Field(description="seconds from the first to the last submission")
    names: dict[str, dict[str, float]] = Field(description="per name: count, mean_duration")
    priorities: dict[str, int] = Field(description="tasks per priority level")
    with_deadline: int
    with_hint: int
    with_affinity_key: int
    affinity_keys: int
    with_dependencies: int
    failing: int


class AdvisorRequest(BaseModel):
    """The request body an advisor receives."""

    protocol: Literal["yardmaster.tune/1"] = PROTOCOL
    objective: str
    workers: int
    slots: int
    workload: WorkloadSummary
    current: dict[str, Any] = Field(description="the current configuration: strategy, params")
    strategies: list[str]
    spaces: list[dict[str, Any]] = Field(description="each strategy's searchable settings")


class Advisor(Protocol):
    """Anything that answers a request with a proposal (raw bytes, or a decoded object).

    Raises ``BadAnswer`` for a transport failure or a time-out.
    """

    name: str

    def answer(self, request: AdvisorRequest) -> bytes | dict[str, Any]: ...


@dataclass(frozen=True)
class Consultation:
    """What asking an advisor gave.

    Attributes:
        advisor: The advisor's name.
        config: The valid proposal, or None (keep the current configuration).
        note: The advisor's note with it.
        answers: Each answer's class and detail, in order.
    """

    advisor: str
    config: Config | None
    note: str = ""
    answers: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Answers per class."""
        return dict(Counter(kind for kind, _ in self.answers))


_counts: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


def advisor_counts() -> dict[str, dict[str, int]]:
    """Answers per advisor and class since this process started (for the monitor)."""
    with _lock:
        out: dict[str, dict[str, int]] = {}
        for (advisor, kind), n in _counts.items():
            out.setdefault(advisor, {})[kind] = n
        return out


def consult(
    advisor: Advisor,
    request: AdvisorRequest,
    base: Settings,
    *,
    retries: int,
    pause: Callable[[float], None] = time.sleep,
) -> Consultation:
    """Ask ``advisor`` until it gives a valid proposal, at most ``retries + 1`` times."""
    answers: list[tuple[str, str]] = []
    for attempt in range(retries + 1):
        if attempt:
            pause(min(2.0, 0.1 * 2**attempt))
        try:
            proposal = check(advisor.answer(request), base)
        except BadAnswer as bad:
            _count(advisor.name, bad.kind)
            answers.append((bad.kind.value, bad.detail))
            continue
        _count(advisor.name, AnswerClass.ACCEPTED)
        answers.append((AnswerClass.ACCEPTED.value, proposal.note))
        return Consultation(advisor.name, proposal.config(), proposal.note, answers)
    return Consultation(advisor.name, None, "", answers)


def check(raw: bytes | dict[str, Any], base: Settings) -> Proposal:
    """Parse, schema-check and rule-check one answer.

    Raises:
        BadAnswer: Classified as the module docstring says.
    """
    if isinstance(raw, bytes):
        if not raw.strip():
            raise BadAnswer(AnswerClass.EMPTY, "the answer has no body")
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadAnswer(AnswerClass.PARSE_ERROR, f"not JSON: {exc}") from None
    if raw is None or raw == {}:
        raise BadAnswer(AnswerClass.EMPTY, f"the answer is {json.dumps(raw)}")
    try:
        proposal = Proposal.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the answer)"
        problem = str(first["msg"]).removeprefix("Value error, ")
        raise BadAnswer(AnswerClass.SCHEMA_VIOLATION, f"{where}: {problem}") from None
    try:
        settings_for(proposal.config(), base)
    except InvalidInputError as exc:
        raise BadAnswer(AnswerClass.SEMANTIC_VIOLATION, str(exc)) from None
    return proposal


def summarize(tasks: Sequence[WorkloadTask]) -> WorkloadSummary:
    """The summary an advisor receives of ``tasks``."""
    names: dict[str, list[float]] = {}
    for t in tasks:
        names.setdefault(t.name, []).append(t.duration)
    priorities = Counter(str(t.priority) for t in tasks)
    submits = [t.submit_at for t in tasks]
    return WorkloadSummary(
        tasks=len(tasks),
        span=max(submits) - min(submits) if submits else 0.0,
        names={n: {"count": len(d), "mean_duration": sum(d) / len(d)} for n, d in names.items()},
        priorities=dict(sorted(priorities.items())),
        with_deadline=sum(t.deadline is not None for t in tasks),
        with_hint=sum(t.expected_duration is not None for t in tasks),
        with_affinity_key=sum(t.affinity_key is not None for t in tasks),
        affinity_keys=len({t.affinity_key for t in tasks if t.affinity_key is not None}),
        with_dependencies=sum(bool(t.depends_on) for t in tasks),
        failing=sum(t.fails for t in tasks),
    )


class HttpAdvisor:
    """Posts the request as JSON to ``url``; the response body is the proposal.

    Uses the standard library's HTTP client: one POST per attempt needs
    nothing more, and the tuning command then adds no dependency for it.

    Args:
        url: An ``http://`` or ``https://`` URL.
        timeout: Seconds allowed for the whole answer.
    """

    name = "http"

    def __init__(self, url: str, timeout: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError("--advisor", url, "search, or an http:// or https:// URL")
        self.url = url
        self.timeout = timeout

    def answer(self, request: AdvisorRequest) -> bytes:
        body = request.model_dump_json().encode()
        post = urllib.request.Request(  # noqa: S310  (the scheme is checked above)
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        began = time.monotonic()
        try:
            with urllib.request.urlopen(post, timeout=self.timeout) as response:  # noqa: S310
                data: bytes = response.read()
        except urllib.error.HTTPError as exc:
            raise BadAnswer(
                AnswerClass.TRANSPORT_FAILURE, f"HTTP {exc.code} {exc.reason}"
            ) from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise BadAnswer(
                    AnswerClass.TIMED_OUT, f"no answer within {self.timeout:g}s"
                ) from None
            raise BadAnswer(AnswerClass.TRANSPORT_FAILURE, str(reason)) from None
        if time.monotonic() - began > self.timeout:
            raise BadAnswer(AnswerClass.TIMED_OUT, f"the answer took over {self.timeout:g}s")
        return data


def _count(advisor: str, kind: AnswerClass) -> None:
    with _lock:
        _counts[(advisor, kind.value)] += 1
