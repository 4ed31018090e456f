"""Placement on a real cluster: worker capacities, labels and task names; task requirements.

Two workers, one with ``gpu=1``: tasks needing the gpu run only there and never two at
once (their records' start and finish times), while plain tasks fill both; a worker
killed while holding the gpu gives it back when reaped; a labelled task runs only where
the label matches; a task goes only to a worker that registered its name.
"""

from __future__ import annotations

import time

import psutil
import pytest

from scheduler.errors import InvalidInputError
from scheduler.models import TaskRecord, TaskState


def kill_tree(pid: int) -> None:
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.kill()


def overlaps(records: list[TaskRecord]) -> int:
    """The largest number of ``records`` running at one instant (start..finish)."""
    edges = []
    for r in records:
        assert r.started_at is not None
        assert r.finished_at is not None
        edges += [(r.started_at, 1), (r.finished_at, -1)]
    most = now = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # a finish before a start
        now += step
        most = max(most, now)
    return most


def test_workers_register_their_capacities_labels_and_task_names(cluster):
    c = cluster()
    c.worker("gpu@test", slots=2, resources="gpu=2,mem=16G", labels=("zone=eu", "arch=arm64"))
    (w,) = c.store.workers.load()
    assert w.resources == {"gpu": 2.0, "mem": 16.0 * 1024**3}
    assert w.labels == {"zone": "eu", "arch": "arm64"}
    assert w.task_names is not None
    assert "sleep" in w.task_names
    # Celery's own tasks stay out, but for the canvas ones our workers run (map, starmap, chunks)
    internal = {n for n in w.task_names if n.startswith("celery.")}
    assert internal <= {"celery.map", "celery.starmap", "celery.chunks", "celery.accumulate"}

    from scheduler.status import cluster_status

    (shown,) = cluster_status(c.store)["workers"]
    assert shown["resources"] == {"gpu": 2.0, "mem": 16.0 * 1024**3}
    assert shown["labels"] == {"zone": "eu", "arch": "arm64"}
    assert "sleep" in shown["task_names"]


def test_gpu_tasks_run_only_on_the_gpu_worker_one_at_a_time(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("gpu@test", slots=2, resources="gpu=1")
    c.worker("cpu@test", slots=2)
    specs = []
    for i in range(50):
        specs.append({"name": "sleep", "args": [0.02], "resources": {"gpu": 1}})
        if i % 2 == 0:
            specs.append({"name": "sleep", "args": [0.02]})
    handles = c.client.submit_many(specs)
    records = c.client.wait(handles, timeout=120)
    assert all(r.state == TaskState.SUCCEEDED for r in records)
    gpu = [r for r, s in zip(records, specs, strict=True) if "resources" in s]
    plain = [r for r, s in zip(records, specs, strict=True) if "resources" not in s]
    assert len(gpu) == 50
    assert {r.worker for r in gpu} == {"gpu@test"}
    assert overlaps(gpu) == 1, "gpu=1: never two gpu tasks at once"
    assert {r.worker for r in plain} == {"gpu@test", "cpu@test"}, "plain tasks fill both"


def test_a_killed_worker_holding_the_gpu_gives_it_back_when_reaped(cluster):
    c = cluster(worker_timeout=2.0, heartbeat_interval=0.5, strategy="fifo")
    c.dispatcher()
    victim = c.worker("victim@test", slots=1, resources="gpu=1")
    held = c.client.submit("sleep", [30.0], resources={"gpu": 1})
    deadline = time.monotonic() + 30
    while held.status() != TaskState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert c.store.workers.held(["victim@test"]) == {"victim@test": {"gpu": 1.0}}
    kill_tree(victim.pid)
    victim.wait()
    del c.procs["victim@test"]  # dead on purpose
    deadline = time.monotonic() + 30
    while c.store.workers.load():  # reaped by the dispatcher
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert held.status() == TaskState.PENDING
    # The same worker name comes back with gpu=1: the dead life's hold is gone, so the
    # requeued task and a new one both run (one after the other) on it.
    c.worker("victim@test", slots=1, resources="gpu=1")
    later = c.client.submit("sleep", [0.01], resources={"gpu": 1})
    c.store.client.hset(c.store.keys.task(held.id), "args", "[0.05]")  # shorten the rerun
    records = c.client.wait([held, later], timeout=60)
    assert [r.state for r in records] == [TaskState.SUCCEEDED, TaskState.SUCCEEDED]
    assert c.store.workers.held(["victim@test"]) == {"victim@test": {}}


def test_a_labelled_task_runs_only_where_the_label_matches(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("eu@test", slots=2, labels=("zone=eu",))
    c.worker("us@test", slots=2, labels=("zone=us",))
    specs = [{"name": "sleep", "args": [0.01], "labels": {"zone": "eu"}} for _ in range(20)]
    specs += [{"name": "sleep", "args": [0.01], "labels": {"zone": "us"}} for _ in range(20)]
    records = c.client.wait(c.client.submit_many(specs), timeout=60)
    assert {r.worker for r in records[:20]} == {"eu@test"}
    assert {r.worker for r in records[20:]} == {"us@test"}


def test_a_task_goes_only_to_a_worker_that_registered_its_name(cluster):
    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("plain@test", slots=2)
    c.native_worker("native@test", "tests.native_app", slots=1)
    (plain,) = [w for w in c.store.workers.load() if w.name == "plain@test"]
    assert plain.task_names is not None
    assert "tests.add" not in plain.task_names
    adds = c.client.submit_many([{"name": "tests.add", "args": [i, 1]} for i in range(20)])
    sleeps = c.client.submit_many([{"name": "sleep", "args": [0.01]} for _ in range(20)])
    records = c.client.wait(adds + sleeps, timeout=60)
    assert all(r.state == TaskState.SUCCEEDED for r in records)
    assert {r.worker for r in records[:20]} == {"native@test"}
    assert [h.result(timeout=10) for h in adds] == [i + 1 for i in range(20)]


def test_strict_submission_refuses_what_no_worker_could_run(cluster):
    c = cluster()
    c.worker("gpu@test", slots=1, resources="gpu=1", labels=("zone=eu",))
    with pytest.raises(InvalidInputError) as err:
        c.client.submit("sleep", [0.01], resources={"tpu": 1}, strict=True)
    assert err.value.field == "tasks[0].resources"
    assert "'tpu'" in str(err.value)
    assert "offers 0" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        c.client.submit("sleep", [0.01], resources={"gpu": 2}, strict=True)
    assert "needs 2, the largest fitting worker offers 1" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        c.client.submit("sleep", [0.01], labels={"zone": "us"}, strict=True)
    assert err.value.field == "tasks[0].labels"
    assert "zone=eu" in str(err.value)
    # fitting requirements are accepted; without strict, so is anything well formed
    c.client.submit("sleep", [0.01], resources={"gpu": 1}, labels={"zone": "eu"}, strict=True)
    c.client.submit("sleep", [0.01], resources={"tpu": 1})


@pytest.mark.parametrize(
    ("fields", "field", "shown"),
    [
        ({"resources": {"gpu": -1}}, "resources", "gpu"),
        ({"resources": {"gpu": "lots"}}, "resources", "lots"),
        ({"resources": "gpu:1"}, "resources", "gpu:1"),
        ({"resources": {"g pu": 1}}, "resources", "g pu"),
        ({"labels": {"zone": "e u"}}, "labels", "e u"),
        ({"labels": {"zo ne": "eu"}}, "labels", "zo ne"),
        ({"queue": "re ports"}, "queue", "re ports"),
        ({"queue": 5}, "queue", "5"),
        ({"prefer": "zone"}, "prefer", "zone"),
        ({"prefer": {"zone": "e u"}}, "prefer", "e u"),
    ],
)
def test_bad_requirements_are_refused_naming_the_field_and_value(cluster, fields, field, shown):
    c = cluster()
    with pytest.raises(InvalidInputError) as err:
        c.client.submit("sleep", [0.01], **fields)
    assert err.value.field.endswith(field)
    assert shown in str(err.value)


def test_an_unschedulable_task_shows_why_raises_an_anomaly_and_runs_when_a_worker_fits(cluster):
    from scheduler.monitor import Monitor
    from scheduler.status import cluster_status

    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("small@test", slots=2, resources="gpu=1")
    big = c.client.submit("sleep", [0.01], resources={"gpu": 4})
    elsewhere = c.client.submit("sleep", [0.01], labels={"zone": "eu"})
    plain = c.client.submit("sleep", [0.01])
    assert plain.result(timeout=30) is not None, "plain tasks are not held up"
    c.wait_for(lambda: len(c.store.tasks.unschedulable()) == 2, "both tasks marked")
    reasons = c.store.tasks.unschedulable()
    assert (
        reasons[big.id] == "resource 'gpu': the task needs 4, the largest fitting worker offers 1"
    )
    assert "has the labels {'zone': 'eu'}" in reasons[elsewhere.id]
    assert big.record().state == TaskState.PENDING
    assert big.record().reason == "unschedulable: " + reasons[big.id]
    assert cluster_status(c.store)["unschedulable"] == reasons
    found = [a for a in Monitor(c.store).poll().anomalies if a.type == "unschedulable"]
    assert sorted(len(a.tasks) for a in found) == [1, 1]
    assert any("needs 4" in a.reason for a in found)

    c.worker("big@test", slots=1, resources="gpu=4", labels=("zone=eu",))
    records = c.client.wait([big, elsewhere], timeout=60)
    assert [r.worker for r in records] == ["big@test", "big@test"]
    assert all(r.reason is None for r in records)
    assert c.store.tasks.unschedulable() == {}


def test_the_cli_submits_requirements_and_the_worker_refuses_bad_offers(cluster):
    import subprocess

    from scheduler.local_cluster import CLI

    c = cluster(strategy="fifo")
    c.dispatcher()
    c.worker("eu@test", slots=1, labels=("zone=eu",))
    c.worker("us@test", slots=1, labels=("zone=us",))
    run = subprocess.run(
        [*CLI, "submit", "sleep", "0.01", "--label", "zone=us", "--resources", "", "--wait"],
        env=c.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    task_id = run.stdout.splitlines()[0]
    assert c.client.handle(task_id).record().worker == "us@test"
    for zone in ("eu", "us"):  # soft preference: both workers free, the matching one runs it
        run = subprocess.run(
            [*CLI, "submit", "sleep", "0.01", "--prefer", f"zone={zone}", "--wait"],
            env=c.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        task_id = run.stdout.splitlines()[0]
        assert c.client.handle(task_id).record().worker == f"{zone}@test"
    bad = subprocess.run(
        [*CLI, "worker", "--name", "badq@test", "-Q", "re ports"],
        env=c.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "worker_queues='re ports'" in bad.stderr + bad.stdout
    for option, value, shown in (
        ("--queue", "re ports", "--queue='re ports'"),
        ("--prefer", "zone", "--prefer='zone'"),
    ):
        bad = subprocess.run(
            [*CLI, "submit", "sleep", "0.01", option, value],
            env=c.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0
        assert shown in bad.stderr + bad.stdout
    bad = subprocess.run(
        [*CLI, "worker", "--name", "bad@test", "--resources", "gpu=-1"],
        env=c.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "worker_resources='gpu=-1'" in bad.stderr + bad.stdout
    assert "resources.gpu='-1'" in bad.stderr + bad.stdout
    bad = subprocess.run(
        [*CLI, "submit", "sleep", "0.01", "--label", "zone=e u"],
        env=c.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "--label.zone='e u'" in bad.stderr + bad.stdout


def test_http_submits_requirements_refuses_strict_and_shows_the_reason(tmp_path):
    from tests.api_live import auth, live_stack

    submit, read = auth("submit"), auth("read")
    with live_stack(tmp_path) as api:
        (worker,) = api.http.get("/v1/workers", headers=read).json()["workers"]
        assert "sleep" in worker["task_names"]
        assert worker["resources"] == {}
        refused = api.http.post(
            "/v1/tasks",
            json={"name": "sleep", "args": [0.01], "resources": {"gpu": 1}, "strict": True},
            headers=submit,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "resources"
        assert "'gpu'" in refused.json()["message"]
        bad = api.http.post(
            "/v1/tasks", json={"name": "sleep", "labels": {"zone": "e u"}}, headers=submit
        )
        assert bad.status_code == 422, bad.text
        assert "e u" in bad.json()["message"]
        for fields, field, shown in (
            ({"queue": "re ports"}, "queue", "re ports"),
            ({"prefer": "zone"}, "prefer", "zone"),
            ({"queue": "reports", "strict": True}, "queue", "'reports'"),
        ):
            bad = api.http.post("/v1/tasks", json={"name": "sleep", **fields}, headers=submit)
            assert bad.status_code == 422, bad.text
            assert bad.json()["field"] == field, bad.text
            assert shown in bad.json()["message"]
        preferring = api.http.post(
            "/v1/tasks",
            json={"name": "sleep", "args": [0.01], "prefer": {"zone": "eu"}},
            headers=submit,
        )
        assert preferring.status_code == 201, preferring.text  # soft: runs anywhere
        waiting = api.http.post(
            "/v1/tasks",
            json={"name": "sleep", "args": [0.01], "resources": {"gpu": 1}},
            headers=submit,
        )
        assert waiting.status_code == 201, waiting.text
        task_id = waiting.json()["id"]
        deadline = time.monotonic() + 30
        while True:
            record = api.http.get(f"/v1/tasks/{task_id}", headers=read).json()
            if record.get("reason"):
                break
            assert time.monotonic() < deadline, record
            time.sleep(0.05)
        assert record["state"] == "pending"
        assert record["reason"].startswith("unschedulable: resource 'gpu'")


def test_a_new_dispatcher_rebuilds_held_resources_and_unschedulable_marks(cluster):
    c = cluster(strategy="fifo")
    first = c.dispatcher("first")
    c.worker("gpu@test", slots=2, resources="gpu=1")
    running = c.client.submit("sleep", [1.5], resources={"gpu": 1})
    big = c.client.submit("sleep", [0.01], resources={"gpu": 4})
    deadline = time.monotonic() + 30
    while running.status() != TaskState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    c.wait_for(lambda: big.id in c.store.tasks.unschedulable(), "the first leader's mark")
    first.terminate()
    first.wait(timeout=30)
    del c.procs["first"]
    c.dispatcher("second")
    after = c.client.submit("sleep", [0.01], resources={"gpu": 1})
    records = c.client.wait([running, after], timeout=60)
    assert [r.state for r in records] == [TaskState.SUCCEEDED, TaskState.SUCCEEDED]
    assert overlaps(records) == 1, "the new leader saw the gpu held by the running task"
    assert c.store.tasks.unschedulable() == {big.id: big.record().reason.split(": ", 1)[1]}
    assert big.record().state == TaskState.PENDING
