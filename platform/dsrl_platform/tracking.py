"""MLflow tracking: the experiment, its runs, and metrics that survive a tracking outage.

Layout (names in `dsrl_platform.names`; report/data.py reads exactly this):
- one MLflow experiment per spec (its `name`);
- one parent run per launch, tagged `dsrl.role=launch` and found again by its launch key (the
  hash of the experiment name and its run keys), so relaunching the same grid reuses it; the
  spec file and the expanded grid are its artifacts;
- one child run per trial, tagged `dsrl.role=trial`, algo, method, env, seed, steps (budget),
  sparsity (the agent's initial overall sparsity) and `run_key` (the hash of the resolved
  config). A trial's run is found again by its run key: retries and relaunches continue it.
  The resolved config is logged as params; `dsrl.status=finished` marks a completed trial.

Metrics go through `MlflowSink`: buffered in memory, delivered with `log_batch` (≤1000 per
call), kept and retried later when the store is unreachable, and flushed with retries at the
end of a trial. With `hold=True` a point is delivered only once a checkpoint covers it, so a
trial resumed from its checkpoint re-logs nothing MLflow already has: one curve, no duplicates.

This is the only module (with report/data.py) that imports MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dsrl_platform import names
from dsrl_platform.progress import TrialState
from dsrl_platform.store import check_store_exists

RETRY_ENV = "DSRL_TRACKING_RETRY_S"  # how long the final flush (and run bookkeeping) keeps retrying
DEFAULT_RETRY_S = 600.0
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
# MLflow's own HTTP client retries 7 times with backoff and waits up to 120 s per request; a
# dead server would then stall training for minutes at every flush. The sink retries itself.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# Errors that retrying cannot fix: the request itself is wrong.
_PERMANENT_CODES = frozenset({
    "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST",
    "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED", "ENDPOINT_NOT_FOUND",
})
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"

T = TypeVar("T")


class TrackingUnavailable(RuntimeError):
    """The tracking store stayed unreachable longer than the retry budget."""


def retry_budget_s() -> float:
    return float(os.environ.get(RETRY_ENV, DEFAULT_RETRY_S))


def is_transient(err: BaseException) -> bool:
    """A failure that may go away: the server is down, slow, overloaded, or SQLite is locked."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        return err.error_code not in _PERMANENT_CODES
    if isinstance(err, OSError):  # includes requests' ConnectionError and Timeout
        return True
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy comes with mlflow
        return False
    return isinstance(err, OperationalError)


def with_retries(fn: Callable[[], T], what: str, budget_s: float | None = None) -> T:
    """`fn()`, retried with exponential backoff (1 s … 30 s) on transient errors for `budget_s`."""
    deadline = time.monotonic() + (retry_budget_s() if budget_s is None else budget_s)
    delay = 1.0
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_transient(err):
                raise
            if time.monotonic() + delay > deadline:
                raise TrackingUnavailable(f"{what}: tracking store unreachable ({_short(err)})") from err
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) < 300 else text[:300] + "…"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _client(uri: str):
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating initial MLflow database tables…"
    return MlflowClient(tracking_uri=uri)


class Tracker:
    """Experiments and runs of one tracking store, in the launcher's layout."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = _client(uri)

    @classmethod
    def connect(cls, uri: str, *, must_exist: bool = False) -> Tracker:
        """A tracker whose store answered; a user-facing ValueError naming the URI if not."""
        if uri.startswith("file:") or ("://" not in uri and not uri.startswith("sqlite")):
            raise ValueError(f"tracking store {uri}: file stores are not supported; use sqlite:///ABSOLUTE/PATH/mlflow.db or an http(s) server")
        if must_exist:
            check_store_exists(uri)
        tracker = cls(uri)
        try:
            tracker.client.search_experiments(max_results=1)
        except Exception as err:
            if not is_transient(err):
                raise
            raise ValueError(f"tracking store {uri}: unreachable ({_short(err)}); start the server "
                             f"or pass --tracking-uri") from None
        return tracker

    # --- experiments ---------------------------------------------------------------------
    def experiment_id(self, name: str, *, create: bool = True) -> str | None:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                raise ValueError(f"experiment {name!r} is deleted in {self.uri}; restore it in the MLflow UI "
                                 f"or rename the spec")
            return exp.experiment_id
        if not create:
            return None
        return self.client.create_experiment(name, artifact_location=self._artifact_root(name))

    def _artifact_root(self, name: str) -> str | None:
        """SQLite stores keep artifacts next to the database (not in whatever cwd a worker has)."""
        if not self.uri.startswith("sqlite:///"):
            return None  # a server decides
        root = Path(self.uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        return (root / name.replace(" ", "_")).as_uri()

    def _search(self, experiment_id: str, filter_string: str) -> list[Any]:
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # --- launches (parent runs) ------------------------------------------------------------
    def open_launch(self, experiment_id: str, launch_key: str, run_name: str, n_trials: int,
                    spec_path: Path, grid: list[dict[str, Any]]) -> tuple[str, bool]:
        """The parent run of this grid: found by launch key (reopened) or created. (id, created)"""
        found = self._search(experiment_id, f"tags.`{names.TAG_LAUNCH_KEY}` = '{launch_key}' and "
                                            f"tags.`{names.TAG_ROLE}` = '{names.ROLE_LAUNCH}'")
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status=RUNNING)
            return run_id, False
        run = self.client.create_run(experiment_id, run_name=run_name, tags={
            names.TAG_ROLE: names.ROLE_LAUNCH, names.TAG_LAUNCH_KEY: launch_key,
            names.TAG_TRIALS: str(n_trials)})
        run_id = run.info.run_id
        self.client.log_artifact(run_id, str(spec_path), names.ARTIFACT_SPEC_DIR)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / names.ARTIFACT_GRID
            path.write_text(json.dumps(grid, indent=1))
            self.client.log_artifact(run_id, str(path))
        return run_id, True

    def end_launch(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)

    def latest_launch(self, experiment_id: str) -> Any | None:
        runs = self.client.search_runs([experiment_id], f"tags.`{names.TAG_ROLE}` = '{names.ROLE_LAUNCH}'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0] if runs else None

    def launch_grid(self, run_id: str) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, names.ARTIFACT_GRID, tmp)
            return json.loads(Path(path).read_text())

    # --- trials (child runs) ---------------------------------------------------------------
    def trial_runs(self, experiment_id: str) -> dict[str, Any]:
        """Active trial runs by run key (a finished one wins if a key has several)."""
        out: dict[str, Any] = {}
        for run in self._search(experiment_id, f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'"):
            key = run.data.tags.get(names.TAG_RUN_KEY)
            if key and not (key in out and is_finished(out[key])):
                out[key] = run
        return out

    def finished_keys(self, experiment_id: str) -> set[str]:
        return {key for key, run in self.trial_runs(experiment_id).items() if is_finished(run)}

    def open_trial(self, experiment_id: str, parent_run_id: str | None, run_key: str, run_name: str,
                   tags: Mapping[str, str], params: Mapping[str, Any], *, fresh: bool) -> tuple[str, bool]:
        """The trial's run, found by run key or created, marked running. Returns (id, finished).

        `fresh`: the trial starts from step 0. A run that already holds metrics from an earlier
        attempt that left no checkpoint is replaced (deleted), so that its curve stays one curve.
        """
        found = self._search(experiment_id, f"tags.`{names.TAG_RUN_KEY}` = '{run_key}' and "
                                            f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'")
        done = [r for r in found if is_finished(r)]
        if done:
            return done[0].info.run_id, True
        run = found[0] if found else None
        if run is not None and fresh and run.data.metrics:
            for stale in found:
                self.client.delete_run(stale.info.run_id)
            run = None
        if run is None:
            all_tags = {**tags, names.TAG_ROLE: names.ROLE_TRIAL, names.TAG_RUN_KEY: run_key}
            if parent_run_id:
                all_tags[names.TAG_PARENT] = parent_run_id
            run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        run_id = run.info.run_id
        self._log_missing_params(run_id, run.data.params, params)
        attempts = int(run.data.tags.get(names.TAG_ATTEMPTS, "0")) + 1
        self.client.set_tag(run_id, names.TAG_ATTEMPTS, str(attempts))
        if run.info.status != RUNNING:
            self.client.update_run(run_id, status=RUNNING)
        return run_id, False

    def _log_missing_params(self, run_id: str, have: Mapping[str, str], params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        missing = [Param(k, _param_value(v)) for k, v in params.items() if k not in have]
        for i in range(0, len(missing), 100):  # MLflow: at most 100 params per batch
            self.client.log_batch(run_id, params=missing[i:i + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def finish_trial(self, run_id: str) -> None:
        self.client.set_tag(run_id, names.TAG_STATUS, names.STATUS_FINISHED)
        self.client.set_terminated(run_id, status=FINISHED)

    def end_trial(self, run_id: str, status: str) -> None:
        """Mark an unfinished trial's run FAILED or KILLED (a relaunch sets it running again)."""
        run = self.client.get_run(run_id)
        if run.info.status != status and not is_finished(run):
            self.client.set_terminated(run_id, status=status)

    def eval_history(self, run_id: str) -> list[tuple[int, float, int]]:
        """(step, return, timestamp ms) of every evaluation logged, in logging order."""
        return [(m.step, m.value, m.timestamp) for m in self.client.get_metric_history(run_id, names.EVAL_RETURN)]


def is_finished(run: Any) -> bool:
    return run.data.tags.get(names.TAG_STATUS) == names.STATUS_FINISHED


# --- metrics ------------------------------------------------------------------------------------
class MlflowSink:
    """The trainer's metric sink for one run: buffered, batched, and patient with outages.

    `log` only appends to a buffer; delivery happens when `batch` points are ready or
    `flush_every_s` has passed. When the store is unreachable the points stay buffered and
    delivery is retried later (backoff up to `max_backoff_s`) while training goes on; `close`
    retries for `retry_s` (DSRL_TRACKING_RETRY_S, default 600 s) and raises `TrackingUnavailable`
    only if the store never came back. With `hold=True` points wait for `release()`, which the
    trainable calls once a checkpoint covers them.
    """

    def __init__(self, tracker: Tracker, run_id: str, *, hold: bool = False, batch: int = MAX_BATCH,
                 flush_every_s: float = 10.0, max_backoff_s: float = 60.0, retry_s: float | None = None):
        from mlflow.entities import Metric

        self._metric = Metric
        self.tracker, self.run_id, self.hold = tracker, run_id, hold
        self.batch, self.flush_every_s, self.max_backoff_s = min(batch, MAX_BATCH), flush_every_s, max_backoff_s
        self.retry_s = retry_budget_s() if retry_s is None else retry_s
        self._points: list[Any] = []  # buffered, oldest first
        self._released = 0  # the first this many points may be delivered
        self._last_attempt = time.monotonic()
        self._backoff = 0.0  # > 0 while the store is failing
        self.delivered = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        return len(self._points)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        ts = _now_ms()
        self._points.extend(self._metric(k, float(v), ts, int(step)) for k, v in metrics.items())
        if not self.hold:
            self._released = len(self._points)
        self._maybe_flush()

    def release(self) -> None:
        """Everything logged so far may be delivered (it is covered by a checkpoint)."""
        self._released = len(self._points)
        self._maybe_flush(now=True)

    def flush(self) -> None:
        """Deliver what is released; on a transient error keep it for later (never raises it)."""
        self._last_attempt = time.monotonic()
        try:
            self._deliver()
        except Exception as err:
            if not is_transient(err):
                raise
            self.last_error = _short(err)
            self._backoff = min(max(self._backoff * 2, 1.0), self.max_backoff_s)
        else:
            self._backoff, self.last_error = 0.0, None

    def close(self) -> None:
        """Release and deliver everything, retrying for `retry_s`; the run's curve is complete."""
        self._released = len(self._points)
        deadline, delay = time.monotonic() + self.retry_s, 1.0
        while True:
            self.flush()
            if not self._points:
                return
            if time.monotonic() + delay > deadline:
                raise TrackingUnavailable(
                    f"tracking store {self.tracker.uri} unreachable for {self.retry_s:.0f} s "
                    f"({self.last_error}); {len(self._points)} metric points of run {self.run_id} "
                    f"were not delivered (raise {RETRY_ENV} to wait longer)")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _maybe_flush(self, now: bool = False) -> None:
        if not self._released:
            return
        waited = time.monotonic() - self._last_attempt
        if self._backoff:
            due = waited >= self._backoff
        else:
            due = now or self._released >= self.batch or waited >= self.flush_every_s
        if due:
            self.flush()

    def _deliver(self) -> None:
        while self._released:
            chunk = self._points[:min(self._released, self.batch)]
            self.tracker.client.log_batch(self.run_id, metrics=chunk)
            del self._points[:len(chunk)]
            self._released -= len(chunk)
            self.delivered += len(chunk)


# --- reading progress ---------------------------------------------------------------------------
def experiment_progress(uri: str, experiment: str) -> tuple[list[TrialState], str | None]:
    """The trials of `experiment`'s latest launch as `TrialState`s, read from the store.

    Returns (states, note): trials of the grid without a run yet are pending.
    """
    tracker = Tracker.connect(uri, must_exist=True)
    exp_id = tracker.experiment_id(experiment, create=False)
    if exp_id is None:
        known = sorted(e.name for e in tracker.client.search_experiments(max_results=50))
        raise ValueError(f"experiment {experiment!r}: not found in {uri} (known: {', '.join(known) or 'none'})")
    launch = tracker.latest_launch(exp_id)
    grid = tracker.launch_grid(launch.info.run_id) if launch else []
    runs = tracker.trial_runs(exp_id)
    now = _now_ms()
    states = []
    for row in grid or [_row_from_run(r) for r in runs.values()]:
        run = runs.get(row["run_key"])
        states.append(_state(tracker, row, run, now))
    note = None
    if launch is not None:
        note = f"launch {launch.info.run_name} ({launch.info.status.lower()})"
    return states, note


def _row_from_run(run: Any) -> dict[str, Any]:
    t = run.data.tags
    return {"run_key": t.get(names.TAG_RUN_KEY), "algo": t.get(names.TAG_ALGO), "method": t.get(names.TAG_METHOD),
            "env": t.get(names.TAG_ENV), "seed": t.get(names.TAG_SEED), "steps": int(t.get(names.TAG_BUDGET, 0))}


def _state(tracker: Tracker, row: Mapping[str, Any], run: Any, now_ms: int) -> TrialState:
    name = f"{row['algo']}-{row['method']}-{row['env']}-s{row['seed']}"
    group = f"{row['algo']}/{row['method']}"
    budget = int(row["steps"])
    if run is None:
        return TrialState(name, group, row["env"], "pending", 0, budget)
    metrics = run.data.metrics
    ret = metrics.get(names.EVAL_RETURN)
    rate = metrics.get(names.STEPS_PER_S)
    if is_finished(run):
        return TrialState(name, group, row["env"], "done", budget, budget, ret)
    status = {RUNNING: "running", FAILED: "failed"}.get(run.info.status, "pending")
    history = tracker.eval_history(run.info.run_id)
    step = max((s for s, _, _ in history), default=0)
    age = (now_ms - max(ts for _, _, ts in history)) / 1000 if history else None
    return TrialState(name, group, row["env"], status, step, budget, ret, rate if status == "running" else None, age)


# --- the MLflow UI -------------------------------------------------------------------------------
def open_ui(uri: str, host: str, port: int) -> int:
    """Serve the MLflow UI on this store (blocks until Ctrl-C); a server URI is printed instead."""
    if uri.startswith(("http://", "https://")):
        print(f"the tracking server has its own UI: {uri}")
        return 0
    check_store_exists(uri, "launch an experiment first, or pass --tracking-uri")
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    cmd = [mlflow, "ui"] if mlflow else [sys.executable, "-m", "mlflow", "ui"]
    cmd += ["--backend-store-uri", uri, "--host", host, "--port", str(port)]
    print(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C stops it", flush=True)
    proc = subprocess.Popen(cmd)
    # Stopped by Ctrl-C or SIGTERM: stop the UI server too (SIGINT, as a terminal would send).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
