"""Live steering and the live side of the newer strategies, on real workers.

- switching the strategy without a restart re-orders tasks already pending;
- every change is a version (who, when, what) that can be rolled back, from
  the Python API and from ``yardmaster strategy``;
- bad steering input gets a clear error and changes nothing;
- ``edf`` with ``edf_late=expire`` ends a hopeless task as ``expired`` with its reason;
- ``load_balance`` learns affinity from finished tasks and keeps a key on its worker;
- the adaptive strategy's switches are counted and listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from scheduler.errors import InvalidInputError, SettingsError
from scheduler.models import TaskState
from tests.conftest import ROOT


def _cli(c, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        env=c.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _block(c, seconds: float = 1.0):
    blocker = c.client.submit("sleep", [seconds])
    while blocker.status() != TaskState.RUNNING:
        time.sleep(0.01)
    return blocker


def test_a_strategy_switch_reorders_pending_tasks_and_can_be_rolled_back(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("solo@steer", slots=1)
    assert c.client.active_strategy().strategy == "fifo"
    assert c.client.active_strategy().version == 0

    blocker = _block(c, 1.0)
    waiting = [c.client.submit("noop", priority=p) for p in (1, 9, 5)]
    config = c.client.set_strategy(
        "priority", {"priority_aging": 0}, who="tester", note="rush the 9"
    )
    assert config.version == 1
    active = c.client.wait_strategy_active(1)
    assert active.strategy == "priority"
    records = c.client.wait([blocker, *waiting], timeout=30)
    order = [r.id for r in sorted(records, key=lambda r: r.started_at)]
    # submitted under fifo, run under the new strategy: 9, 5, 1
    assert order == [blocker.id, waiting[1].id, waiting[2].id, waiting[0].id]

    # the CLI: history lists both versions with author and note, rollback restores fifo
    history = [
        json.loads(line)
        for line in _cli(c, "strategy", "history", "--json").stdout.split("\n")
        if line
    ]
    assert [(h["version"], h["strategy"], h["who"]) for h in history] == [(1, "priority", "tester")]
    assert history[0]["params"] == {"priority_aging": 0.0}
    assert history[0]["note"] == "rush the 9"

    c.client.set_strategy("sjf", who="tester")
    c.client.wait_strategy_active(2)
    done = _cli(c, "strategy", "rollback", "--to", "1", "--who", "ops")
    assert done.returncode == 0, done.stderr
    assert c.client.active_strategy().version == 3
    shown = json.loads(_cli(c, "strategy", "show", "--json").stdout)
    assert shown["configured"]["strategy"] == "priority"
    assert shown["configured"]["note"] == "rollback to version 1"
    assert shown["configured"]["who"] == "ops"
    assert shown["active"] == {
        "strategy": "priority",
        "version": 3,
        "since": shown["active"]["since"],
    }

    blocker = _block(c, 1.0)
    waiting = [c.client.submit("noop", priority=p) for p in (2, 8)]
    records = c.client.wait([blocker, *waiting], timeout=30)
    assert min(records[1:], key=lambda r: r.started_at).id == waiting[1].id  # priority again

    # CLI set with a bad parameter: exit 2, a clear message, nothing changes
    bad = _cli(c, "strategy", "set", "weighted", "-p", 'weights={"wait": 0, "duration": 3}')
    assert bad.returncode == 2
    assert "weights" in bad.stderr
    assert "overtake" in bad.stderr
    assert c.client.strategy().version == 3


@pytest.mark.parametrize(
    ("name", "params", "error", "needle"),
    [
        ("fastest", {}, InvalidInputError, "one of: fifo"),
        ("priority", {"aging": 1}, InvalidInputError, "params.aging"),
        ("priority", {"priority_aging": -1}, SettingsError, "priority_aging"),
        ("edf", {"edf_late": "later"}, SettingsError, "edf_late"),
        ("weighted", {"weights": {"priority": 0, "wait": 0}}, SettingsError, "weights"),
    ],
)
def test_bad_steering_input_is_refused_and_stores_nothing(cluster, name, params, error, needle):
    c = cluster(strategy="fifo")
    with pytest.raises(error, match=needle):
        c.client.set_strategy(name, params)
    assert c.client.strategy() is None
    assert c.client.strategy_history() == []


def test_rollback_without_an_earlier_version_says_so(cluster):
    c = cluster(strategy="fifo")
    with pytest.raises(InvalidInputError, match="no earlier version"):
        c.client.rollback_strategy()
    c.client.set_strategy("sjf")
    with pytest.raises(InvalidInputError, match="one of the versions: 1"):
        c.client.rollback_strategy(to=7)


def test_the_first_change_rolls_back_to_the_strategy_the_dispatcher_started_with(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("solo@steer", slots=1)
    # the shell that steers has another YM_STRATEGY: version 0 is what the dispatcher runs
    shell = dict(c.env(), YM_STRATEGY="edf")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler.cli", *args],
            env=shell, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert cli("strategy", "set", "adaptive", "--note", "mixed day").returncode == 0
    done = cli("strategy", "rollback")
    assert done.returncode == 0, done.stderr
    assert c.client.wait_strategy_active(2).strategy == "fifo"
    restored = c.client.strategy()
    assert (restored.version, restored.strategy, restored.params) == (2, "fifo", {})
    assert restored.note == "rollback to version 0 (the cluster's settings)"

    c.client.set_strategy("sjf", {"default_duration": 2.0})
    back = c.client.rollback_strategy(to=0)
    assert (back.version, back.strategy, back.params) == (4, "fifo", {})


def test_before_any_dispatcher_led_version_0_is_the_steering_process_s_strategy(cluster):
    c = cluster(strategy="fifo")
    c.client.set_strategy("priority")
    assert c.client.rollback_strategy().strategy == "fifo"


def test_edf_expires_a_task_that_can_no_longer_meet_its_deadline(cluster):
    c = cluster(strategy="edf", edf_late="expire")
    c.dispatcher()
    c.worker("solo@edf", slots=1)
    blocker = _block(c, 1.5)
    now = time.time()
    hopeless = c.client.submit("sleep", [0.1], expected_duration=2.0, deadline=now + 1.0)
    fine = c.client.submit("sleep", [0.1], expected_duration=0.1, deadline=now + 30)
    records = c.client.wait([blocker, hopeless, fine], timeout=30)
    assert records[1].state == TaskState.EXPIRED
    assert records[1].error is not None
    assert "deadline cannot be met" in records[1].error
    assert records[1].started_at is None  # it never ran
    assert records[2].state == TaskState.SUCCEEDED
    assert c.store.events.counters().get("expired") == 1


def test_load_balance_keeps_a_key_on_the_worker_it_ran_well_on(cluster):
    c = cluster(strategy="load_balance")
    c.dispatcher()
    c.worker("a@lb", slots=1)
    c.worker("b@lb", slots=1)
    placed = []
    for key in ("user-1", "user-2") * 6:
        record = c.client.wait([c.client.submit("sleep", [0.02], affinity_key=key)], timeout=30)[0]
        placed.append((key, record.worker))
    for key in ("user-1", "user-2"):
        workers = {w for k, w in placed if k == key}
        assert len(workers) == 1, placed
    scores = {key: c.store.estimates.affinity_scores(key) for key in ("user-1", "user-2")}
    for key, worker in {k: w for k, w in placed}.items():
        assert scores[key][worker] == pytest.approx(0.6)


def test_adaptive_switches_are_counted_and_listed(cluster):
    c = cluster(strategy="adaptive", adaptive_mode="rules", adaptive_interval=0.1)
    c.dispatcher()
    c.worker("solo@adaptive", slots=1)
    blocker = _block(c, 0.5)
    handles = [c.client.submit("noop", deadline=time.time() + 60) for _ in range(3)]
    c.client.wait([blocker, *handles], timeout=30)
    assert c.store.events.counters().get("strategy_switches", 0) >= 1
    shown = json.loads(_cli(c, "strategy", "show", "--json").stdout)
    assert shown["switch_count"] >= 1
    to_edf = [sw for sw in shown["switches"] if sw["to"] == "edf"]
    assert to_edf, shown
    assert "deadlines" in to_edf[0]["reason"]
