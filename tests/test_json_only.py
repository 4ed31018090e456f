"""JSON only, end to end: a pickle payload is refused by the HTTP API (see test_api.py) and
by the workers, whose Celery apps accept nothing but JSON."""

from __future__ import annotations

import base64
import json
import pickle
import time
import uuid

from broker_config import CeleryPublisher, make_celery
from scheduler.dispatcher import Dispatch
from scheduler.models import TaskState


class _CreatesFile:
    """Unpickling this creates a file: proof that pickled content was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_worker_refuses_a_pickled_celery_message_and_runs_nothing_from_it(cluster, tmp_path):
    c = cluster()
    c.dispatcher()
    c.worker("w1@json", slots=1)
    app = make_celery(c.settings, c.redis.url)
    assert app.conf.accept_content == ["json"]

    marker = tmp_path / "unpickled"
    queue = c.store.keys.worker_queue("w1@json")
    task_id = uuid.uuid4().hex
    item = Dispatch(task_id, "noop", "[]", "{}", "w1@json", queue, 1)
    envelope = json.loads(CeleryPublisher(app, c.store).message(item))
    body = pickle.dumps(((_CreatesFile(str(marker)),), {}, {}), protocol=2)
    envelope["body"] = base64.b64encode(body).decode()
    envelope["content-type"] = "application/x-python-serialize"
    envelope["content-encoding"] = "binary"
    c.store.client.lpush(queue, json.dumps(envelope))

    log = c.log_dir / "w1@json.log"
    deadline = time.monotonic() + 30
    while "untrusted content" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.05)
    text = log.read_text(errors="replace")
    assert "application/x-python-serialize" in text
    assert not marker.exists(), "the pickled payload was deserialized"
    assert c.store.client.llen(queue) == 0  # taken off the queue and dropped, not redelivered

    # the worker is unharmed and still runs JSON tasks
    handle = c.client.submit("sleep", [0.01])
    assert handle.result(timeout=30)["slept"] == 0.01
    assert handle.status() == TaskState.SUCCEEDED
    assert not marker.exists()
