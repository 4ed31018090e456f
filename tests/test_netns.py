"""Multi-host: workers on their own hosts (network namespaces joined by veth pairs).

One host is cut off mid-run (its link goes down): the dispatcher stops hearing
its heartbeat, declares it dead, and its tasks finish on the other host. When
the link comes back, the cut host's late reports change nothing. Needs root
and iproute2; the namespaces and links are made with unique names and always
removed.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.embedded import EmbeddedRedis
from scheduler.models import TaskState
from tests.conftest import Cluster
from tests.reliability_support import kill_tree, ledger_entries, same_attempt_repeats, wait_for


@dataclass
class Host:
    """A network namespace reached over a veth pair: host side ``gateway``, inside ``address``."""

    netns: str
    veth: str
    gateway: str
    address: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def _netns_available() -> str:
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = "ymprobe" + uuid.uuid4().hex[:6]
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"`ip netns add` is not permitted here: {exc}"
    return ""


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:5]
    net = random.randrange(100, 250)
    made: list[Host] = []
    try:
        for i in (1, 2):
            host = Host(f"ym-{tag}-h{i}", f"ym{tag}h{i}", f"10.{net}.{i}.1", f"10.{net}.{i}.2")
            made.append(host)
            inner = f"ym{tag}n{i}"
            _ip("netns", "add", host.netns)
            _ip("link", "add", host.veth, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", host.netns)
            _ip("addr", "add", f"{host.gateway}/24", "dev", host.veth)
            _ip("link", "set", host.veth, "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", inner)
            _ip("-n", host.netns, "link", "set", inner, "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
        yield made
    finally:
        for host in made:
            pids = subprocess.run(
                ["ip", "netns", "pids", host.netns], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                kill_tree(int(pid))
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True)
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)


def _worker_in(c: Cluster, host: Host, name: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        "ip",
        "netns",
        "exec",
        host.netns,
        "env",
        f"YM_REDIS_URL=redis://{host.gateway}:{port}/0",
    ]
    cmd += [sys.executable, "-m", "scheduler.cli", "worker", "--slots", "2", "--name", name]
    cmd += ["--pool", "prefork", "--loglevel", "WARNING"]
    proc = c.spawn(name, cmd)
    c.wait_worker(name)
    return proc


def test_a_host_cut_off_mid_run_has_its_tasks_finish_on_another_host(hosts, tmp_path: Path):
    a, b = hosts
    redis = EmbeddedRedis(bind=("127.0.0.1", a.gateway, b.gateway)).start()
    c = Cluster(redis, tmp_path, strategy="fifo", heartbeat_interval=0.5, worker_timeout=3.0)
    try:
        c.dispatcher()
        _worker_in(c, a, "wa@host-a", redis.port)
        _worker_in(c, b, "wb@host-b", redis.port)
        hosts_seen = {r.name: r.host for r in c.store.workers.load()}
        assert set(hosts_seen) == {"wa@host-a", "wb@host-b"}
        handles = c.client.submit_many(
            [{"name": "ledger", "args": ["mh", 0.2]} for _ in range(120)]
        )
        wait_for(lambda: c.store.events.counters().get("succeeded", 0) >= 20, "progress")
        on_a = set(c.store.client.smembers(c.store.keys.worker_tasks("wa@host-a")))
        assert on_a, "host a holds tasks when it is cut off"

        _ip("link", "set", a.veth, "down")  # host a is cut off
        records = c.client.wait(handles, timeout=180)
        assert {r.state for r in records} == {TaskState.SUCCEEDED}
        by_id = {r.id: r for r in records}
        for task_id in on_a:
            assert by_id[task_id].worker == "wb@host-b", f"{task_id} was recovered on host b"
            assert by_id[task_id].attempt >= 2
        entries = ledger_entries(c, "mh")
        assert same_attempt_repeats(entries) == []
        assert {e[0] for e in entries} == {h.id for h in handles}
        assert [w.name for w in c.store.workers.load()] == ["wb@host-b"]

        # The link comes back: the cut host reconnects by itself and registers
        # again; whatever it reports about its old attempts changes nothing.
        _ip("link", "set", a.veth, "up")
        wait_for(
            lambda: "wa@host-a" in {w.name for w in c.store.workers.load()},
            "host a registered again",
            timeout=90,
            step=0.2,
        )
        after = c.store.tasks.records([h.id for h in handles])
        assert [(r.state, r.attempt) for r in after if r] == [
            (by_id[h.id].state, by_id[h.id].attempt) for h in handles
        ]
        assert c.store.events.counters()["succeeded"] == len(handles)
        more = c.client.submit_many([{"name": "ledger", "args": ["mh2"]} for _ in range(20)])
        assert {r.state for r in c.client.wait(more, timeout=60)} == {TaskState.SUCCEEDED}
    finally:
        for proc in c.procs.values():
            kill_tree(proc.pid)
            proc.wait()
        c.procs.clear()
        redis.stop()
