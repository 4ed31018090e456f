"""Bad input gets a clear error naming what and where; nothing accepted is disturbed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from scheduler.client import Client
from scheduler.errors import InvalidInputError, SettingsError, UnknownTaskError
from scheduler.models import TaskState
from scheduler.settings import load_settings
from scheduler.store import Store, connect


@pytest.fixture
def client(redis_server):
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    return Client(store, known_tasks=["noop", "sleep"])


def test_each_kind_of_bad_submission_names_its_field_value_and_rule(client):
    accepted = client.submit_many([{"name": "noop", "priority": p} for p in range(10)])
    before = client.store.events.counters()

    with pytest.raises(UnknownTaskError) as unknown:
        client.submit("resize_images")
    assert unknown.value.field == "tasks[0].name"
    assert "resize_images" in str(unknown.value)
    assert "noop" in str(unknown.value)

    with pytest.raises(InvalidInputError) as not_json:
        client.submit("sleep", [{1, 2}])
    assert not_json.value.field == "tasks[0].args"
    assert "not JSON" in str(not_json.value)

    with pytest.raises(InvalidInputError) as nan:
        client.submit("sleep", [float("nan")])
    assert nan.value.field == "tasks[0].args"

    with pytest.raises(InvalidInputError) as prio:
        client.submit("noop", priority=12)
    assert prio.value.field == "tasks[0].priority"
    assert prio.value.value == 12
    assert "0 to 9" in str(prio.value)

    with pytest.raises(InvalidInputError) as past:
        client.submit("noop", deadline=time.time() - 5)
    assert past.value.field == "tasks[0].deadline"
    assert "past" in str(past.value)

    with pytest.raises(InvalidInputError) as batch:
        client.submit_many([{"name": "noop"}, {"name": "noop"}, {"name": "noop", "priority": -1}])
    assert batch.value.field == "tasks[2].priority"

    # nothing of the rejected calls was written; everything accepted is intact
    assert client.store.events.counters() == before
    assert all(h.status() == TaskState.PENDING for h in accepted)
    assert sum(client.store.pending.counts().values()) == 10


def test_an_invalid_setting_names_the_variable_the_value_and_the_range():
    with pytest.raises(SettingsError) as exc:
        load_settings({"YM_SLOTS": "0"})
    assert exc.value.field == "YM_SLOTS"
    assert "'0'" in str(exc.value)
    assert "1 to 512" in str(exc.value)

    with pytest.raises(SettingsError) as strat:
        load_settings({"YM_STRATEGY": "random"})
    assert strat.value.field == "YM_STRATEGY"
    assert "fifo" in str(strat.value)

    with pytest.raises(SettingsError) as url:
        load_settings({"YM_REDIS_URL": "http://localhost"})
    assert "redis://" in str(url.value)


def test_the_command_line_refuses_a_bad_setting_at_start_up_with_exit_code_2(redis_server):
    env = {"YM_REDIS_URL": redis_server.url, "YM_PRIORITY_AGING": "-1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "dispatcher"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "YM_PRIORITY_AGING='-1'" in proc.stderr
    assert "from 0 (strict) to 1000" in proc.stderr


def test_the_command_line_names_a_bad_argument_and_submits_nothing(redis_server):
    env = {"YM_REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "scheduler.cli", "submit", "sleep", "{not json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "args[0]" in proc.stderr
    store = Store(connect(redis_server.url), load_settings(redis_url=redis_server.url))
    assert store.events.counters() == {}
