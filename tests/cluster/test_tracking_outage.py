"""The MLflow server goes away in the middle of a trial and comes back.

One trial is launched with `dsrl-platform launch` against an MLflow server on PostgreSQL; once
its first points are in MLflow the server is stopped, the trial must keep training (Tune keeps
receiving its evaluations), the server is started again on the same port and database, and in
the end every metric point of the run is in MLflow exactly once and the run is finished.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from cluster_parts import BIN, MlflowServer, Service, eval_steps, tags, tail, trial_run, wait_until

from dsrl_platform import names
from dsrl_platform.spec import load_trials

# One TD3 run on Pendulum (episodes of 200 steps), long enough (~70 s on one core) for the
# server to be stopped and started again (~15 s) while it trains, evaluated often so that the outage
# spans several evaluations and checkpoints.
SPEC = {
    "name": "outage",
    "description": "one trial; the tracking server is stopped and restarted while it trains",
    "grid": {"algo": "td3", "method": "dense", "env": "Pendulum-v1", "seed": [3], "steps": 30000},
    "options": {"warmup_steps": 500, "eval_every": 500, "eval_episodes": 1, "final_evals": 2,
                "hidden_sizes": [32, 32], "batch_size": 32, "buffer_size": 30000},
    "resources": {"cpus_per_trial": 1, "max_failures": 0},
}
EPISODE = 200  # Pendulum-v1's time limit: a training episode return every 200 steps


def evaluations_reported(storage: Path) -> int:
    """Evaluations the trial reported to Tune so far (its result.json in the Tune storage)."""
    return sum(len(f.read_text().splitlines()) for f in storage.glob("*/*/result.json"))


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_metrics_survive_a_tracking_server_outage(mlflow_server: MlflowServer, tmp_path: Path):
    spec_file = tmp_path / "outage.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    spec, (trial,) = load_trials(spec_file)
    storage = tmp_path / "ray_results"
    ray_tmp = Path(tempfile.mkdtemp(prefix="dsrl-ray-"))  # the launch's own local Ray lives here
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    launch = Service("launch", [
        str(BIN / "dsrl-platform"), "launch", str(spec_file), "--tracking-uri", mlflow_server.url,
        "--storage", str(storage), "--num-cpus", "1", "--progress-every", "10",
    ], tmp_path / "launch.log", env=env, cwd=tmp_path).start()
    try:
        def delivered() -> int:
            run = trial_run(mlflow_server, spec.name, trial.name)
            return len(mlflow_server.history(run["info"]["run_id"], names.EVAL_RETURN)) if run else 0

        wait_until(lambda: delivered() >= 2, 150, "the trial's first evaluations in MLflow", launch)
        mlflow_server.stop()
        assert not mlflow_server.healthy()
        at_stop = evaluations_reported(storage)
        # Training goes on without the server: three more evaluations reach Tune.
        wait_until(lambda: evaluations_reported(storage) >= at_stop + 3, 120,
                   "evaluations while the tracking server is down", launch)
        mlflow_server.start()
        # Back while the trial still trains: what was buffered goes out with the next flushes.
        reported, total = evaluations_reported(storage), len(eval_steps(trial.config.steps, trial.resolved.eval_every))
        assert reported < total, f"the trial ended during the outage ({reported}/{total}): lengthen it"
        launch.proc.wait(timeout=180)
    finally:
        launch.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = tail(launch.log, 8000)
    assert launch.proc.returncode == 0, log

    run = trial_run(mlflow_server, spec.name, trial.name)
    assert run["info"]["status"] == "FINISHED", run["info"]
    assert tags(run)[names.TAG_STATUS] == names.STATUS_FINISHED
    run_id, cfg = run["info"]["run_id"], trial.resolved
    evals = eval_steps(cfg.steps, cfg.eval_every)
    # Every point exactly once: sorted steps equal to the expected list (a duplicate shows twice).
    expected = {
        names.EVAL_RETURN: evals,
        names.EVAL_RETURN_STD: evals,
        names.TRAIN_FLOPS: evals,
        names.PARAMS_TOTAL: evals,
        names.STEPS_PER_S: evals[1:],  # a rate needs an interval: none at step 0
        names.TRAIN_EPISODE_RETURN: list(range(EPISODE, cfg.steps + 1, EPISODE)),
        names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN: [cfg.steps],
    }
    got = {key: [step for step, _ in mlflow_server.history(run_id, key)] for key in expected}
    assert got == expected, json.dumps({k: v for k, v in got.items() if v != expected[k]})
    # The run's latest values agree with its histories (the server stored what it was sent).
    latest = {m["key"]: m for m in run["data"]["metrics"]}
    assert int(latest[names.EVAL_RETURN]["step"]) == cfg.steps
