"""The compose stack of docker/docker-compose.yml, built and run in a real Docker engine.

The images are built as on a host without Docker Hub (docker/build-local: a debootstrapped
Debian base, the host's CA bundle and CPU torch wheel); PostgreSQL, the MLflow server, a Ray
head and two Ray workers come up with their health checks; experiments/smoke.yaml is launched
inside the head as docker/README.md says. While it runs, the MLflow server is restarted and a
worker container is killed; every trial must still end FINISHED with each metric point exactly
once, read from the host over MLflow's REST API on the published 127.0.0.1 port. Then `down`
and `up` keep every run and a relaunch reruns nothing; `down -v` leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_parts import ROOT, MlflowApi, Service, eval_steps, tags, tail, wait_until
from docker_parts import LAUNCH, Compose, build_images, docker, engine_or_skip

from dsrl_platform import names
from dsrl_platform.spec import load_trials

SMOKE = ROOT / "experiments" / "smoke.yaml"
EPISODE = 200  # Pendulum-v1's time limit: a training episode return every 200 steps
# Processes of a Ray node that are not task or actor workers (see cluster_parts).
TRAINING = ("import os\nfor p in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try: c = open(f'/proc/{p}/cmdline').read().split(chr(0))[0]\n"
            "    except OSError: continue\n"
            "    if c.startswith('ray::') and not c.startswith(('ray::IDLE', 'ray::Dashboard', 'ray::RuntimeEnv')):\n"
            "        print(p, c)\n")

pytestmark = pytest.mark.docker
COMPOSE = engine_or_skip()  # or the whole module is skipped, with one line


@pytest.fixture(scope="module")
def compose_command() -> list[str]:
    print(f"images built in {build_images():.0f} s")
    return COMPOSE


@pytest.fixture
def compose(compose_command: list[str], tmp_path: Path) -> Iterator[Compose]:
    project = Compose(compose_command, tmp_path)
    try:
        yield project
    finally:
        project.down("-v")  # also after a failure; a no-op after the test's own `down -v`


@pytest.mark.timeout(1200)  # the first test of the module also builds the images (4-8 min)
def test_placeholder_and_short_secrets_are_refused_before_anything_starts(compose_command: list[str],
                                                                           tmp_path: Path):
    for value, why in [("change-me-openssl-rand-hex-24", "is the example's placeholder"),
                       ("0123456789abcdef", "is shorter than 24 characters"),
                       ("p@ss/word:0123456789abcdefghij", "has characters a database URL would need escaped")]:
        stack = Compose(compose_command, tmp_path, POSTGRES_PASSWORD=value)
        try:
            up = stack.run("up", "-d", "--no-build", check=False)
            assert up.returncode != 0, up.stdout + up.stderr
            logs = stack.run("logs", "--no-color", "check-secrets").stdout
            refusal = [line.split("|", 1)[-1].strip() for line in logs.splitlines() if "refusing" in line]
            assert refusal == [f"refusing to start: POSTGRES_PASSWORD in docker/.env {why}; "
                               f"set it to the output of openssl rand -hex 24"], logs
            assert stack.services_created() == {"check-secrets"}, "something started with a weak secret"
        finally:
            stack.down("-v")


@pytest.mark.timeout(900)
def test_stack_survives_a_worker_kill_and_an_mlflow_restart_and_keeps_runs_over_down_up(compose: Compose,
                                                                                        tmp_path: Path):
    spec, trials = load_trials(SMOKE)
    mlflow = MlflowApi(f"http://127.0.0.1:{compose.mlflow_port}")
    t0 = time.monotonic()

    def phase(what: str) -> None:  # shown with -s, or with a failure
        print(f"[{time.monotonic() - t0:5.0f} s] {what}", flush=True)

    def up() -> None:
        compose.run("up", "-d", "--no-build", "--scale", "ray-worker=2", timeout=600)
        for service in ("postgres", "mlflow", "ray-head"):  # up waited for these to be healthy
            assert compose.health(service) == ["healthy"], service
        compose.wait_for_ray_nodes(3)
        assert mlflow.healthy(), "MLflow is not reachable on its published 127.0.0.1 port"

    def launch(log: Path) -> Service:
        return Service("launch", compose.argv("exec", "-T", "ray-head", *LAUNCH), log, env=compose.os_env).start()

    def trial_runs() -> list[dict]:
        return [r for r in mlflow.runs(spec.name) if tags(r).get(names.TAG_ROLE) == names.ROLE_TRIAL]

    def step(run: dict) -> int:
        return int(next((m["step"] for m in run["data"].get("metrics", []) if m["key"] == names.EVAL_RETURN), -1))

    up()
    phase("stack up and healthy, 3 Ray nodes")
    first = launch(tmp_path / "launch.log")
    try:
        # Both workers train a trial that has checkpointed past its first evaluation.
        def busy() -> bool:
            running = [r for r in trial_runs() if r["info"]["status"] == "RUNNING"]
            return len(running) == 2 and all(0 < step(r) < spec_steps(r) for r in running)

        def spec_steps(run: dict) -> int:
            return next(t.config.steps for t in trials if t.run_key == tags(run)[names.TAG_RUN_KEY])

        wait_until(busy, 300, "two trials training on the two workers", first, interval=0.5)
        training = [c for c in compose.containers("ray-worker")
                    if docker("exec", c, "python", "-c", TRAINING, check=False).strip()]
        assert training, "no worker container runs a trial process"
        docker("kill", training[0])
        phase("killed a worker container")
        # The tracking server goes away and comes back while the trials train on.
        compose.run("restart", "-t", "10", "mlflow")
        wait_until(mlflow.healthy, 120, "MLflow to answer again after its restart", first)
        phase("MLflow restarted")
        assert first.alive, f"the grid ended during the MLflow restart: lengthen it\n{tail(first.log)}"
        first.proc.wait(timeout=600)
    finally:
        first.stop()
    phase("grid finished")
    log = tail(first.log, 8000)
    assert first.proc.returncode == 0, log
    assert "retrying from its last checkpoint" in log, log

    runs = trial_runs()
    assert sorted(tags(r)[names.TAG_RUN_KEY] for r in runs) == sorted(t.run_key for t in trials)
    retried = []
    for t in trials:
        run = next(r for r in runs if tags(r)[names.TAG_RUN_KEY] == t.run_key)
        run_tags, cfg = tags(run), t.resolved
        assert run["info"]["status"] == "FINISHED", (t.name, run["info"])
        assert run_tags[names.TAG_STATUS] == names.STATUS_FINISHED, t.name
        evals = eval_steps(cfg.steps, cfg.eval_every)
        expected = {  # every point exactly once: a lost one is missing, a repeated one shows twice
            names.EVAL_RETURN: evals, names.EVAL_RETURN_STD: evals, names.TRAIN_FLOPS: evals,
            names.PARAMS_TOTAL: evals, names.STEPS_PER_S: evals[1:],
            names.TRAIN_EPISODE_RETURN: list(range(EPISODE, cfg.steps + 1, EPISODE)),
            names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN: [cfg.steps],
        }
        got = {key: [s for s, _ in mlflow.history(run["info"]["run_id"], key)] for key in expected}
        assert got == expected, (t.name, json.dumps({k: v for k, v in got.items() if v != expected[k]}))
        if int(run_tags[names.TAG_ATTEMPTS]) >= 2:
            assert names.TAG_RESUMED_FROM in run_tags, (t.name, run_tags)
            retried.append(t.name)
    assert retried, f"no trial was retried after the worker was killed:\n{log}"

    # The containers go, the volumes stay: the runs are still there and nothing reruns.
    before = {r["info"]["run_id"]: tags(r)[names.TAG_ATTEMPTS] for r in runs}
    compose.down()
    phase("down")
    assert not compose.leftovers()["containers"]
    assert any(v.endswith("_pgdata") for v in compose.leftovers()["volumes"])
    up()
    phase("up again")
    again = launch(tmp_path / "relaunch.log")
    try:
        again.proc.wait(timeout=300)
    finally:
        again.stop()
    assert again.proc.returncode == 0, tail(again.log)
    phase("relaunched")
    after = {r["info"]["run_id"]: tags(r)[names.TAG_ATTEMPTS] for r in trial_runs()}
    assert after == before, f"the relaunch reran something: {before} -> {after}\n{tail(again.log)}"
    assert all(r["info"]["status"] == "FINISHED" for r in trial_runs())

    compose.down("-v")
    phase("down -v")
    assert compose.leftovers() == {"containers": [], "networks": [], "volumes": []}
