"""The API's interactive docs work on a closed network: /docs and /redoc load their
scripts from the API itself, and headless Chromium renders every operation.

The machine has no route to a CDN, so a page that fetched Swagger UI from one
would render nothing here; the count of rendered operations is checked
against the OpenAPI document the same server serves.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from tests.api_live import live_stack
from tests.test_dashboard_browser import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class Operations(HTMLParser):
    """Collects the ids of Swagger UI's operation blocks (``div.opblock``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "opblock" in classes and (a.get("id") or "").startswith("operations-"):
            self.ids.append(a["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with live_stack(tmp_path_factory.mktemp("docs-browser")) as live:
        yield live


def _scripts_and_styles(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_pages_load_their_assets_from_the_api_itself(stack):
    for page in ("/docs", "/redoc"):
        html = httpx.get(stack.url + page, timeout=30).text
        assets = _scripts_and_styles(html)
        assert assets, f"{page} references no script or style"
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            reply = httpx.get(stack.url + url, timeout=30)
            assert reply.status_code == 200, f"{page}: {url} -> {reply.status_code}"
            assert len(reply.content) > 1000, f"{page}: {url} is nearly empty"


def test_swagger_ui_renders_every_operation_offline_in_headless_chromium(stack, tmp_path):
    spec = httpx.get(stack.url + "/openapi.json", timeout=30).json()
    expected = {
        (method, path) for path, ops in spec["paths"].items() for method in ops if method in METHODS
    }
    assert len(expected) >= 10

    found = Operations()
    found.feed(chromium(tmp_path, stack.url + "/docs", "--dump-dom"))
    assert len(found.ids) == len(expected), found.ids
    # Swagger UI names each block operations-<tag>-<operationId>; every operation id shows.
    op_ids = {op.get("operationId", "") for ops in spec["paths"].values() for op in ops.values()}
    for op_id in op_ids:
        assert any(i.endswith("-" + op_id) for i in found.ids), op_id


def test_redoc_renders_the_operations_offline_in_headless_chromium(stack, tmp_path):
    spec = httpx.get(stack.url + "/openapi.json", timeout=30).json()
    dom = chromium(tmp_path, stack.url + "/redoc", "--dump-dom")
    for ops in spec["paths"].values():
        for op in ops.values():
            assert op["summary"] in dom, op["summary"]
