"""``create_app()`` is lazy: a task module that makes its app at import needs no Redis; the
Redis is found on first use (here: the embedded one of a ``yardmaster up`` started after
the import, found through its runtime file)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from tests.conftest import ROOT

SCRIPT = """
import sys
import tests.native_app as tasks  # calls workers.app.create_app() at import
print("imported")
from scheduler.errors import RedisUnavailableError
try:
    tasks.add.schedule([1, 2])
except RedisUnavailableError as exc:
    print("first use without a Redis:", exc)
from scheduler.embedded import write_runtime
from scheduler.settings import load_settings
write_runtime(load_settings().namespace, sys.argv[1])  # what `yardmaster up` records
handle = tasks.add.schedule([1, 2])
print("scheduled:", handle.status())
"""


def test_a_task_module_imports_without_redis_and_connects_on_first_use(redis_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("YM_")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_RUNTIME_DIR=str(tmp_path),
        YM_NAMESPACE="lz" + uuid.uuid4().hex[:6],
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, redis_server.url],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "imported"
    assert lines[1].startswith("first use without a Redis: no Redis configured: set YM_REDIS_URL")
    assert lines[2] == "scheduled: pending"
