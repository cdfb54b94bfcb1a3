"""`dsrl-platform ui`: MLflow's UI on a SQLite store, started light and announced when ready.

MLflow's server starts 4 uvicorn workers and its job consumers by default; on a busy small
machine that took ~45 s to listen. The UI needs one worker and no jobs. The address is printed
at once, and "ready" once the server answers its health check.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from dsrl_platform.tracking import uri as uris

POLL_S = 0.5


def open_ui(uri: str, host: str, port: int, out=print) -> int:
    """Serve the MLflow UI on this store (blocks until Ctrl-C); a server URI is printed instead."""
    if uris.is_server(uri):
        out(f"the tracking server has its own UI: {uri}")
        return 0
    uris.check_readable(uri, "launch an experiment first, or pass --tracking-uri")
    _check_port_free(host, port)
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    cmd = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    address = f"http://{host}:{port}"
    out(f"starting the MLflow UI on {address} (store {uri}); Ctrl-C stops it")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=_light_env())
    # Stopped by Ctrl-C or SIGTERM: stop the UI server too (SIGINT, as a terminal would send).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _wait_ready(proc, address):
            print(f"the MLflow server stopped before it was ready (exit code {proc.returncode}); its output is "
                  f"above", file=sys.stderr)
            return proc.returncode or 1
        out(f"MLflow UI ready: {address} (after {time.monotonic() - start:.0f} s)")
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0


def _light_env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _check_port_free(host: str, port: int) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError as err:
        raise ValueError(f"--port {port}: cannot listen on {host}:{port} ({err.strerror or err}); "
                         f"choose another with --port or --host") from None


def _wait_ready(proc: subprocess.Popen, address: str) -> bool:
    """Poll the server's health check until it answers (True) or the server exits (False)."""
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(POLL_S)
    return False


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
