"""Redis behind Sentinel: sentinel:// URLs, clients that follow a failover, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psutil
import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from broker_config import make_celery
from broker_config.transport import ALIAS, SENTINEL_ALIAS
from scheduler.embedded import runtime_file
from scheduler.errors import RedisUnreachableError, SettingsError
from scheduler.models import TaskState
from scheduler.redaction import redact_url
from scheduler.settings import load_settings
from scheduler.store import ReportLine, Store
from scheduler.store.sentinel import parse
from tests.reliability_support import kill_tree, ledger_entries, same_attempt_repeats


def test_a_sentinel_url_is_parsed_as_celery_writes_it():
    found = parse("sentinel://:s3cret@10.0.0.1:26379;sentinel://10.0.0.2:26380;sentinel://h3/2")
    assert found.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 26379))
    assert (found.db, found.password) == (2, "s3cret")
    assert "s3cret" not in found.display()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel://h:1;redis://h:2/0", "not a sentinel://HOST[:PORT] entry"),
        ("sentinel://h:1/0;sentinel://h:2/3", "two entries differ"),
        ("sentinel://h:notaport/0", "a bad port"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_naming_the_entry(url, problem):
    with pytest.raises(SettingsError) as err:
        parse(url)
    assert problem in str(err.value)
    assert "YM_REDIS_URL" in str(err.value)


def test_settings_take_a_sentinel_url_and_the_master_name():
    s = load_settings(redis_url="sentinel://h:1;sentinel://h:2/0", sentinel_master="cache-1")
    assert s.sentinel_master == "cache-1"
    with pytest.raises(SettingsError) as err:
        load_settings({"YM_SENTINEL_MASTER": "no spaces"})
    assert "YM_SENTINEL_MASTER='no spaces'" in str(err.value)


def test_celery_takes_the_sentinel_transport_with_the_master_name():
    url = "sentinel://127.0.0.1:1;sentinel://127.0.0.1:2/0"
    app = make_celery(load_settings(redis_url=url, sentinel_master="m1"), url)
    assert app.conf.broker_transport == SENTINEL_ALIAS
    assert app.conf.broker_transport_options["master_name"] == "m1"
    plain = make_celery(load_settings(), "redis://127.0.0.1:1/0")
    assert plain.conf.broker_transport == ALIAS
    assert "master_name" not in plain.conf.broker_transport_options


def test_no_reachable_sentinel_is_a_clear_error_naming_the_url():
    url = "sentinel://127.0.0.1:1;sentinel://127.0.0.1:2/0"
    store = Store.from_url(url, load_settings(redis_url=url), timeout=1.0)
    with pytest.raises(RedisUnreachableError) as err:
        store.events.counters()
    text = str(err.value)
    assert "sentinel://127.0.0.1:1;sentinel://127.0.0.1:2/0 (master 'mymaster')" in text
    assert "no Sentinel answered" in text
    assert "YM_REDIS_URL" in text


def test_an_unknown_master_name_is_a_clear_error_naming_what_the_sentinels_know(
    sentinel_redis,
):
    url = sentinel_redis.url
    store = Store.from_url(url, load_settings(redis_url=url, sentinel_master="nope"), timeout=2)
    with pytest.raises(RedisUnreachableError) as err:
        store.events.counters()
    text = str(err.value)
    assert "master 'nope'" in text
    assert "monitor no master named 'nope' (they know: mymaster)" in text
    assert "YM_SENTINEL_MASTER" in text


def _retried(call: Any, timeout: float = 30.0) -> Any:
    """``call()``, tried again on a connection error until ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_store_and_a_report_line_follow_the_master_through_a_failover(sentinel_redis):
    url = sentinel_redis.url
    store = Store.from_url(url, load_settings(redis_url=url, namespace="sf"))
    store.client.set("sf:before", "1")
    line = ReportLine(store, "w@sf")
    # the line's own connection asks the Sentinels on its first command
    line._conn.send_command("PING")
    assert line._conn.read_response() == "PONG"
    old = sentinel_redis.master_port()
    assert line._conn.port == old

    sentinel_redis.kill_master()
    new = sentinel_redis.wait_failover(old)

    # the same client and line, no reconnect by hand: a command finds the new master.
    # A dead pooled socket fails once; on a loaded machine the Sentinels may also name
    # no healthy master for a moment after the switch (MasterNotFoundError, a
    # ConnectionError): both are retried for a while, as the processes' loops do.
    assert _retried(lambda: store.client.set("sf:after", "2"))
    assert _retried(lambda: store.client.get("sf:after")) == "2"

    # the line: its dead socket fails, it drops it (as on any lost write), and the
    # next write asks the Sentinels again instead of going back to the old address
    def line_write() -> str:
        try:
            line._conn.send_command("SET", "sf:line", "3")
            return str(line._conn.read_response())
        except RedisConnectionError:
            line._lost()
            raise

    assert _retried(line_write) == "OK"
    assert line._conn.port == new
    assert _retried(lambda: store.client.get("sf:line")) == "3"
    line.close()


def test_a_cluster_runs_through_the_sentinels(ha_cluster):
    c = ha_cluster(strategy="fifo")
    c.dispatcher()
    c.worker("a@sn", slots=2)
    handles = c.client.submit_many([{"name": "ledger", "args": ["sn", 0.0]} for _ in range(40)])
    records = c.client.wait(handles, timeout=120)
    assert {r.state for r in records} == {TaskState.SUCCEEDED}
    entries = ledger_entries(c, "sn")
    assert same_attempt_repeats(entries) == []
    assert sorted(e[0] for e in entries) == sorted(r.id for r in records)
    log = (c.log_dir / "a@sn.log").read_text(errors="replace")
    assert "ymsentinel://" in log  # the broker too goes through the Sentinels


def test_up_ha_starts_a_primary_a_replica_and_three_sentinels_and_runs_through_them():
    namespace = "upha" + uuid.uuid4().hex[:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env.update(YM_NAMESPACE=namespace, YM_DURABLE_REPLICAS="1")
    cli = [sys.executable, "-m", "scheduler.cli"]
    up = subprocess.Popen(
        [*cli, "up", "--ha", "--workers", "1", "--no-flower", "--no-api", "--no-monitor"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not any(line.startswith("Ready.") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = up.stdout.readline()
            assert line, "up exited early:\n" + "".join(lines)
            lines.append(line)
        assert any("master 'mymaster'" in line for line in lines), lines
        children = psutil.Process(up.pid).children(recursive=True)
        # another shell finds the Sentinels' URL through the runtime file
        url = json.loads(runtime_file(namespace).read_text())["redis_url"]
        nodes = parse(url).nodes
        assert len(nodes) == 3
        # each Sentinel watches the master, its replica and the two other Sentinels
        for host, port in nodes:
            info = Redis(host=host, port=port, decode_responses=True).sentinel_master("mymaster")
            assert (info["num-slaves"], info["num-other-sentinels"]) == (1, 2)
        out = subprocess.run(
            [*cli, "submit", "sleep", "0.01", "--wait"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert '"slept": 0.01' in out.stdout

        up.send_signal(signal.SIGINT)
        rest = up.communicate(timeout=60)[0]
        assert up.returncode == 0, rest
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {[p.pid for p in alive]}"
    finally:
        if up.poll() is None:  # a failed check: the servers and Sentinels go with it
            kill_tree(up.pid)
            up.wait()


def test_up_ha_refuses_a_configured_redis_url():
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env["YM_REDIS_URL"] = "redis://127.0.0.1:1/0"
    out = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "up", "--ha"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "--ha starts its own Redis with Sentinels; unset YM_REDIS_URL" in out.stdout + out.stderr


def test_the_command_line_says_no_sentinel_answered_in_two_lines():
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env["YM_REDIS_URL"] = "sentinel://:pw@127.0.0.1:1;sentinel://127.0.0.1:2/0"
    out = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "no Sentinel answered" in text
    assert "YM_SENTINEL_MASTER names the master" in text
    assert "pw" not in text.replace("password", "")  # the password stays hidden
    assert "redis.client.Redis(" not in text  # not redis-py's dump of its clients


def test_a_sentinel_url_is_redacted_entry_by_entry():
    shown = redact_url("sentinel://:pw@h1:26379;sentinel://:pw@h2:26379/0")
    assert shown == "sentinel://:<hidden>@h1:26379;sentinel://:<hidden>@h2:26379/0"


def test_the_backend_of_a_sentinel_app_shows_its_url_without_the_password():
    # The worker's banner prints the result backend's URL through as_uri(); Celery's
    # own parsed the Sentinel form's several hosts as one port and stopped the worker.
    url = "sentinel://:s3cret@127.0.0.1:26379;sentinel://127.0.0.1:26380/2"
    app = make_celery(load_settings(redis_url=url), url)
    shown = app.backend.as_uri()
    assert "s3cret" not in shown
    assert "127.0.0.1:26379" in shown
    assert "127.0.0.1:26380/2" in shown
    assert app.backend.as_uri(include_password=True) == app.conf.result_backend
