"""MLflow tracking on a real SQLite store (and a real MLflow server for outages)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_servers import free_port
from mlflow import MlflowClient

from dsrl_platform import names, progress
from dsrl_platform.cli import main
from dsrl_platform.spec import grid_record, load_trials
from dsrl_platform.tracking import MlflowSink, Tracker, TrackingUnavailable, is_transient, with_retries
from dsrl_platform.tracking.liveness import TAG_DRIVER, TAG_HEARTBEAT, Heartbeat
from dsrl_platform.tracking.status import experiment_progress

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def tracker(store) -> Tracker:
    return Tracker.connect(store)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def open_smoke_launch(tracker: Tracker):
    spec, trials = load_trials(SMOKE)
    exp = tracker.experiment_id(spec.name)
    parent, created = tracker.open_launch(exp, "k" * 16, "launch-test", len(trials), SMOKE, grid_record(trials))
    return spec, trials, exp, parent, created


def open_run(tracker, exp, parent, trial, fresh=True):
    return tracker.open_trial(exp, parent, trial.run_key, trial.name, trial.tags(),
                              trial.resolved.model_dump(mode="json"), fresh=fresh)


# --- layout -------------------------------------------------------------------------------------
def test_launch_run_is_created_once_with_its_artifacts(tracker, tmp_path):
    spec, trials, exp, parent, created = open_smoke_launch(tracker)
    assert created
    again, created_again = tracker.open_launch(exp, "k" * 16, "launch-test", len(trials), SMOKE, [])
    assert (again, created_again) == (parent, False)
    run = tracker.client.get_run(parent)
    assert run.data.tags[names.TAG_ROLE] == names.ROLE_LAUNCH
    assert run.data.tags[names.TAG_TRIALS] == "4"
    arts = {a.path for a in tracker.client.list_artifacts(parent)}
    assert arts == {names.ARTIFACT_GRID, names.ARTIFACT_SPEC_DIR}
    grid = tracker.launch_grid(parent)
    assert [row["run_key"] for row in grid] == [t.run_key for t in trials]
    # SQLite stores keep artifacts beside the database, whatever the working directory.
    assert tracker.client.get_experiment(exp).artifact_location.startswith((tmp_path / "mlartifacts").as_uri())


def test_trial_run_is_found_by_run_key_and_finished_once(tracker):
    _, trials, exp, parent, _ = open_smoke_launch(tracker)
    t = trials[1]
    run_id, finished = open_run(tracker, exp, parent, t)
    assert not finished
    run = tracker.client.get_run(run_id)
    tags = run.data.tags
    assert tags[names.TAG_ROLE] == names.ROLE_TRIAL and tags[names.TAG_PARENT] == parent
    assert (tags[names.TAG_ALGO], tags[names.TAG_METHOD], tags[names.TAG_ENV], tags[names.TAG_SEED]) == \
        ("td3", "ds", "Pendulum-v1", "0")
    assert tags[names.TAG_BUDGET] == "3000" and tags[names.TAG_RUN_KEY] == t.run_key
    assert tags[names.TAG_ATTEMPTS] == "1" and run.info.status == "RUNNING"
    params = run.data.params
    assert params["batch_size"] == "32" and params["hidden_sizes"] == "[32, 32]"
    assert params["tau"] == "0.005" and params["distribution"] == "erk" and len(params) == len(type(t.resolved).model_fields)
    # A retry (it has a checkpoint) continues the same run.
    tracker.end_trial(run_id, "FAILED")
    again, _ = open_run(tracker, exp, parent, t, fresh=False)
    assert again == run_id
    run = tracker.client.get_run(run_id)
    assert run.data.tags[names.TAG_ATTEMPTS] == "2" and run.info.status == "RUNNING"
    tracker.finish_trial(run_id)
    assert tracker.finished_keys(exp) == {t.run_key}
    assert open_run(tracker, exp, parent, t) == (run_id, True)
    finished = tracker.client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags[names.TAG_STATUS] == names.STATUS_FINISHED
    tracker.end_trial(run_id, "KILLED")  # never un-finishes a finished run
    assert tracker.client.get_run(run_id).info.status == "FINISHED"


def test_fresh_start_replaces_a_run_with_stale_metrics(tracker):
    _, trials, exp, parent, _ = open_smoke_launch(tracker)
    t = trials[0]
    old, _ = open_run(tracker, exp, parent, t)
    sink = MlflowSink(tracker, old)
    sink.log({names.EVAL_RETURN: -1.0}, 0)
    sink.close()
    # No checkpoint survived (e.g. Tune's state was deleted): the trial restarts from step 0,
    # so the old curve would be logged twice. The old run is deleted and a new one started.
    new, _ = open_run(tracker, exp, parent, t, fresh=True)
    assert new != old
    assert tracker.client.get_run(old).info.lifecycle_stage == "deleted"
    assert list(tracker.trial_runs(exp)) == [t.run_key]
    # Without metrics there is nothing to duplicate: the run is reused.
    assert open_run(tracker, exp, parent, t, fresh=True)[0] == new


# --- the sink -------------------------------------------------------------------------------------
class CountingClient:
    """The real client, with its log_batch calls recorded."""

    def __init__(self, client):
        self._client, self.batches = client, []

    def log_batch(self, run_id, metrics=(), **kw):
        self.batches.append(len(metrics))
        return self._client.log_batch(run_id, metrics=metrics, **kw)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_sink_batches_at_most_1000_and_delivers_everything(tracker):
    _, trials, exp, parent, _ = open_smoke_launch(tracker)
    run_id, _ = open_run(tracker, exp, parent, trials[0])
    tracker.client = CountingClient(tracker.client)
    sink = MlflowSink(tracker, run_id, flush_every_s=3600)
    for step in range(1250):
        sink.log({"a": step, "b": -step}, step)  # 2500 points
    assert tracker.client.batches == [1000, 1000]  # sent as soon as a batch was full
    assert sink.pending == 500
    sink.flush()
    assert tracker.client.batches == [1000, 1000, 500] and sink.pending == 0
    assert history(tracker.client, run_id, "a") == [(s, float(s)) for s in range(1250)]


def test_held_points_wait_for_a_checkpoint(tracker):
    _, trials, exp, parent, _ = open_smoke_launch(tracker)
    run_id, _ = open_run(tracker, exp, parent, trials[0])
    sink = MlflowSink(tracker, run_id, hold=True, batch=2, flush_every_s=0)
    sink.log({names.EVAL_RETURN: 1.0}, 0)
    sink.log({names.EVAL_RETURN: 2.0}, 1000)
    sink.flush()
    assert history(tracker.client, run_id, names.EVAL_RETURN) == []  # no checkpoint covers them yet
    sink.release()
    assert history(tracker.client, run_id, names.EVAL_RETURN) == [(0, 1.0), (1000, 2.0)]
    sink.log({names.EVAL_RETURN: 3.0}, 2000)  # lost if the worker dies now: the retry redoes it
    sink.flush()
    assert len(history(tracker.client, run_id, names.EVAL_RETURN)) == 2
    sink.close()  # the end of the trial delivers everything
    assert history(tracker.client, run_id, names.EVAL_RETURN)[-1] == (2000, 3.0)


def test_unreachable_store_buffers_without_stalling(monkeypatch):
    tracker = Tracker(f"http://127.0.0.1:{free_port()}")  # nobody listens there
    sink = MlflowSink(tracker, "0" * 32, flush_every_s=0, retry_s=1.5)
    start = time.monotonic()
    for step in range(3000):
        sink.log({"x": step}, step)
    assert time.monotonic() - start < 2.0  # backoff: not one failed request per log call
    assert sink.pending == 3000 and sink.last_error and "127.0.0.1" in sink.last_error
    with pytest.raises(TrackingUnavailable, match="3000 metric points .* not delivered"):
        sink.close()
    assert sink.pending == 3000  # nothing dropped


def test_transient_and_permanent_errors():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    assert is_transient(MlflowException("API request to http://x failed with exception ..."))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(MlflowException("bad", error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(KeyError("x"))
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionResetError("down")
        return "ok"

    assert with_retries(flaky, "test", budget_s=10) == "ok" and len(calls) == 2
    with pytest.raises(TrackingUnavailable, match="test: tracking store unreachable"):
        with_retries(lambda: (_ for _ in ()).throw(ConnectionResetError("down")), "test", budget_s=0.5)


def test_connect_refuses_file_stores_and_unreachable_servers(tmp_path):
    with pytest.raises(ValueError, match="file stores are not supported"):
        Tracker.connect(f"file://{tmp_path}/mlruns")
    port = free_port()
    with pytest.raises(ValueError, match=f"tracking store http://127.0.0.1:{port}: unreachable"):
        Tracker.connect(f"http://127.0.0.1:{port}")
    with pytest.raises(ValueError, match="no such file"):
        Tracker.connect(f"sqlite:///{tmp_path}/none.db", must_exist=True)
    assert not (tmp_path / "none.db").exists()


# --- status from the store ---------------------------------------------------------------------------
def test_experiment_progress_reads_the_latest_launch(tracker, store):
    spec, trials, exp, parent, _ = open_smoke_launch(tracker)
    done, running, failed = trials[0], trials[1], trials[2]
    for t, ret in ((done, -100.0), (running, -300.0), (failed, -500.0)):
        run_id, _ = open_run(tracker, exp, parent, t)
        sink = MlflowSink(tracker, run_id)
        sink.log({names.EVAL_RETURN: ret - 50, names.STEPS_PER_S: 200.0}, 0)
        sink.log({names.EVAL_RETURN: ret, names.STEPS_PER_S: 250.0}, 1000)
        sink.close()
        if t is done:
            tracker.finish_trial(run_id)
        if t is failed:
            tracker.end_trial(run_id, "FAILED")
    states, note = experiment_progress(store, spec.name)
    assert note == "launch launch-test (running)"
    by = {s.name: s for s in states}
    assert [by[t.name].status for t in trials] == ["done", "running", "failed", "pending"]
    assert by[running.name].step == 1000 and by[running.name].steps_per_s == 250.0
    assert by[failed.name].steps_per_s is None and by[trials[3].name].step == 0
    assert progress.counts(states) == {"done": 1, "running": 1, "pending": 1, "failed": 1}
    # 12000 steps in all, 3000 done + 1000 + 1000: 7000 left at 250 steps/s.
    assert progress.remaining_steps(states) == 7000
    head = progress.headline(states, 250.0)
    assert head.startswith("1/4 done · 1 running · 1 pending · 1 failed · 41.7% of steps")
    assert head.endswith("ETA 28s")
    best = progress.best_returns(states)
    assert best == {"Pendulum-v1": [("td3/dense", -100.0), ("td3/ds", -300.0), ("sac/dense", -500.0)]}
    with pytest.raises(ValueError, match=r"experiment 'nope': not found .* \(known: Default, smoke\)"):
        experiment_progress(store, "nope")


def _write_spec(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_status_names_trials_as_the_launch_does_sparsity_included(tracker, store, tmp_path, capsys):
    path = _write_spec(tmp_path, "name: levels\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, steps: 3000, "
                                 "sparsity: [0.5, 0.8]}\noptions: {warmup_steps: 1000}\n")
    spec, trials = load_trials(path)
    exp = tracker.experiment_id(spec.name)
    parent, _ = tracker.open_launch(exp, "l" * 16, "launch-levels", len(trials), path, grid_record(trials))
    for t in trials:
        open_run(tracker, exp, parent, t)
    assert main(["status", "levels", "--trials", "--tracking-uri", store]) == 0
    out = capsys.readouterr().out
    assert [t.name for t in trials] == ["td3-ds-Pendulum-v1-sp0.5-s0", "td3-ds-Pendulum-v1-sp0.8-s0"]
    for t in trials:  # two trials, two names: the launch's own
        assert f"running  {t.name} " in out, out


def _running_launch(tracker):
    spec, trials, exp, parent, _ = open_smoke_launch(tracker)
    open_run(tracker, exp, parent, trials[0])  # a trial the driver had started
    return spec, parent


def test_status_shows_a_launch_whose_driver_was_killed_as_interrupted(tracker, store):
    spec, parent = _running_launch(tracker)
    driver = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from dsrl_platform.tracking import Tracker; "
        "from dsrl_platform.tracking.liveness import Heartbeat; "
        f"hb = Heartbeat(Tracker({store!r}), {parent!r}).__enter__(); print('beating', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    assert driver.stdout.readline().strip() == "beating"
    states, note = experiment_progress(store, spec.name)
    assert note == "launch launch-test (running)" and progress.counts(states)["running"] == 1
    driver.kill()  # SIGKILL: the launch run stays RUNNING in MLflow
    driver.wait()
    states, note = experiment_progress(store, spec.name)
    assert note == (f"launch launch-test (interrupted: its driver (pid {driver.pid}) is gone; run the launch "
                    f"again to resume)")
    assert progress.counts(states) == {"done": 0, "running": 0, "pending": 4, "failed": 0}


def test_status_shows_a_launch_silent_from_another_host_as_interrupted(tracker, store):
    spec, parent = _running_launch(tracker)
    tracker.set_tags(parent, {TAG_DRIVER: "another-host 4242", TAG_HEARTBEAT: f"{time.time() - 600:.0f}"})
    states, note = experiment_progress(store, spec.name)
    assert "interrupted: no heartbeat from its driver (another-host pid 4242) for 600 s" in note
    assert progress.counts(states)["running"] == 0
    with Heartbeat(tracker, parent, every_s=0.2):  # a live driver beats
        time.sleep(0.5)
        states, note = experiment_progress(store, spec.name)
    assert note == "launch launch-test (running)" and progress.counts(states)["running"] == 1
    assert tracker.client.get_run(parent).data.tags[TAG_DRIVER].endswith(f" {os.getpid()}")


def test_progress_formatting():
    assert [progress.duration(s) for s in (None, 5, 75, 3 * 3600 + 120, 2 * 86400 + 7200)] == \
        ["?", "5s", "1m15s", "3h02m", "2d02h"]
    states = [progress.TrialState("a", "td3/ds", "Hopper-v4", "running", 500, 1000, 12.5, 10.0, 4000.0)]
    assert progress.eta_s(states, None) is None and progress.eta_s(states, 10.0) == 50.0
    assert "stalled?" in progress.trial_table(states)[0]
    # Three running trials, two with a speed so far: the third counts as their average.
    running = [progress.TrialState(str(i), "td3/ds", "Hopper-v4", "running", 0, 1000, None, v)
               for i, v in enumerate((100.0, 300.0, None))]
    assert progress.throughput(running) == 600.0
    assert progress.throughput(running[2:]) is None


# --- outage of a real tracking server (the cluster scenario) ------------------------------------------
def _descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
    return [c for child in children for c in (child, *_descendants(child))]


class Server:
    """`mlflow server` on a local port, started and crashed (SIGKILL) by the test."""

    def __init__(self, tmp_path: Path, port: int):
        self.cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                    f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art"),
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        self.uri, self.log, self.proc = f"http://127.0.0.1:{port}", tmp_path / "server.log", None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                MlflowClient(self.uri).search_experiments(max_results=1)
                return
            except Exception:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")

    def crash(self) -> None:
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_server_outage_metrics_are_buffered_and_delivered(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    server = Server(tmp_path, free_port())
    server.start()
    try:
        tracker = Tracker.connect(server.uri)
        _, trials, exp, parent, _ = open_smoke_launch(tracker)
        run_id, _ = open_run(tracker, exp, parent, trials[0])
        sink = MlflowSink(tracker, run_id, flush_every_s=0, retry_s=240)
        for step in range(0, 100):
            sink.log({names.EVAL_RETURN: step, names.TRAIN_FLOPS: 10 * step}, step)
        assert sink.pending == 0
        server.crash()
        start = time.monotonic()
        for step in range(100, 1600):  # training goes on while the server is down
            sink.log({names.EVAL_RETURN: step, names.TRAIN_FLOPS: 10 * step}, step)
        assert time.monotonic() - start < 5.0
        assert sink.pending == 3000 and sink.last_error
        server.start()
        sink.close()  # the end of the trial: retried until the server answers
        assert sink.pending == 0
        client = MlflowClient(server.uri)
        assert history(client, run_id, names.EVAL_RETURN) == [(s, float(s)) for s in range(1600)]
        assert history(client, run_id, names.TRAIN_FLOPS) == [(s, 10.0 * s) for s in range(1600)]
    finally:
        if server.proc and server.proc.poll() is None:
            server.crash()


# --- the MLflow UI ------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ui_starts_light_and_says_when_it_is_ready(tracker, store, tmp_path):
    """~15-45 s: a real `mlflow server` behind `dsrl-platform ui`."""
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from dsrl_platform.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", "ui", "--tracking-uri", store, "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"starting the MLflow UI on http://127.0.0.1:{port}"), first
        lines = iter(proc.stdout.readline, "")  # MLflow's own output comes in between
        ready = next((line for line in lines if line.startswith("MLflow UI ready")), "")
        assert ready.startswith(f"MLflow UI ready: http://127.0.0.1:{port}"), ready  # once it answers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            assert reply.status == 200
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    for pid in _descendants(proc.pid)]
        assert not [c for c in commands if "huey" in c], commands  # no job consumers
        (uvicorn,) = [c for c in commands if "uvicorn" in c]  # one server process: one worker
        assert "--workers 1" in uvicorn
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert not _descendants(proc.pid)
