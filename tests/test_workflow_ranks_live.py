"""Graph ranks on the live cluster: the client computes each workflow task's remaining path
and propagated deadline at submission, the records keep them, and the dispatcher's
``critical_path`` and ``edf`` order by them as the simulator does (docs/workflows.md,
"Ranks and propagated deadlines")."""

from __future__ import annotations

import json
import time

import pytest

from scheduler.models import PendingTask

CHAIN = 0.3  # seconds per link of the deadline test's chain
LINK, LINKS = 0.1, 8  # the critical-path test's chain: each link shorter than a short task
SHORT = 0.2  # seconds per short task of the critical-path test


def chain_and_shorts(prefix: str, shorts: int) -> list[dict[str, object]]:
    """``shorts`` independent tasks listed (so submitted) first, then a chain of
    ``LINKS`` links, each shorter than one of them but longer together: fifo starts the
    shorts first; critical path the chain's head, and only by its path (on its own
    expected duration it would rank below every short task)."""
    items: list[dict[str, object]] = [
        {"id": f"{prefix}.s{i}", "name": "sleep", "args": [SHORT], "expected_duration": SHORT}
        for i in range(shorts)
    ]
    for i in range(LINKS):
        item: dict[str, object] = {
            "id": f"{prefix}.c{i}",
            "name": "sleep",
            "args": [LINK],
            "expected_duration": LINK,
        }
        if i:
            item["depends_on"] = [f"{prefix}.c{i - 1}"]
        items.append(item)
    return items


@pytest.mark.parametrize("strategy", ["critical_path", "fifo"])
def test_critical_path_starts_the_long_chain_first_where_fifo_does_not(cluster, strategy):
    c = cluster(strategy=strategy)
    c.dispatcher()
    c.worker("w1@test", slots=1)
    _, handles = c.client.submit_workflow(chain_and_shorts("cp", 6))
    records = {r.id: r for r in c.client.wait(handles, timeout=120)}
    assert all(r.state == "succeeded" for r in records.values())
    # the ranks the client stored: the chain's head carries the whole chain
    raw = c.store.client.hmget(c.store.keys.task("cp.c0"), "path", "latest")
    assert raw[0] is not None
    assert float(raw[0]) == pytest.approx(LINKS * LINK)
    assert raw[1] is None  # no deadline anywhere: no propagated deadline stored
    head = records["cp.c0"].started_at
    shorts = [records[f"cp.s{i}"].started_at for i in range(6)]
    if strategy == "critical_path":
        assert all(head < s for s in shorts), (head, shorts)
    else:  # fifo keeps submission order: every short before the chain's head
        assert all(s < head for s in shorts), (head, shorts)


def test_edf_meets_a_sink_deadline_behind_a_long_chain_through_propagated_deadlines(cluster):
    """A deadline on the chain's sink, many unrelated short tasks with later deadlines of
    their own: on the tasks' own deadlines edf would run every short task first (the
    chain has none) and finish the sink about 4 s in, past its 3 s; with the propagated
    deadlines the chain's links come first and the sink makes it."""
    c = cluster(strategy="edf")
    c.dispatcher()
    c.worker("w1@test", slots=1)
    t0 = time.time()
    sink_deadline = t0 + 3.0
    items: list[dict[str, object]] = [
        {
            "id": f"bp.s{i}",
            "name": "sleep",
            "args": [0.2],
            "expected_duration": 0.2,
            "deadline": t0 + 60.0,
        }
        for i in range(15)
    ]
    for i in range(4):
        item: dict[str, object] = {
            "id": f"bp.c{i}",
            "name": "sleep",
            "args": [CHAIN],
            "expected_duration": CHAIN,
        }
        if i:
            item["depends_on"] = [f"bp.c{i - 1}"]
        if i == 3:
            item["deadline"] = sink_deadline
        items.append(item)
    handles = c.client.submit_many(items)  # in-batch depends_on: one workflow batch
    records = {r.id: r for r in c.client.wait(handles, timeout=120)}
    assert all(r.state == "succeeded" for r in records.values())
    # the head's propagated deadline: the sink's less the three links after it
    # (the margin, YM_DEADLINE_MARGIN, is 0 here); the shorts keep their own
    latest = c.store.client.hget(c.store.keys.task("bp.c0"), "latest")
    assert latest is not None
    assert float(latest) == pytest.approx(sink_deadline - 3 * CHAIN)
    assert c.store.client.hget(c.store.keys.task("bp.s0"), "latest") is None
    assert c.store.client.hget(c.store.keys.task("bp.s0"), "path") is None
    head = records["bp.c0"].started_at
    assert all(head < records[f"bp.s{i}"].started_at for i in range(15))
    sink = records["bp.c3"]
    assert sink.finished_at is not None
    assert sink.finished_at <= sink_deadline, sink.finished_at - sink_deadline


def test_the_pending_wire_form_carries_path_and_propagated_deadline_only_when_present():
    """A plain entry decodes with no path; a workflow entry's ``w`` is its path, its
    ``d`` (the propagated deadline, written in place of its own by _pending_wire.lua)
    its deadline."""
    plain = {"id": "a", "n": "x", "p": 5, "s": 1, "t": 1.0, "d": 9.0}
    assert PendingTask.from_wire(plain).path == 0.0
    flow = dict(plain, w=2.5, d=7.0)
    task = PendingTask.from_wire(flow)
    assert (task.path, task.deadline) == (2.5, 7.0)


def test_entries_and_a_dispatcher_taking_over_see_the_stored_path_and_deadline(cluster):
    """Without a dispatcher: the released root's inbox entry and the pending index read by a
    dispatcher taking over (``PendingQueue.load``) both give the root its path and its
    propagated deadline; a task of the batch with no link carries neither."""
    c = cluster(strategy="edf", deadline_margin=0.5)
    due = time.time() + 100.0
    c.client.submit_many(
        [
            {"id": "tk.lone", "name": "sleep", "args": [0.1], "expected_duration": 0.1},
            {"id": "tk.a", "name": "sleep", "args": [1.0], "expected_duration": 1.0},
            {
                "id": "tk.b",
                "name": "sleep",
                "args": [2.0],
                "expected_duration": 2.0,
                "depends_on": ["tk.a"],
                "deadline": due,
            },
        ]
    )
    entries = [
        PendingTask.from_wire(json.loads(e))
        for e in c.store.client.lrange(c.store.keys.inbox, 0, -1)
    ]
    loaded = list(c.store.pending.load())
    for tasks in (entries, loaded):
        by_id = {t.id: t for t in tasks}
        assert set(by_id) == {"tk.lone", "tk.a"}  # tk.b waits
        assert by_id["tk.a"].path == pytest.approx(3.0)
        assert by_id["tk.a"].deadline == pytest.approx(due - 2.0 - 0.5)
        assert (by_id["tk.lone"].path, by_id["tk.lone"].deadline) == (0.0, None)
    raw = c.store.client.lrange(c.store.keys.inbox, 0, -1)
    lone = next(json.loads(e) for e in raw if '"tk.lone"' in e)
    assert "w" not in lone
    assert "d" not in lone


def test_a_retried_workflow_task_keeps_its_path_and_deadline_when_promoted(cluster):
    """``promote.lua`` (a retry's backoff over) builds the entry from the record too: the
    task is put in the delayed set as a retry leaves it, and promoted."""
    c = cluster(strategy="edf")
    due = time.time() + 100.0
    c.client.submit_many(
        [
            {"id": "rp.a", "name": "sleep", "args": [1.0], "expected_duration": 1.0},
            {
                "id": "rp.b",
                "name": "sleep",
                "args": [2.0],
                "expected_duration": 2.0,
                "depends_on": ["rp.a"],
                "deadline": due,
            },
        ]
    )
    r, k = c.store.client, c.store.keys
    r.delete(k.inbox)
    r.zrem(k.pending, "rp.a")
    r.zadd(k.delayed, {"rp.a": 0})
    assert c.store.pending.promote()[0] == 1
    (entry,) = [PendingTask.from_wire(json.loads(e)) for e in r.lrange(k.inbox, 0, -1)]
    assert entry.id == "rp.a"
    assert entry.path == pytest.approx(3.0)
    assert entry.deadline == pytest.approx(due - 2.0)
