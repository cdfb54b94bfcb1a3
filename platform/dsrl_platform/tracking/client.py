"""The one MLflow client: connecting, timeouts and retries, the runs of the launcher's layout.

Every command that reads or writes the store goes through `Tracker` (launch, the trials, status,
ui, report), so they share one timeout policy, one error message per failure, one definition of
a finished trial run, and one way to search.

Timeout policy: an HTTP request to a tracking server waits at most REQUEST_TIMEOUT_S and MLflow
itself never retries (its default is 7 retries of up to 120 s each: minutes per call on a dead
server). Commands connect with `Tracker.connect`, which first checks that the address accepts
TCP connections (CONNECT_TIMEOUT_S) and then asks one question (PROBE_TIMEOUT_S); any failure is a ValueError
naming the URI, so the command ends with one line and exit code 2 within seconds. Trials,
which must survive an outage, retry themselves (`with_retries`, `MlflowSink`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dsrl_platform import names
from dsrl_platform.tracking import uri as uris

REQUEST_TIMEOUT_S = 10  # one HTTP request to a tracking server
CONNECT_TIMEOUT_S = 3  # does the address accept a TCP connection at all
PROBE_TIMEOUT_S = 5  # the first, tiny request of a command (unless MLFLOW_HTTP_REQUEST_TIMEOUT is set)
_TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"
_USERS_TIMEOUT = os.environ.get(_TIMEOUT_ENV)  # read before this module sets its default
RETRY_ENV = "DSRL_TRACKING_RETRY_S"  # how long trials keep retrying (final flush, run bookkeeping)
DEFAULT_RETRY_S = 600.0
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", _TIMEOUT_ENV: str(REQUEST_TIMEOUT_S)}
# Errors that retrying cannot fix: the request itself is wrong.
_PERMANENT_CODES = frozenset({
    "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST",
    "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED", "ENDPOINT_NOT_FOUND",
})
# MLflow run statuses (RunStatus names).
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"

T = TypeVar("T")


class TrackingUnavailable(RuntimeError):
    """The tracking store stayed unreachable longer than the retry budget."""


# --- a finished trial: one definition ------------------------------------------------------------
def unfinished_reason(run: Any) -> str:
    """Why a trial run does not count as finished ('' if it does): the trainable tags it
    `dsrl.status=finished` after its last metric and then ends it FINISHED; both must hold."""
    reasons = []
    if run.info.status != FINISHED:
        reasons.append(f"MLflow status {run.info.status}")
    if run.data.tags.get(names.TAG_STATUS) != names.STATUS_FINISHED:
        reasons.append(f"no {names.TAG_STATUS}={names.STATUS_FINISHED} tag")
    return "; ".join(reasons)


def is_finished(run: Any) -> bool:
    return not unfinished_reason(run)


# --- retries (trials) ----------------------------------------------------------------------------
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
                raise TrackingUnavailable(f"{what}: tracking store unreachable ({short(err)})") from err
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) < 300 else text[:300] + "…"


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _mlflow_client(uri: str):
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating initial MLflow database tables…"
    return MlflowClient(tracking_uri=uri)


# --- connecting: why a store cannot be used, in one line -----------------------------------------
# What a database answers first, so that a port that accepts connections but never answers is
# refused in seconds (its driver would wait forever): PostgreSQL answers an SSLRequest with one
# byte, MySQL greets every new connection unasked.
_HELLO = {"postgresql": struct.pack("!ii", 8, 80877103), "mysql": b""}


def _check_reachable(uri: str) -> None:
    """A server or database address must accept a TCP connection, and a database must answer
    (seconds, not a driver's or MLflow's minutes)."""
    address = uris.network_address(uri)
    if address is None:
        return
    host, port = address
    try:
        sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
    except socket.gaierror:
        raise _unusable(uri, f"unreachable: unknown host {host!r}") from None
    except TimeoutError:
        raise _unusable(uri, f"unreachable: {host}:{port} did not accept a connection within "
                             f"{CONNECT_TIMEOUT_S} s") from None
    except OSError as err:
        raise _unusable(uri, f"unreachable: nothing accepts connections at {host}:{port} ({err.strerror or err}); "
                             f"start the server or pass --tracking-uri") from None
    with sock:
        hello = _HELLO.get(uris.scheme_of(uri).split("+")[0])
        if hello is None:
            return
        try:
            sock.sendall(hello)
            answered = bool(sock.recv(1))
        except OSError:  # a timeout included
            answered = False
        if not answered:
            raise _unusable(uri, f"accepts connections but did not answer as a database within "
                                 f"{CONNECT_TIMEOUT_S} s")


def _connect_problem(uri: str, err: Exception, timeout: str = str(PROBE_TIMEOUT_S)) -> str:
    from mlflow.exceptions import RestException

    if isinstance(err, ImportError):
        return (f"its database driver {err.name!r} is not installed (pip install it, or name an installed "
                f"one as SCHEME+DRIVER://…)")
    code = getattr(err, "error_code", None)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return ("the server refused the credentials (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                "or MLFLOW_TRACKING_TOKEN)")
    text = short(err)
    if "timed out" in str(err).lower():
        return f"accepts connections but did not answer within {timeout} s"
    if uris.is_server(uri) and "failed with exception" not in text:
        # A reply, but not MLflow's: an HTTP error page, or JSON without MLflow's error_code.
        mlflow_reply = isinstance(err, RestException) and "error_code" in (getattr(err, "json", None) or {})
        if not mlflow_reply:
            return (f"answers, but not as an MLflow tracking server ({text}); check the scheme, host, port "
                    f"and path prefix")
    if is_transient(err):
        return f"unreachable ({text}); start the server or pass --tracking-uri"
    return f"cannot be used as an MLflow store ({text})"


def _unusable(uri: str, problem: str) -> ValueError:
    return ValueError(f"tracking store {uris.shown(uri)}: {problem}")


def check_store(uri: str, *, must_exist: bool = False) -> str:
    """`uri`, checked before anything of ours is written: its form, a SQLite file's place (not
    opened: that creates it), and for a server or database that it accepts connections and
    answers MLflow's first question (a new database gets MLflow's tables then). Commands call
    this before their slow imports and preflight; ValueError naming the URI."""
    uri = uris.resolve(uri)  # the accepted forms, also for URIs that did not come from the CLI
    if must_exist:
        uris.check_readable(uri)
    else:
        uris.check_creatable(uri)
    if uris.network_address(uri) is not None:
        _check_reachable(uri)
        try:
            client = _mlflow_client(uri)
        except Exception as err:  # e.g. a database driver that is not installed
            raise _unusable(uri, _connect_problem(uri, err)) from None
        _probe(client, uri)
    return uri


def _probe(client: Any, uri: str) -> None:
    """One small request, waiting PROBE_TIMEOUT_S (or the user's MLFLOW_HTTP_REQUEST_TIMEOUT)."""
    timeout = _USERS_TIMEOUT or str(PROBE_TIMEOUT_S)
    os.environ[_TIMEOUT_ENV] = timeout
    try:
        client.search_experiments(max_results=1)
    except Exception as err:
        raise _unusable(uri, _connect_problem(uri, err, timeout)) from None
    finally:
        os.environ[_TIMEOUT_ENV] = _USERS_TIMEOUT or str(REQUEST_TIMEOUT_S)


class Tracker:
    """Experiments and runs of one tracking store, in the launcher's layout (see the package)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = _mlflow_client(uri)

    @classmethod
    def connect(cls, uri: str, *, must_exist: bool = False) -> Tracker:
        """A tracker whose store answered; else a ValueError naming the URI and the problem.

        `must_exist`: a reader; a missing SQLite file is refused instead of created.
        """
        uri = check_store(uri, must_exist=must_exist)
        tracker = cls(uri)
        if uris.sqlite_path(uri) is not None:  # (check_store did not open it: that creates the file)
            _probe(tracker.client, uri)
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

    def existing_experiment_id(self, name: str) -> str:
        """The id of an experiment readers ask for by name; ValueError listing the known ones."""
        exp_id = self.experiment_id(name, create=False)
        if exp_id is None:
            known = sorted(e.name for e in self.client.search_experiments(max_results=50))
            shown = ", ".join(known[:20]) or "none"
            raise ValueError(f"experiment {name!r}: not found in {uris.shown(self.uri)} (known: {shown})")
        return exp_id

    def _artifact_root(self, name: str) -> str | None:
        """SQLite stores keep artifacts next to the database (not in whatever cwd a worker has)."""
        path = uris.sqlite_path(self.uri)
        if path is None:
            return None  # a server decides
        return (path.parent / "mlartifacts" / name.replace(" ", "_")).as_uri()

    def search(self, experiment_id: str, filter_string: str, *, order_by: list[str] | None = None,
               max_runs: int | None = None) -> list[Any]:
        """Active runs matching `filter_string`, every page (or the first `max_runs`)."""
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string, max_results=min(max_runs or 1000, 1000),
                                           order_by=order_by, page_token=token)
            runs.extend(page)
            token = page.token
            if not token or (max_runs and len(runs) >= max_runs):
                return runs[:max_runs] if max_runs else runs

    @staticmethod
    def role_filter(role: str) -> str:
        return f"tags.`{names.TAG_ROLE}` = '{role}'"

    # --- launches (parent runs) ------------------------------------------------------------
    def open_launch(self, experiment_id: str, launch_key: str, run_name: str, n_trials: int,
                    spec_path: Path, grid: list[dict[str, Any]]) -> tuple[str, bool]:
        """The parent run of this grid: found by launch key (reopened) or created. (id, created)"""
        found = self.search(experiment_id, f"tags.`{names.TAG_LAUNCH_KEY}` = '{launch_key}' and "
                                           + self.role_filter(names.ROLE_LAUNCH))
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
        runs = self.search(experiment_id, self.role_filter(names.ROLE_LAUNCH), order_by=["attributes.start_time DESC"],
                           max_runs=1)
        return runs[0] if runs else None

    def launch_for_report(self, experiment_id: str, run_name: str) -> str:
        """The newest launch run, or a new (ended) one when the runs were not launched by us."""
        launch = self.latest_launch(experiment_id)
        if launch is not None:
            return launch.info.run_id
        run_id = self.client.create_run(experiment_id, run_name=run_name,
                                        tags={names.TAG_ROLE: names.ROLE_LAUNCH}).info.run_id
        self.client.set_terminated(run_id)
        return run_id

    def launch_grid(self, run_id: str) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, names.ARTIFACT_GRID, tmp)
            return json.loads(Path(path).read_text())

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    # --- trials (child runs) ---------------------------------------------------------------
    def all_trial_runs(self, experiment_id: str) -> list[Any]:
        return self.search(experiment_id, self.role_filter(names.ROLE_TRIAL))

    def trial_runs(self, experiment_id: str) -> dict[str, Any]:
        """Active trial runs by run key (a finished one wins if a key has several)."""
        out: dict[str, Any] = {}
        for run in self.all_trial_runs(experiment_id):
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
        found = self.search(experiment_id, f"tags.`{names.TAG_RUN_KEY}` = '{run_key}' and "
                                           + self.role_filter(names.ROLE_TRIAL))
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

    def fail_trial(self, run_id: str, reason: str) -> None:
        """A trial that cannot go on (its group trains on without it): FAILED, with why."""
        self.client.set_tag(run_id, names.TAG_FAILURE, reason)
        self.client.set_terminated(run_id, status=FAILED)

    def end_trial(self, run_id: str, status: str) -> None:
        """Mark an unfinished trial's run FAILED or KILLED (a relaunch sets it running again)."""
        run = self.client.get_run(run_id)
        if run.info.status != status and not is_finished(run):
            self.client.set_terminated(run_id, status=status)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]:
        """(step, timestamp ms, value) of every point of metric `key`, in logging order."""
        return [(m.step, m.timestamp, m.value) for m in self.client.get_metric_history(run_id, key)]
