"""End to end: `dsrl-platform launch` through real Ray Tune into a real SQLite MLflow store.

Each test runs the CLI in a subprocess in its own directory (its own mlflow.db and
ray_results) on a local Ray of two CPUs. Processes a test leaves behind (a SIGKILLed
driver's Ray agents) are found by a marker in their environment and killed by PID.
"""

from __future__ import annotations

import re
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dsrl_platform import names
from dsrl_platform.orchestrate import FINISHED_MARKER
from dsrl_platform.spec import load_trials

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
MAIN = "import sys; from dsrl_platform.cli import main; sys.exit(main(sys.argv[1:]))"
MARK = "DSRL_TEST_LAUNCH_MARK"
TINY = """
options: {warmup_steps: 1000, eval_every: 1000, eval_episodes: 2, final_evals: 2, hidden_sizes: [32, 32],
          batch_size: 32, buffer_size: 6000, topology_interval: 200}
"""


@dataclass
class Work:
    dir: Path
    env: dict[str, str]

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.dir / 'mlflow.db'}"

    def spec(self, text: str, name: str = "spec.yaml") -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", MAIN, *args]

    def launch_args(self, spec: Path, *extra: str) -> list[str]:
        return self.command("launch", str(spec), "--num-cpus", "2", "--progress-every", "5", *extra)

    def run(self, args: list[str], timeout: float = 400) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, args: list[str], log: str) -> subprocess.Popen:
        return subprocess.Popen(args, cwd=self.dir, env=self.env, stdout=(self.dir / log).open("w"),
                                stderr=subprocess.STDOUT)

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)


def _marked_pids(token: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"{MARK}={token}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def work(tmp_path):
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update({MARK: token, "DSRL_TRACKING_RETRY_S": "120"})
    yield Work(tmp_path, env)
    for pid in _marked_pids(token):  # only processes this test started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def checkpoints(trial_dir: Path) -> int:
    """Index of the newest checkpoint Tune kept (-1: none yet); index i is the (i+1)-th evaluation."""
    return max((int(p.name.rsplit("_", 1)[1]) for p in trial_dir.glob("checkpoint_*")), default=-1)


def trial_runs(client: MlflowClient, experiment: str) -> dict[str, object]:
    """Active trial runs by run key; fails on duplicates."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'")
    keys = [r.data.tags[names.TAG_RUN_KEY] for r in runs]
    assert len(keys) == len(set(keys)), f"duplicate runs: {sorted(keys)}"
    return {r.data.tags[names.TAG_RUN_KEY]: r for r in runs}


def launch_runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], f"tags.`{names.TAG_ROLE}` = '{names.ROLE_LAUNCH}'")


def steps_of(client: MlflowClient, run_id: str, key: str) -> list[int]:
    """Steps in logging order (timestamp, then step): one continuous curve is strictly increasing."""
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.timestamp, m.step))]


def assert_one_curve(client: MlflowClient, run_id: str, budget: int, every: int) -> None:
    evals = steps_of(client, run_id, names.EVAL_RETURN)
    assert evals == list(range(0, budget + 1, every)), evals  # every point, once, in order
    episodes = steps_of(client, run_id, names.TRAIN_EPISODE_RETURN)
    assert episodes == sorted(set(episodes)) and episodes[-1] == budget, episodes
    flops = sorted(client.get_metric_history(run_id, names.TRAIN_FLOPS), key=lambda m: m.step)
    assert [m.step for m in flops] == evals
    assert all(a.value <= b.value for a, b in zip(flops, flops[1:]))  # cumulative


# --- the smoke grid, and relaunching it -----------------------------------------------------------
def test_dqn_smoke_grid_runs_through_tune_into_mlflow(work):
    """The value-based family on the same launcher: per-network metrics (params/q), sparse RigL."""
    path = ROOT / "experiments" / "smoke_dqn.yaml"
    spec, trials = load_trials(path)
    out = work.run(work.launch_args(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "smoke-dqn: 2/2 trials finished (finished)" in out.stdout
    client = work.client()
    runs = trial_runs(client, "smoke-dqn")
    assert set(runs) == {t.run_key for t in trials}
    for t in trials:
        run = runs[t.run_key]
        assert run.info.status == "FINISHED" and run.data.params["algo"] == "dqn"
        assert steps_of(client, run.info.run_id, names.EVAL_RETURN) == [0, 1000, 2000, 3000]
        m = run.data.metrics
        assert m[names.PARAMS_TOTAL] == m[names.params_metric("q")] > 0
        assert m[names.sparsity_metric("q")] == pytest.approx(0.9 if t.config.method == "rigl" else 0.0, abs=0.01)
        assert m[names.train_flops_metric("q")] == m[names.TRAIN_FLOPS] > 0


def test_rlx2_smoke_grid_runs_through_tune_into_mlflow_and_reports(work):
    """Issue 14's options on the launcher (about 2 min on two cores): RLx2's n-step targets and
    dynamic buffer, ReDo and dormant-neuron metrics reach MLflow, and the rlx2 dashboard draws them."""
    path = ROOT / "experiments" / "smoke_rlx2.yaml"
    spec, trials = load_trials(path)
    out = work.run(work.launch_args(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "smoke-rlx2: 8/8 trials finished (finished)" in out.stdout
    client = work.client()
    runs = trial_runs(client, "smoke-rlx2")
    assert set(runs) == {t.run_key for t in trials}
    for t in trials:
        run, r = runs[t.run_key], t.resolved
        m = run.data.metrics
        assert steps_of(client, run.info.run_id, names.EVAL_RETURN) == [0, 500, 1000, 1500, 2000]
        dormant = client.get_metric_history(run.info.run_id, names.dormant_metric("critic"))
        assert sorted(p.step for p in dormant) == [1000, 1500, 2000]  # from the first update (501) on
        assert 0 <= m[names.dormant_metric("actor")] <= 1 and m[names.feature_rank_metric("critic")] >= 1
        assert any(k.startswith(names.dormant_metric("critic.q1.")) for k in m)
        assert m[names.PARAMS_TOTAL] > 0 and m[names.TRAIN_FLOPS] > 0
        assert (names.REDO_RECYCLED in m) == r.redo and (names.REPLAY_POLICY_DISTANCE in m) == r.dynamic_buffer
        if r.dynamic_buffer:  # RLx2's buffer shrank below the 2000 transitions seen
            assert run.data.params["n_step"] == "3" and 400 <= m[names.REPLAY_SIZE] < 2000
        else:
            assert m[names.REPLAY_SIZE] == 2000
    report = work.run(work.command("report", "smoke-rlx2", "--dashboard", str(ROOT / "dashboards" / "rlx2.yaml"),
                                   "--out", str(work.dir / "report"), "--tracking-uri", work.uri))
    assert report.returncode == 0, report.stdout + report.stderr
    figures = {p.stem for p in (work.dir / "report" / "figures").glob("*.png")}
    assert {"dormant_fraction_td3", "dormant_fraction_sac", "return_vs_flops_td3"} <= figures


def test_smoke_grid_runs_tags_metrics_and_idempotent_relaunch(work):
    spec, trials = load_trials(SMOKE)
    out = work.run(work.launch_args(SMOKE))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "smoke: 4/4 trials finished (finished)" in out.stdout
    assert "4/4 done · 0 running · 0 pending · 0 failed" in out.stdout  # the progress lines
    efficiency = re.search(r"CPU efficiency ([\d.]+): .*tracking took ([\d.]+)% of trial time", out.stdout)
    assert efficiency, out.stdout  # measured, not asserted fast: only that both are measured and sane
    assert 0 < float(efficiency[1]) <= 1.05 and 0 < float(efficiency[2]) < 100

    client = work.client()
    runs = trial_runs(client, "smoke")
    (parent,) = launch_runs(client, "smoke")
    assert set(runs) == {t.run_key for t in trials}
    params_total = {}
    for t in trials:
        run, c = runs[t.run_key], t.config
        tags = run.data.tags
        assert run.info.status == "FINISHED" and tags[names.TAG_STATUS] == names.STATUS_FINISHED
        assert run.info.run_name == t.name and tags[names.TAG_PARENT] == parent.info.run_id
        assert (tags[names.TAG_ALGO], tags[names.TAG_METHOD], tags[names.TAG_ENV], tags[names.TAG_SEED],
                tags[names.TAG_BUDGET]) == (c.algo, c.method, c.env, str(c.seed), str(c.steps))
        sparsity = float(tags[names.TAG_SPARSITY])
        assert sparsity == 0.0 if c.method == "dense" else 0.4 < sparsity < 0.6
        assert tags[names.TAG_ATTEMPTS] == "1" and names.TAG_RESUMED_FROM not in tags
        assert run.data.params["eval_every"] == "1000" and run.data.params["hidden_sizes"] == "[32, 32]"
        assert run.data.params["tau"] == json.dumps(t.resolved.tau)

        assert_one_curve(client, run.info.run_id, 3000, 1000)
        m = run.data.metrics
        returns = [x.value for x in sorted(client.get_metric_history(run.info.run_id, names.EVAL_RETURN),
                                           key=lambda x: x.step)]
        assert m[names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN] == pytest.approx(sum(returns[-2:]) / 2)
        assert m[names.SUMMARY_PREFIX + names.SUMMARY_LCA] == pytest.approx(sum(returns) / 3000)
        assert m[names.PARAMS_TOTAL] == m[names.PARAMS_ACTOR] + m[names.PARAMS_CRITIC] > 0
        assert 0 < m[names.TRAIN_FLOPS] <= m[names.TRAIN_FLOPS_DENSE] * 1.01 and m[names.FLOPS_PER_STEP] > 0
        assert m[names.STEPS_PER_S] > 0
        assert any(k.startswith(names.LAYER_SPARSITY_PREFIX) for k in m)
        assert (names.TOPOLOGY_CHURN in m) == (c.method == "ds")
        assert m[names.SPARSITY_TOTAL] == pytest.approx(sparsity, abs=1e-6)
        params_total[(c.algo, c.method)] = m[names.PARAMS_TOTAL]
    for algo in ("td3", "sac"):
        assert params_total[(algo, "ds")] < 0.6 * params_total[(algo, "dense")]

    # A finished trial keeps no training state: its one checkpoint is a marker (no replay buffer).
    for trial_dir in (work.dir / "ray_results").glob("smoke-*/*-Pendulum-v1-*"):
        (kept,) = trial_dir.glob("checkpoint_*")
        assert sorted(p.name for p in kept.iterdir()) == [FINISHED_MARKER]

    assert parent.info.status == "FINISHED" and parent.data.tags[names.TAG_TRIALS] == "4"
    grid = json.loads(Path(client.download_artifacts(parent.info.run_id, names.ARTIFACT_GRID, str(work.dir))).read_text())
    assert [row["run_key"] for row in grid] == [t.run_key for t in trials]
    spec_copy = client.download_artifacts(parent.info.run_id, f"{names.ARTIFACT_SPEC_DIR}/smoke.yaml", str(work.dir))
    assert Path(spec_copy).read_text() == SMOKE.read_text()

    status = work.run(work.command("status", "smoke", "--trials"), timeout=120)
    assert status.returncode == 0, status.stderr
    assert "4/4 done · 0 running · 0 pending · 0 failed · 100.0% of steps" in status.stdout
    assert "best return Pendulum-v1: " in status.stdout and status.stdout.count("done     ") == 4

    histories = {k: len(client.get_metric_history(r.info.run_id, names.EVAL_RETURN)) for k, r in runs.items()}
    again = work.run(work.launch_args(SMOKE))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 trials, 4 finished before, 0 to run" in again.stdout
    after = trial_runs(client, "smoke")
    assert {k: r.info.run_id for k, r in after.items()} == {k: r.info.run_id for k, r in runs.items()}
    assert {k: len(client.get_metric_history(r.info.run_id, names.EVAL_RETURN)) for k, r in after.items()} == histories
    assert [r.info.run_id for r in launch_runs(client, "smoke")] == [parent.info.run_id]
    exp = client.get_experiment_by_name("smoke")
    assert len(client.search_runs([exp.experiment_id])) == 5


# --- a worker SIGKILLed mid-run --------------------------------------------------------------------
@pytest.mark.parametrize("seeds", [1, 2], ids=["one-trial", "a-group-of-two"])
def test_killed_worker_resumes_from_its_checkpoint(work, seeds):
    """A SIGKILLed worker: Tune retries the trial from its checkpoint; every run continues its
    own curve (a group: both members, trained in one process, resume together)."""
    spec_path = work.spec(f"name: killed\ngrid: {{algo: td3, method: ds, env: Pendulum-v1, seed: {seeds}, steps: 6000}}\n"
                          + TINY + "resources: {max_failures: 2, group: auto}\n")
    _, trials = load_trials(spec_path)
    proc = work.start(work.launch_args(spec_path), "launch.log")
    log = work.dir / "launch.log"
    exp_dir = wait_for(lambda: next((work.dir / "ray_results").glob("killed-*"), None), 120, "the Tune experiment",
                       proc, log)
    trial_dir = wait_for(lambda: next(exp_dir.glob("td3-ds-*"), None), 120, "the trial directory", proc, log)
    # A checkpoint at step 2000 or later (the third evaluation), then kill the worker.
    wait_for(lambda: checkpoints(trial_dir) >= 2, 180, "a checkpoint at step 2000", proc, log)
    client = work.client()
    runs_before = {k: r.info.run_id for k, r in trial_runs(client, "killed").items()}
    unit = trials[0].name if seeds == 1 else trials[0].name.rsplit("-s", 1)[0] + "-s0+1"
    pid = int((exp_dir / "workers" / f"{unit}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "failed; retrying from its last checkpoint" in text and f"killed: {seeds}/{seeds} trials finished" in text

    runs = trial_runs(client, "killed")
    assert {t.run_key for t in trials} == set(runs) and len(runs) == seeds
    for t in trials:
        run = runs[t.run_key]
        assert run.info.run_id == runs_before[t.run_key]  # the retry continued its own run
        assert run.info.status == "FINISHED" and run.data.tags[names.TAG_ATTEMPTS] == "2"
        assert run.data.tags[names.TAG_GROUP] == unit and run.info.run_name == t.name
        resumed = int(run.data.tags[names.TAG_RESUMED_FROM])
        assert resumed >= 2000 and resumed % 1000 == 0  # from a checkpoint, not from step 0
        assert_one_curve(client, run.info.run_id, 6000, 1000)
    # Tune's own record: the trial failed once and was restored (iterations counted anew).
    results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert (trial_dir / "error.txt").exists()
    restarts = [r for r in results if r["iterations_since_restore"] == 1]
    assert len(restarts) == 2 and restarts[1]["training_iteration"] > 1
    assert restarts[1]["step"] == resumed + 1000


# --- the driver interrupted mid-grid -----------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "driver-killed"])
def test_interrupted_launch_resumes_on_relaunch(work, sig):
    spec_path = work.spec("name: interrupted\ngrid: {algo: td3, method: [dense, ds], env: Pendulum-v1, seed: 1, "
                          "steps: 6000}\n" + TINY + "resources: {max_concurrent: 1}\n")
    _, trials = load_trials(spec_path)
    first, second = trials
    proc = work.start(work.launch_args(spec_path), "first.log")
    log = work.dir / "first.log"
    client = work.client()
    # Interrupt when the first trial has finished and the second is under way.
    wait_for(lambda: (work.dir / "mlflow.db").exists() and first.run_key in _finished(client, "interrupted"),
             240, "the first trial to finish", proc, log)
    wait_for(lambda: any(checkpoints(d) >= 1 for d in (work.dir / "ray_results").glob("interrupted-*/td3-ds-*")),
             120, "a checkpoint of the second trial", proc, log)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=120)
    if sig == signal.SIGINT:
        assert code == 130, log.read_text()[-3000:]
        assert "run the same command again to resume" in log.read_text()
        (parent,) = launch_runs(client, "interrupted")
        assert parent.info.status == "KILLED"
        assert trial_runs(client, "interrupted")[second.run_key].info.status == "KILLED"
    else:  # the killed driver could not end its runs: its heartbeat tells status it is gone
        assert launch_runs(client, "interrupted")[0].info.status == "RUNNING"
    status = work.run(work.command("status", "interrupted", "--trials"), timeout=120)
    assert "1/2 done · 0 running · 1 pending · 0 failed" in status.stdout, status.stdout
    if sig == signal.SIGKILL:
        assert f"interrupted: its driver (pid {proc.pid}) is gone" in status.stdout.splitlines()[0], status.stdout
    assert f"done     {first.name} " in status.stdout  # under the name the launch gives it
    assert second.run_key not in _finished(client, "interrupted")

    again = work.run(work.launch_args(spec_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 trials, 1 finished before, 1 to run" in again.stdout
    assert "resuming the Tune experiment" in again.stdout
    last_progress = [line for line in again.stdout.splitlines() if " done · " in line][-1]
    assert "2/2 done · 0 running · 0 pending · 0 failed · 100.0% of steps" in last_progress, again.stdout
    runs = trial_runs(client, "interrupted")  # no duplicates
    assert set(runs) == {first.run_key, second.run_key}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    assert runs[first.run_key].data.tags[names.TAG_ATTEMPTS] == "1"  # finished trials are not rerun
    resumed = runs[second.run_key]
    assert resumed.data.tags[names.TAG_ATTEMPTS] == "2" and int(resumed.data.tags[names.TAG_RESUMED_FROM]) >= 1000
    for run in runs.values():
        assert_one_curve(client, run.info.run_id, 6000, 1000)
    (parent,) = launch_runs(client, "interrupted")
    assert parent.info.status == "FINISHED"


def _finished(client: MlflowClient, experiment: str) -> set[str]:
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception:  # the launcher is still creating the store
        return set()
    if exp is None:
        return set()
    runs = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_STATUS}` = '{names.STATUS_FINISHED}'")
    return {r.data.tags[names.TAG_RUN_KEY] for r in runs}


# --- mistakes: nothing starts, nothing is written ------------------------------------------------------
@pytest.mark.timeout(120)
def test_bad_spec_exits_2_and_creates_nothing(work):
    bad = work.spec("name: smoke\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, steps: 3000}\n"
                    "options: {warmup_steps: 1000, lamda1: 3}\n")
    out = work.run(work.launch_args(bad), timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"dsrl-platform launch: error: {bad}: options.lamda1: unknown key (did you mean lambda1 or lambda2?)"
    assert sorted(p.name for p in work.dir.iterdir()) == ["spec.yaml"]  # no mlflow.db, no ray_results
    # With an existing store: still no experiment and no run.
    existing = work.client()
    before = [e.name for e in existing.search_experiments()]
    impossible = work.spec("name: other\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, steps: 500}\n"
                           "options: {warmup_steps: 1000}\n", "impossible.yaml")
    out = work.run(work.launch_args(impossible, "--tracking-uri", work.uri), timeout=120)
    assert out.returncode == 2 and "must exceed warmup_steps" in out.stderr
    assert [e.name for e in existing.search_experiments()] == before
    # A trial bigger than the local Ray would wait forever: refused up front too.
    out = work.run(work.launch_args(SMOKE, "--tracking-uri", work.uri, "--cpus-per-trial", "3"), timeout=120)
    assert out.returncode == 2 and "resources.cpus_per_trial: a trial needs 3 CPUs" in out.stderr
    assert [e.name for e in existing.search_experiments()] == before
    assert not (work.dir / "ray_results").exists()


@pytest.mark.timeout(120)
def test_unreachable_tracking_server_exits_2_before_starting_ray(work):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = work.run(work.launch_args(SMOKE, "--tracking-uri", f"http://127.0.0.1:{port}"), timeout=120)
    assert out.returncode == 2
    assert f"tracking store http://127.0.0.1:{port}: unreachable" in out.stderr
    assert not (work.dir / "ray_results").exists()
