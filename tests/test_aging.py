"""Aging: under a steady stream of priority-9 tasks a priority-0 task still starts, within its bound."""

from __future__ import annotations

import threading
import time

from scheduler.models import TaskState


def run_stream(c, *, until_low_done: bool, limit: float, period: float = 0.02):
    """Feed priority-9 tasks faster than the single slot drains them.

    Returns the low-priority handle, the stream's handles and when the stream stopped.
    """
    high: list = []
    low_box: list = []
    stopped = threading.Event()

    def feed() -> None:
        start = time.monotonic()
        while time.monotonic() - start < limit:
            high.append(c.client.submit("sleep", [0.02], priority=9))
            if until_low_done and low_box and low_box[0].status().terminal:
                break
            time.sleep(period)
        stopped.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.5)  # a backlog of priority-9 tasks builds up first
    low_box.append(c.client.submit("noop", priority=0))
    feeder.join()
    return low_box[0], high, c.store.server_time()


def test_a_low_priority_task_starts_within_its_aging_bound_under_a_steady_stream(cluster):
    aging = 4.5  # 9 levels in 2 s: p9 tasks submitted over 2 s after it must wait for it
    c = cluster(strategy="priority", priority_aging=aging)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    low, high, stream_end = run_stream(c, until_low_done=True, limit=30.0)

    low_rec = c.client.wait([low], timeout=60)[0]
    assert low_rec.state == TaskState.SUCCEEDED
    assert low_rec.finished_at < stream_end, "the stream was still running when it finished"
    records = c.client.wait(high, timeout=120)
    window = PriorityWindow(aging).seconds(low=0, high=9)
    overtook = [r for r in records if r.started_at < low_rec.started_at]
    assert any(r.submitted_at > low_rec.submitted_at for r in overtook), "not plain FIFO"
    # the promise: nothing submitted more than `window` after it went first
    assert max(r.submitted_at for r in overtook) - low_rec.submitted_at <= window
    # and the stream really had later tasks waiting behind it
    assert any(r.submitted_at - low_rec.submitted_at > window for r in records)


class PriorityWindow:
    def __init__(self, aging: float) -> None:
        from scheduler.strategies import PriorityStrategy

        self.strategy = PriorityStrategy(aging)

    def seconds(self, low: int, high: int) -> float:
        return self.strategy.overtake_window(low, high)


def test_without_aging_the_same_stream_starves_the_low_priority_task(cluster):
    c = cluster(strategy="priority", priority_aging=0)
    c.dispatcher()
    c.worker("solo@test", slots=1)
    low, high, _ = run_stream(c, until_low_done=False, limit=4.0)
    assert low.status() == TaskState.PENDING
    c.client.wait([low, *high], timeout=120)
