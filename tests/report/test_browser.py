"""index.html opened from disk in headless Chromium (Debian's `chromium`): tables and figures
show, and the page logs no console error, exception or failed load.

Driven over the DevTools protocol with the `websockets` client already in the venv.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium; .ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*"]
TIMEOUT_S = 30

# Everything the test needs to know about the page, read inside the browser.
PROBE = """JSON.stringify({
  title: document.title,
  tables: [...document.querySelectorAll('section.table')].map(s => ({
    id: s.id, rows: s.querySelectorAll('tbody tr').length,
    visible: s.getBoundingClientRect().height > 0})),
  images: [...document.querySelectorAll('img')].map(i => ({
    alt: i.alt, loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width,
    dataUri: i.src.startsWith('data:image/png;base64,')})),
})"""


class DevTools:
    """The smallest DevTools client: send commands, collect events."""

    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")

    def open(self, url: str) -> dict:
        """Load `url`, wait for its load event, return what PROBE reads off the page."""
        self.events = []
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        return json.loads(self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)["result"]["value"])

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=TIMEOUT_S))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str):
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1))))
        return next(e for e in self.events if e.get("method") == method)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from websockets.sync.client import connect

    profile = tmp_path_factory.mktemp("chromium") / "profile"
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=TIMEOUT_S) as ws:
            yield DevTools(ws)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this fixture started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _problems(events: list[dict]) -> list[str]:
    """Console errors and warnings, uncaught exceptions, failed loads."""
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
            out.append(f"console.{p['type']}: {p['args']}")
        elif m == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails']}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            out.append(f"load failed: {p}")
    return out


@pytest.mark.parametrize("name, tables, images", [
    ("sokar", ["returns", "costs", "steps_to_dense", "runs", "unfinished"], 3),
    ("graesser", ["iqm", "improvement", "normalised", "runs", "unfinished"], 3),
])
def test_dashboard_renders_offline_without_console_errors(reports, browser, name, tables, images):
    out, _ = reports[name]
    page = browser.open((out / "index.html").as_uri())

    assert page["title"].endswith(": synth")
    assert [t["id"] for t in page["tables"]] == [f"table-{t}" for t in tables]
    assert all(t["visible"] for t in page["tables"])
    rows = {t["id"]: t["rows"] for t in page["tables"]}
    assert rows["table-runs"] == 21 and rows["table-unfinished"] == 3
    assert len(page["images"]) == images
    assert all(i["loaded"] and i["dataUri"] and i["width"] > 100 for i in page["images"]), page["images"]
    assert _problems(browser.events) == []


def test_the_probe_would_see_errors(browser, tmp_path):
    """The same checks on a broken page find its problems (so an empty list above means something)."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                   '<img src="missing.png" alt="gone"><script>console.error("boom")</script></body></html>')
    page = browser.open(bad.as_uri())
    assert page["images"] == [{"alt": "gone", "loaded": False, "width": page["images"][0]["width"],
                               "dataUri": False}]
    problems = _problems(browser.events)
    assert any("boom" in p for p in problems), problems
    assert any("ERR_FILE_NOT_FOUND" in p and "missing.png" in p for p in problems), problems
