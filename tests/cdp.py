"""Drive Debian's headless Chromium over the DevTools protocol, for tests that click.

``--dump-dom`` and ``--screenshot`` (tests/test_dashboard_browser.py) see a
page once; a test that types a token and presses a button needs a live page.
Chromium is started with ``--remote-debugging-port=0`` (it writes the port it
chose to ``DevToolsActivePort`` in its profile), and one page target is driven
through ``websockets``' synchronous client: navigate, evaluate JavaScript,
wait for a condition, take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tests.test_dashboard_browser import CHROMIUM, FLAGS


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        self.profile = profile
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Browser:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
        url = pages[0]["webSocketDebuggerUrl"]
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=30))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0], height=self.size[1], deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == ident:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'")

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its value."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait(self, condition: str, timeout: float = 30.0) -> Any:
        """Poll until the JavaScript ``condition`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(condition)
            if value:
                return value
            assert time.monotonic() < deadline, f"still false after {timeout}s: {condition}"
            time.sleep(0.2)

    def screenshot(self, path: Path) -> bytes:
        """A PNG of the whole page (its full height), written to ``path``."""
        height = int(self.js("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0], height=max(self.size[1], height), deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0], height=self.size[1], deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        path.write_bytes(data)
        return data
