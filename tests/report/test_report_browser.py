"""index.html opened from disk in headless Chromium (Debian's `chromium`): tables and figures
show, and the page logs no console error, exception or failed load.

Driven over the DevTools protocol through `--remote-debugging-pipe` (JSON messages separated by
NUL bytes on file descriptors 3 and 4): no network port, no websocket library.
"""

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium; .ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]
TIMEOUT_S = 30

# Everything the test needs to know about the page, read inside the browser.
PROBE = """JSON.stringify({
  title: document.title,
  tables: [...document.querySelectorAll('section.table')].map(s => ({
    id: s.id, rows: s.querySelectorAll('tbody tr').length,
    visible: s.getBoundingClientRect().height > 0, text: s.innerText})),
  images: [...document.querySelectorAll('img')].map(i => ({
    alt: i.alt, loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width,
    dataUri: i.src.startsWith('data:image/png;base64,')})),
})"""


class DevTools:
    """The smallest DevTools client: one page session; send commands, collect its events."""

    def __init__(self, to_browser: int, from_browser: int):
        self.out, self.inp, self.buf = to_browser, from_browser, b""
        self.next_id, self.session, self.events = 0, None, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
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
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]
            self._keep(reply)

    def wait_for(self, method: str):
        while not any(e.get("method") == method for e in self.events):
            self._keep(self._receive())

    def _keep(self, msg: dict) -> None:
        if msg.get("sessionId") == self.session:  # events of our page only
            self.events.append(msg)

    def _receive(self) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.inp], [], [], max(deadline - time.monotonic(), 0))
            assert ready, "no answer from chromium"
            chunk = os.read(self.inp, 1 << 20)
            assert chunk, "chromium closed the DevTools pipe"
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)


def _above_9(fd: int) -> int:
    """The same pipe end on a descriptor > 9, so that redirecting onto 3 and 4 clobbers neither."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    cmd_r, cmd_w = os.pipe()  # we write commands; chromium reads them on fd 3
    ev_r, ev_w = os.pipe()  # chromium writes replies and events on fd 4
    cmd_r, ev_w = _above_9(cmd_r), _above_9(ev_w)
    proc = subprocess.Popen(
        ["bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{ev_w}', CHROMIUM, *FLAGS,  # dash: fds 0-9 only
         f"--user-data-dir={profile}", "about:blank"],
        pass_fds=(cmd_r, ev_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    os.close(cmd_r)
    os.close(ev_w)
    try:
        yield DevTools(cmd_w, ev_r)
    finally:
        os.close(cmd_w)
        os.close(ev_r)
        with contextlib.suppress(ProcessLookupError):  # the process group this fixture started
            os.killpg(proc.pid, signal.SIGTERM)
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


@pytest.mark.parametrize("name, experiment, tables, images, runs", [
    ("sokar", "synth", ["returns", "costs", "steps_to_dense", "runs", "unfinished"], 3, (21, 3)),
    ("graesser", "graesser", ["iqm", "improvement", "actor_critic", "normalised", "costs", "runs", "unfinished"],
     13, (50, 0)),
])
def test_dashboard_renders_offline_without_console_errors(reports, browser, name, experiment, tables, images, runs):
    out, _ = reports[name]
    page = browser.open((out / "index.html").as_uri())

    assert page["title"].endswith(f": {experiment}")
    assert [t["id"] for t in page["tables"]] == [f"table-{t}" for t in tables]
    assert all(t["visible"] for t in page["tables"])
    rows = {t["id"]: t["rows"] for t in page["tables"]}
    assert (rows["table-runs"], rows["table-unfinished"]) == runs
    assert len(page["images"]) == images
    assert all(i["loaded"] and i["dataUri"] and i["width"] > 100 for i in page["images"]), page["images"]
    assert _problems(browser.events) == []
    if name == "graesser":  # 5 sac levels + 2 each of ppo and dqn; 4 actor × critic cells
        assert (rows["table-iqm"], rows["table-actor_critic"]) == (9, 4)
        iqm = next(t["text"] for t in page["tables"] if t["id"] == "table-iqm")
        assert iqm.count("Dense (matched)") >= 2 and "last_10_percent" in iqm
        alts = [i["alt"] for i in page["images"]]
        assert "sac: critic vs actor sparsity" in alts and "sac: normalised return vs sparsity" in alts


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
