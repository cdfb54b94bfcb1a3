"""Is a launch's driver still alive? A heartbeat the launcher writes, read by `status`.

A driver killed with SIGKILL (or a lost machine) cannot end its launch run, which then stays
RUNNING in MLflow. While it runs, the launcher tags its launch run with the driver's host and
PID and, every HEARTBEAT_S, the time. A reader on the same host checks the PID (immediate);
from any host, a heartbeat older than STALE_S means the driver is gone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from dsrl_platform.tracking.client import RUNNING, Tracker

HEARTBEAT_S = 30.0
STALE_S = 3 * HEARTBEAT_S  # a few missed beats (a slow store) are not yet a dead driver
TAG_DRIVER = "dsrl.driver"  # launch run: "HOST PID" of the process running the launch
TAG_HEARTBEAT = "dsrl.heartbeat"  # launch run: unix time (s) of the driver's latest beat


class Heartbeat:
    """While the `with` block runs, beat on `run_id` every `every_s` (best effort, own thread)."""

    def __init__(self, tracker: Tracker, run_id: str, every_s: float = HEARTBEAT_S):
        self.tracker, self.run_id, self.every_s = tracker, run_id, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dsrl-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.tracker.set_tags(self.run_id, {TAG_DRIVER: f"{socket.gethostname()} {os.getpid()}",
                                            TAG_HEARTBEAT: f"{time.time():.0f}"})
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.tracker.set_tags(self.run_id, {TAG_HEARTBEAT: f"{time.time():.0f}"})
            except Exception:  # a store outage: the next beat may get through
                pass


def driver_gone(launch: Any, now_s: float | None = None) -> str | None:
    """Why a RUNNING launch run's driver is known to be gone, or None (alive, ended, or a launch
    from a version without heartbeats)."""
    tags = launch.data.tags
    if launch.info.status != RUNNING or TAG_HEARTBEAT not in tags:
        return None
    host, _, pid = tags.get(TAG_DRIVER, "").partition(" ")
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return f"its driver (pid {pid}) is gone"
    silent = (time.time() if now_s is None else now_s) - float(tags[TAG_HEARTBEAT])
    if silent > STALE_S:
        return f"no heartbeat from its driver ({host} pid {pid}) for {silent:.0f} s"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a killed driver whose parent has not reaped it yet is a zombie: gone
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
