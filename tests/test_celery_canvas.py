"""Celery's canvas on yardmaster (issue #16 item 4): chain, group and chord become
dependent submissions on the server, with Celery's result passing.

Each test runs a real dispatcher and ``yardmaster worker -A tests.canvas_tasks`` and
checks that every task of the canvas went through yardmaster (its record exists).
"""

from __future__ import annotations

import importlib
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from celery import chain, chord, group
from celery.exceptions import TaskRevokedError

from scheduler.errors import InvalidInputError
from scheduler.models import TaskRecord
from workers.publishing import UnsupportedOptionError

MODULE = "tests.canvas_tasks"

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")


@pytest.fixture
def canvas(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ModuleType]:
    """A cluster with a dispatcher and a two-slot worker running ``-A tests.canvas_tasks``."""
    c = cluster()
    monkeypatch.setenv("YM_REDIS_URL", c.redis.url)
    monkeypatch.setenv("YM_NAMESPACE", c.namespace)
    sys.modules.pop(MODULE, None)
    mod = importlib.import_module(MODULE)
    c.dispatcher()
    c.worker("w1@test", slots=2, app_module=MODULE)
    return c, mod


def record(c: Any, task_id: str) -> TaskRecord:
    found = c.store.tasks.records([task_id])[0]
    assert found is not None, f"no yardmaster record for {task_id}"
    return found


def args_of(c: Any, task_id: str) -> Any:
    """The arguments a task ran with, as its record keeps them (after result passing)."""
    return json.loads(c.store.tasks.fields([task_id], ["args"])[0]["args"])


def test_chain_passes_each_result_as_the_next_first_argument(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 2), mod.mul.s(10), mod.add.s(5)).apply_async()
    assert res.get(timeout=60) == 35  # ((1 + 2) * 10) + 5
    assert res.parent.get(timeout=5) == 30
    assert res.parent.parent.get(timeout=5) == 3
    assert res.parent.parent.parent is None
    last, middle, first = (
        record(c, res.id),
        record(c, res.parent.id),
        record(c, res.parent.parent.id),
    )
    assert first.state == middle.state == last.state == "succeeded"
    assert middle.depends_on == (first.id,)
    assert last.depends_on == (middle.id,)
    assert args_of(c, middle.id) == [3, 10]  # the parent's result itself, not a list
    # the pipe form and .delay() are the same chain
    piped = (mod.add.s(2, 2) | mod.mul.s(3)).delay()
    assert piped.get(timeout=60) == 12


def test_immutable_link_gets_no_result(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 1), mod.const.si("fixed"), mod.const.s()).apply_async()
    assert res.get(timeout=60) == "fixed"
    # add.s(1) gets const's result: "fixed" + 1 fails, so the chain sends a result on
    assert res.parent.get(timeout=60) == "fixed"
    assert args_of(c, res.parent.id) == ["fixed"]
    assert record(c, res.parent.id).depends_on == (res.parent.parent.id,)
    assert args_of(c, res.id) == ["fixed"]


def test_failing_link_cancels_the_rest(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 1), mod.boom.s(), mod.add.s(1), mod.add.s(2)).apply_async()
    with pytest.raises(TaskRevokedError):
        res.get(timeout=60)
    failed = res.parent.parent
    with pytest.raises(mod.CanvasError):
        failed.get(timeout=5)
    assert record(c, failed.id).state == "failed"
    assert record(c, failed.parent.id).state == "succeeded"
    nxt = record(c, res.parent.id)
    assert nxt.state == "cancelled"
    assert f"parent {failed.id}" in (nxt.error or "")
    assert record(c, res.id).state == "cancelled"
    assert nxt.started_at is None
    assert record(c, res.id).started_at is None


def test_link_runs_after_success_with_the_result(canvas: Any) -> None:
    c, mod = canvas
    first, second = mod.mul.s(10), mod.const.si("after")
    linked = first.freeze().id, second.freeze().id  # the ids the links are sent with
    res = mod.add.apply_async((1, 2), link=[first, second])
    assert res.get(timeout=60) == 3
    assert mod.add.AsyncResult(linked[0]).get(timeout=60) == 30
    assert mod.add.AsyncResult(linked[1]).get(timeout=60) == "after"
    assert record(c, linked[0]).depends_on == (res.id,)
    # a failed task's link is not run (cancelled, naming it)
    on_fail = mod.const.s()
    not_run = on_fail.freeze().id
    bad = mod.boom.apply_async((1,), link=on_fail)
    with pytest.raises(mod.CanvasError):
        bad.get(timeout=60)
    cancelled = record(c, not_run)
    assert cancelled.state == "cancelled"
    assert cancelled.started_at is None


def test_group_results_in_order(canvas: Any) -> None:
    c, mod = canvas
    res = group(mod.add.s(i, i) for i in range(6)).apply_async()
    assert res.get(timeout=60) == [0, 2, 4, 6, 8, 10]
    for one in res.results:
        assert record(c, one.id).state == "succeeded"


def test_group_is_one_batch_all_or_none(canvas: Any) -> None:
    c, mod = canvas
    sigs = [mod.add.s(1, 1), mod.add.s(2, 2), mod.add.s(3, 3).set(priority=99)]
    g = group(sigs)
    ids = [r.id for r in g.freeze().results]  # the ids the group sends its tasks with
    with pytest.raises(InvalidInputError) as info:
        g.apply_async()
    assert info.value.field == "priority"
    assert c.store.tasks.records(ids) == [None, None, None]
    # the same group, valid, runs
    assert group(mod.add.s(i, 1) for i in range(3)).apply_async().get(timeout=60) == [1, 2, 3]


def test_chord_body_runs_once_with_header_results_in_order(canvas: Any) -> None:
    c, mod = canvas
    res = chord(mod.add.s(i, 100) for i in range(8))(mod.collect.s())
    assert res.get(timeout=60) == [100 + i for i in range(8)]
    body = record(c, res.id)
    header_ids = [r.id for r in res.parent.results]
    assert body.depends_on == tuple(header_ids)
    assert all(record(c, i).state == "succeeded" for i in header_ids)
    assert body.attempt == 1
    assert c.store.tasks.fields([res.id], ["releases"]) == [{"releases": "1"}]


def test_chord_of_a_chain_in_its_header(canvas: Any) -> None:
    c, mod = canvas
    header = [chain(mod.add.s(1, 1), mod.mul.s(10)), mod.add.s(5, 5)]
    res = chord(header)(mod.collect.s())
    assert res.get(timeout=60) == [20, 10]
    body = record(c, res.id)
    chain_last, single = (record(c, r.id) for r in res.parent.results)
    assert body.depends_on == (chain_last.id, single.id)
    assert chain_last.depends_on  # the chain's first link, through yardmaster too
    assert record(c, chain_last.depends_on[0]).state == "succeeded"


def test_failing_header_task_cancels_the_body(canvas: Any) -> None:
    c, mod = canvas
    header = [mod.add.s(1, 1), mod.boom.s(2)]
    res = chord(header)(mod.collect.s())
    with pytest.raises(TaskRevokedError):
        res.get(timeout=60)
    body = record(c, res.id)
    assert body.state == "cancelled"
    assert body.started_at is None
    failed = res.parent.results[1].id
    assert record(c, failed).state == "failed"
    assert f"parent {failed}" in (body.error or "")


def test_group_then_task_in_a_chain_is_a_chord(canvas: Any) -> None:
    c, mod = canvas
    res = (group(mod.add.s(i, i) for i in range(3)) | mod.collect.s()).apply_async()
    assert res.get(timeout=60) == [0, 2, 4]
    assert len(record(c, res.id).depends_on) == 3


def test_empty_chord_runs_its_body_with_no_results(canvas: Any) -> None:
    c, mod = canvas
    res = chord([])(mod.collect.s())
    assert res.get(timeout=60) == []
    assert record(c, res.id).state == "succeeded"


def test_unsupported_canvas_options_raise_naming_them(canvas: Any) -> None:
    c, mod = canvas
    with pytest.raises(UnsupportedOptionError) as info:
        chain(mod.add.s(1, 2), mod.add.s(3)).apply_async(countdown=5)
    assert info.value.field == "countdown"
    with pytest.raises(UnsupportedOptionError) as info:  # a countdown inside a nested group
        chain(mod.add.s(1, 2), group(mod.add.s(1), mod.add.s(2).set(countdown=5))).apply_async()
    assert info.value.field == "countdown"
    # a chord whose header is refused midway stores nothing, and a later chord works
    before = c.store.events.counters().get("submitted", 0)
    with pytest.raises(InvalidInputError):
        chord([mod.add.s(1, 1), mod.add.s(2, 2).set(priority=99)])(mod.collect.s())
    assert c.store.events.counters().get("submitted", 0) == before
    assert chord([mod.add.s(1, 1)])(mod.collect.s()).get(timeout=60) == [2]
    assert c.store.events.counters().get("submitted", 0) == before + 2


def test_map_starmap_and_chunks(canvas: Any) -> None:
    c, mod = canvas
    mapped = mod.const.map([1, "two", [3]]).apply_async()
    assert mapped.get(timeout=60) == [1, "two", [3]]
    assert record(c, mapped.id).state == "succeeded"
    starred = mod.add.starmap([(1, 2), (3, 4)]).apply_async()
    assert starred.get(timeout=60) == [3, 7]
    assert record(c, starred.id).state == "succeeded"
    chunked = mod.add.chunks([(i, i) for i in range(6)], 2).apply_async()
    assert chunked.get(timeout=60) == [[0, 2], [4, 6], [8, 10]]
    for part in chunked.results:  # a group of celery.starmap tasks, one per chunk
        assert record(c, part.id).state == "succeeded"


def records_named(c: Any, name: str) -> list[TaskRecord]:
    """Every record of task ``name`` in ``c``'s namespace."""
    r, prefix = c.store.client, c.store.keys.task_prefix
    ids = [
        key[len(prefix) :]
        for key in r.scan_iter(match=prefix + "*", count=500)
        if r.type(key) == "hash" and r.hget(key, "name") == name
    ]
    return [rec for rec in c.store.tasks.records(ids) if rec is not None]


def releases(c: Any, task_id: str) -> int:
    return int(c.store.tasks.fields([task_id], ["releases"])[0].get("releases") or 0)


def test_link_error_runs_once_with_the_failed_task_id_after_its_last_retry(canvas: Any) -> None:
    c, mod = canvas
    errback = mod.on_error.s().set(task_id="errback-1")
    res = mod.fail_after_retry.apply_async(("x",), link_error=errback)
    with pytest.raises(mod.CanvasError):
        res.get(timeout=60)
    failed = record(c, res.id)
    assert failed.state == "failed"
    assert failed.attempt == 2  # the run and its one retry: the errback waited for both
    got = mod.app.AsyncResult("errback-1").get(timeout=60)
    assert got == [res.id, "FAILURE", "CanvasError", "failed 'x'"]
    ran = record(c, "errback-1")
    assert ran.state == "succeeded"
    assert ran.worker == "w1@test"
    assert ran.depends_on == (res.id,)
    assert args_of(c, "errback-1") == [res.id]  # Celery's old-style call: errback(task_id)
    assert releases(c, "errback-1") == 1
    assert len(records_named(c, "canvas.on_error")) == 1


def test_link_error_is_cancelled_unrun_when_the_task_succeeds(canvas: Any) -> None:
    c, mod = canvas
    res = mod.add.apply_async(
        (1, 2),
        link=mod.mul.s(10).set(task_id="link-2"),
        link_error=mod.on_error.s().set(task_id="errback-2"),
    )
    assert res.get(timeout=60) == 3
    assert mod.app.AsyncResult("link-2").get(timeout=60) == 30  # the link ran
    skipped = record(c, "errback-2")
    assert skipped.state == "cancelled"
    assert skipped.started_at is None
    assert skipped.reason == f"parent {res.id} succeeded"
    assert releases(c, "errback-2") == 0
    with pytest.raises(TaskRevokedError):
        mod.app.AsyncResult("errback-2").get(timeout=10)


def test_link_error_on_a_chain_runs_once_for_the_link_that_failed(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.add.s(1, 1), mod.boom.s(), mod.add.s(1)).apply_async(
        link_error=mod.on_error.s()
    )
    with pytest.raises(TaskRevokedError):
        res.get(timeout=60)
    boom_id = res.parent.id
    assert record(c, boom_id).state == "failed"
    # the chain's result is known (its last link cancelled) in the same step that
    # releases the errback, which then still has to run: wait until every errback ended
    c.wait_for(
        lambda: all(
            r.state in ("succeeded", "cancelled") for r in records_named(c, "canvas.on_error")
        ),
        "the errbacks to end",
        60,
    )
    errbacks = records_named(c, "canvas.on_error")
    ran = [rec for rec in errbacks if rec.state == "succeeded"]
    assert len(ran) == 1, errbacks
    assert args_of(c, ran[0].id) == [boom_id]
    assert mod.app.AsyncResult(ran[0].id).get(timeout=10)[2] == "CanvasError"
    # the others (on the link that succeeded, the link cancelled after it) never ran
    others = [rec for rec in errbacks if rec.id != ran[0].id]
    assert others, "Celery puts the chain's errback on each of its links"
    assert all(rec.state == "cancelled" and rec.started_at is None for rec in others), others


def test_link_error_bad_input_raises_naming_it_and_stores_nothing(canvas: Any) -> None:
    c, mod = canvas
    before = c.store.events.counters().get("submitted", 0)
    bad = [
        mod.on_error_new_style.s(),  # Celery would call it (request, exc, traceback)
        group(mod.on_error.s(), mod.on_error.s()),
        mod.on_error.s().set(countdown=5),
        mod.on_error.s().set(priority=99),
    ]
    for errback in bad:
        with pytest.raises(InvalidInputError) as info:
            mod.add.apply_async((1, 2), link_error=errback)
        assert info.value.field in ("link_error", "priority"), errback
    assert c.store.events.counters().get("submitted", 0) == before
    # an immutable errback takes no id, so a new-style task is fine with .si()
    assert mod.add.apply_async((1, 2), link_error=mod.const.si("x")).get(timeout=60) == 3


def replacement_of(c: Any, task_id: str) -> str:
    """The id ``self.replace`` handed ``task_id``'s dependents to (its record's note)."""
    found = c.store.tasks.fields([task_id], ["replaced_by"])[0].get("replaced_by")
    assert found, f"{task_id} was not replaced"
    return str(found)


def test_replace_gives_the_caller_the_replacement_s_result(canvas: Any) -> None:
    c, mod = canvas
    res = mod.replacer.delay(4)
    assert res.get(timeout=60) == 8  # add(4, 4), read through the replaced task's id
    assert res.state == "SUCCESS"
    new = replacement_of(c, res.id)
    assert record(c, res.id).state == "succeeded"  # the replaced run ended (Ignore)
    assert record(c, new).state == "succeeded"
    assert record(c, new).worker == "w1@test"
    assert args_of(c, new) == [4, 4]


def test_replace_moves_a_chain_s_next_step_a_chord_body_and_links_to_the_replacement(
    canvas: Any,
) -> None:
    c, mod = canvas
    # a chain's next step now waits on the replacement, and gets its result
    res = chain(mod.replacer.s(3), mod.mul.s(10)).apply_async()
    assert res.get(timeout=60) == 60
    new = replacement_of(c, res.parent.id)
    assert record(c, res.id).depends_on == (new,)
    assert args_of(c, res.id) == [6, 10]
    # a chord's body counts the replacement in the replaced task's place (order kept)
    body = chord([mod.add.s(1, 1), mod.replacer.s(5), mod.add.s(2, 2)])(mod.collect.s())
    assert body.get(timeout=60) == [2, 10, 4]
    assert int(c.store.tasks.fields([body.id], ["releases"])[0]["releases"]) == 1
    # a link callback runs after the replacement, with its result
    linked = mod.replacer.apply_async((2,), link=mod.mul.s(3).set(task_id="after-replace"))
    assert linked.get(timeout=60) == 4
    assert mod.app.AsyncResult("after-replace").get(timeout=60) == 12
    assert record(c, "after-replace").depends_on == (replacement_of(c, linked.id),)


def test_replace_by_a_chain_hands_dependents_to_its_last_task(canvas: Any) -> None:
    c, mod = canvas
    res = chain(mod.replacer.s(1, "chain"), mod.add.s(100)).apply_async()
    assert res.get(timeout=60) == 110  # ((1 + 1) * 5) + 100
    assert res.parent.get(timeout=10) == 10  # the replaced task: the chain's result
    last = replacement_of(c, res.parent.id)
    assert record(c, last).name == "canvas.mul"
    assert record(c, res.id).depends_on == (last,)
