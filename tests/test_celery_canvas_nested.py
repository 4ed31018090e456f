"""Nested canvases on yardmaster (issue #16 item 4): a group or a chord as a chain's
step, a chain as a chord's body, a group of chains, a chain of chords, nested groups.

Each compiles into server-side dependencies (workers/publishing.py); every test runs a
real dispatcher and ``yardmaster worker -A tests.canvas_tasks`` and checks the records.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import chain, chord, group
from celery.exceptions import TaskRevokedError

from tests.test_celery_canvas import args_of, canvas, record

__all__ = ["canvas"]  # the fixture, shared with tests/test_celery_canvas.py

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")


def test_chain_with_a_group_step_then_a_task(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 1), group(mod.add.s(1), mod.mul.s(10)), mod.collect.s()).apply_async()
    assert res.get(timeout=60) == [3, 20]  # the group's list is the next step's argument
    body = record(c, res.id)
    assert len(body.depends_on) == 2
    members = [record(c, m) for m in body.depends_on]
    assert [args_of(c, m.id) for m in members] == [[2, 1], [2, 10]]
    head = {m.depends_on for m in members}
    assert len(head) == 1  # both members wait on the chain's first task
    (head_id,) = next(iter(head))
    assert record(c, head_id).state == "succeeded"
    assert args_of(c, res.id) == [[3, 20]]
    assert record(c, head_id).name == "canvas.add"
    assert args_of(c, head_id) == [1, 1]


def test_chain_ending_in_a_group(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(2, 3), group(mod.add.s(1), mod.mul.s(2))).apply_async()
    assert res.get(timeout=60) == [6, 10]
    for member in res.results:
        assert record(c, member.id).state == "succeeded"
        assert len(record(c, member.id).depends_on) == 1


def test_chord_whose_body_is_a_chain(canvas: Any) -> None:
    c, mod = canvas
    res = chord([mod.add.s(1, 1), mod.add.s(2, 2)])(chain(mod.collect.s(), mod.const.s()))
    assert res.get(timeout=60) == [2, 4]
    last = record(c, res.id)
    assert last.name == "canvas.const"
    (collector,) = last.depends_on
    assert record(c, collector).name == "canvas.collect"
    assert len(record(c, collector).depends_on) == 2
    assert args_of(c, collector) == [[2, 4]]


def test_group_of_chains(canvas: Any) -> None:
    c, mod = canvas
    res = group(chain(mod.add.s(i, i), mod.mul.s(10)) for i in range(3)).apply_async()
    assert res.get(timeout=60) == [0, 20, 40]
    for member in res.results:
        rec = record(c, member.id)
        assert rec.name == "canvas.mul"
        assert rec.state == "succeeded"
        assert len(rec.depends_on) == 1


def test_chain_of_chords(canvas: Any) -> None:
    c, mod = canvas
    first = chord([mod.add.s(1, 1), mod.add.s(2, 2)], mod.collect.s())
    second = chord([mod.const.s(), mod.const.s()], mod.collect.s())
    res = chain(first, second).apply_async()
    assert res.get(timeout=60) == [[2, 4], [2, 4]]
    body = record(c, res.id)
    assert len(body.depends_on) == 2
    for member in body.depends_on:
        assert args_of(c, member) == [[2, 4]]


def test_nested_groups(canvas: Any) -> None:
    c, mod = canvas
    res = group(mod.add.s(1, 1), group(mod.add.s(2, 2), mod.add.s(3, 3))).apply_async()
    assert res.get(timeout=60) == [2, 4, 6]  # Celery unrolls a group in a group
    into = chain(mod.add.s(0, 1), group(mod.add.s(1), group(mod.add.s(2), mod.add.s(3))))
    got = into.apply_async()
    # as on plain Celery: freezing a group unrolls an inner group last member first
    # (celery.canvas.group._freeze_unroll), so the chain's result lists 4 before 3
    assert got.get(timeout=60) == [2, 4, 3]
    for member in got.results:
        assert record(c, member.id).state == "succeeded"
        assert len(record(c, member.id).depends_on) == 1  # each waits on add(0, 1)
    for member in res.results:
        assert record(c, member.id).depends_on == ()


def test_failing_member_cancels_its_dependents_naming_it(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 1), group(mod.boom.s(), mod.add.s(1)), mod.collect.s()).apply_async()
    with pytest.raises(TaskRevokedError):
        res.get(timeout=60)
    body = record(c, res.id)
    assert body.state == "cancelled"
    failed = [m for m in body.depends_on if record(c, m).state == "failed"]
    assert len(failed) == 1
    assert failed[0] in (body.error or "")
    with pytest.raises(mod.CanvasError):  # the member's own result: the original type
        mod.app.AsyncResult(failed[0]).get(timeout=60)


def test_group_as_self_replace_s_replacement(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.replacer.s(3, "group"), mod.collect.s()).apply_async()
    assert res.get(timeout=60) == [6, 4]  # add(3, 3), add(3, 1): the group's list
    assert res.parent.get(timeout=60) == [6, 4]  # the replaced task's result, as in Celery
    (gatherer,) = record(c, res.id).depends_on
    assert record(c, gatherer).name == "celery.accumulate"
    assert len(record(c, gatherer).depends_on) == 2
    assert record(c, res.parent.id).state == "succeeded"
