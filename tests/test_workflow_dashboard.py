"""The dashboard's workflow page in headless Chromium (tests/cdp.py), on a real cluster:
the main page lists the workflow with its progress and links to its page; that page
draws the tasks by dependency layer, colored by state, and follows the run to its end."""

from __future__ import annotations

import shutil

import pytest

from tests.cdp import Browser
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM, _reachable
from tests.test_flower_and_up_monitor import free_port

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)

STATES = "Object.fromEntries([...document.querySelectorAll('#wf-graph g.node')].map((g) => [g.dataset.id, g.dataset.state]))"
FILLS = "Object.fromEntries([...document.querySelectorAll('#wf-graph g.node')].map((g) => [g.dataset.id, g.querySelector('rect').getAttribute('fill')]))"
X = "Object.fromEntries([...document.querySelectorAll('#wf-graph g.node')].map((g) => [g.dataset.id, g.transform.baseVal[0].matrix.e]))"


def test_the_workflow_page_draws_the_graph_by_state_and_follows_the_run(cluster, tmp_path):
    c = cluster(monitor_interval=0.5)  # no dispatcher yet: nothing starts before we look
    port = free_port()
    c.monitor(port)
    base = f"http://127.0.0.1:{port}"
    c.wait_for(lambda: _reachable(base + "/monitor/config"), "monitor")
    items = [
        {"id": "dash.a", "name": "noop"},
        {"id": "dash.b", "name": "fail", "depends_on": ["dash.a"]},
        {"id": "dash.c", "name": "noop", "depends_on": ["dash.a"]},
        {"id": "dash.d", "name": "noop", "depends_on": ["dash.b", "dash.c"]},
    ]
    _, handles = c.client.submit_workflow(items, workflow_id="wf-dash")

    with Browser(tmp_path / "chromium") as b:
        b.goto(base + "/dashboard")
        row = "document.querySelector('#workflow-rows tr[data-workflow=\"wf-dash\"]')"
        b.wait(f"!!{row}")
        assert b.js("document.getElementById('waiting').dataset.v") == "3"
        cells = b.js(f"[...{row}.querySelectorAll('td')].map((td) => td.textContent)")
        assert cells[:3] == ["wf-dash", "0", "4"]
        # the main page links to the workflow's page
        b.js(f"{row}.querySelector('a').click()")
        b.wait("location.pathname.endsWith('/dashboard/workflow')")
        b.wait("document.querySelectorAll('#wf-graph g.node').length === 4")
        assert b.js("document.getElementById('wf-id').textContent") == "wf-dash"
        assert b.js("document.getElementById('wf-total').dataset.v") == "4"
        assert b.js("document.getElementById('wf-done').dataset.v") == "0"
        assert b.js(STATES) == {
            "dash.a": "pending", "dash.b": "waiting", "dash.c": "waiting", "dash.d": "waiting",
        }  # fmt: skip
        assert b.js("document.querySelectorAll('#wf-graph path.edge').length") == 4
        # one column per dependency layer: a, then b and c, then d
        x = b.js(X)
        assert x["dash.a"] < x["dash.b"] == x["dash.c"] < x["dash.d"]
        waiting_fill = b.js(FILLS)
        assert waiting_fill["dash.a"] != waiting_fill["dash.b"]

        c.dispatcher()
        c.worker("wf1@test", slots=2)
        c.client.wait(handles, timeout=60)
        b.wait("document.getElementById('wf-finished').dataset.v === 'finished'")
        assert b.js(STATES) == {
            "dash.a": "succeeded", "dash.b": "failed", "dash.c": "succeeded",
            "dash.d": "cancelled",
        }  # fmt: skip
        assert b.js("document.getElementById('wf-done').dataset.v") == "4"
        fills = b.js(FILLS)
        assert fills["dash.a"] == fills["dash.c"]
        assert len({fills["dash.a"], fills["dash.b"], fills["dash.d"], waiting_fill["dash.b"]}) == 4
        counts = b.js(
            "Object.fromEntries([...document.querySelectorAll('#wf-counts span')]"
            ".map((s) => [s.id, s.dataset.v]))"
        )
        assert counts == {"count-succeeded": "2", "count-failed": "1", "count-cancelled": "1"}
        shot = b.screenshot(tmp_path / "workflow.png")
        assert shot.startswith(b"\x89PNG\r\n\x1a\n")
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "workflow.png", ARTIFACTS / "workflow.png")

        # the main page: nothing waits any more, and the workflow shows 4 of 4 done
        b.goto(base + "/dashboard")
        b.wait(f"!!{row} && {row}.querySelectorAll('td')[1].textContent === '4'")
        assert b.js("document.getElementById('waiting').dataset.v") == "0"

        # an unknown workflow: the page says so
        b.goto(base + "/dashboard/workflow?id=no-such")
        b.wait("document.getElementById('error').textContent.includes('no such workflow')")
