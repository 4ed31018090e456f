"""The Redis lock (owner token, TTL, renewal, safe release) and the dispatcher lease built on it."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store, connect
from scheduler.store.lock import Lock


@pytest.fixture
def store(redis_server):
    return Store(connect(redis_server.url), load_settings(namespace="locktest"))


def make_lock(store, ttl, token=None):
    return Lock(store.client, store.scripts, store.keys.guard("shared"), ttl, token)


def test_only_one_of_eight_contending_threads_holds_the_lock_at_a_time(store):
    inside = 0
    peak = 0
    entries = 0
    guard = threading.Lock()

    def contend() -> None:
        nonlocal inside, peak, entries
        lock = make_lock(store, ttl=5.0)
        for _ in range(20):
            while not lock.acquire():
                time.sleep(0.001)
            with guard:
                inside += 1
                entries += 1
                peak = max(peak, inside)
            time.sleep(0.001)
            with guard:
                inside -= 1
            assert lock.release()

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert entries == 160
    assert peak == 1
    assert store.client.get(store.keys.guard("shared")) is None


def test_a_holder_whose_lock_lapsed_cannot_renew_or_release_the_new_holders_lock(store):
    old = make_lock(store, ttl=0.2)
    assert old.acquire()
    other = make_lock(store, ttl=5.0)
    assert not other.acquire(), "held locks are not taken"
    assert not other.release(), "a non-owner cannot release"
    time.sleep(0.35)  # old's TTL runs out
    assert other.acquire()
    assert not old.renew()
    assert not old.release()
    assert other.held()
    assert other.holder() == other.token


def test_hold_renews_a_long_holder_past_its_ttl_and_releases_at_the_end(store):
    lock = make_lock(store, ttl=0.4)
    assert lock.acquire()
    with lock.hold() as renewal:
        time.sleep(1.3)  # three TTLs
        assert lock.held()
        assert not make_lock(store, ttl=1.0).acquire()
        assert not renewal.lost.is_set()
    assert lock.holder() is None


def test_hold_reports_a_lock_taken_away(store):
    lock = make_lock(store, ttl=0.3)
    assert lock.acquire()
    with lock.hold(every=0.1) as renewal:
        store.client.set(lock.key, "intruder")
        assert renewal.lost.wait(2.0)
    assert store.client.get(lock.key) == "intruder", "release never deletes another owner's lock"


def kill_tree(pid):
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.kill()


def test_a_standby_dispatcher_takes_over_a_sigkilled_leader_within_the_lease_and_nothing_runs_twice(
    cluster,
):
    lease = 2.0
    c = cluster(dispatcher_lease=lease)
    first = c.dispatcher("first")
    leader = c.store.client.get(c.store.keys.leader)
    second = c.dispatcher("second")
    c.worker("a@test", slots=2)
    c.worker("b@test", slots=2)
    handles = c.client.submit_many([{"name": "sleep", "args": [0.02]} for _ in range(400)])

    # Both dispatchers run; only one leads while the backlog drains.
    seen = set()
    deadline = time.monotonic() + 60
    while c.store.events.counters().get("succeeded", 0) < 100:
        seen.add(c.store.client.get(c.store.keys.leader))
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert seen == {leader}, "the standby must not take the lease while the leader renews it"

    kill_tree(first.pid)
    killed_at = time.monotonic()
    first.wait()
    del c.procs["first"]
    while c.store.client.get(c.store.keys.leader) in (leader, None):
        assert time.monotonic() - killed_at < 30, "no dispatcher took over"
        time.sleep(0.01)
    takeover = time.monotonic() - killed_at
    # The lease outlives its holder by at most its TTL; the standby looks every lease/10
    # (plus a second of slack for a loaded machine).
    assert takeover <= lease + lease / 10 + 1.0, takeover
    print(f"takeover after SIGKILL: {takeover:.2f}s with a {lease:g}s lease")
    assert second.poll() is None

    records = c.client.wait(handles, timeout=120)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    assert {r.attempt for r in records} == {1}, "a task claimed twice would have attempt 2"
    counters = c.store.events.counters()
    assert counters["dispatched"] == 400
    assert counters["started"] == 400
    assert counters["succeeded"] == 400
