"""`dsrl-platform launch` on a multi-node Ray cluster tracked by an MLflow server on PostgreSQL.

The topology of docker/docker-compose.yml without Docker (see cluster_parts.py): the smoke grid is
launched with --address/--tracking-uri/--storage, a worker node is crashed while it trains a
trial, and every trial must still end finished in MLflow with its whole evaluation curve, each
point once. The compose file itself is checked with `docker-compose config`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cluster_parts import (BIN, ROOT, MlflowServer, RayCluster, RayNode, Service, eval_steps, tags, tail, trial_run,
                           wait_until)

from dsrl_platform import names
from dsrl_platform.spec import load_trials

SMOKE = ROOT / "experiments" / "smoke.yaml"
DOCKER = ROOT / "docker"


def trials_on(node: RayNode, storage: Path) -> list[str]:
    """Trials whose training process runs on `node`, from the PID files the trainable writes."""
    pids = node.worker_processes()
    return [f.stem for f in storage.glob("*/workers/*.pid") if int(f.read_text() or 0) in pids]


@pytest.mark.cluster
@pytest.mark.timeout(360)
def test_smoke_grid_survives_a_worker_node_crash(ray_cluster: RayCluster, mlflow_server: MlflowServer,
                                                 tmp_path: Path):
    spec, trials = load_trials(SMOKE)
    storage = tmp_path / "shared" / "ray_results"  # one host: a directory every node sees
    launch = Service("launch", [
        str(BIN / "dsrl-platform"), "launch", str(SMOKE), "--address", ray_cluster.address,
        "--tracking-uri", mlflow_server.url, "--storage", str(storage), "--progress-every", "10",
    ], tmp_path / "launch.log", env=ray_cluster.env, cwd=tmp_path).start()
    try:
        def victim() -> tuple[RayNode, list[str]] | None:
            """A worker node training a trial that has checkpointed (its first points are in MLflow)."""
            for node in ray_cluster.workers:
                for name in trials_on(node, storage):
                    run = trial_run(mlflow_server, spec.name, name)
                    if run and any(m["key"] == names.EVAL_RETURN for m in run["data"].get("metrics", [])):
                        return node, trials_on(node, storage)
            return None

        node, killed = wait_until(victim, 180, "a trial training on a worker node", launch, interval=1.0)
        node.service.kill()
        assert not node.worker_processes()
        launch.proc.wait(timeout=240)
    finally:
        launch.stop()
    log = f"killed {node.name} while it trained {killed}; the launch said:\n{tail(launch.log, 8000)}"
    assert launch.proc.returncode == 0, log
    assert "retrying from its last checkpoint" in log, log

    runs = [r for r in mlflow_server.runs(spec.name) if tags(r).get(names.TAG_ROLE) == names.ROLE_TRIAL]
    assert sorted(tags(r)[names.TAG_RUN_KEY] for r in runs) == sorted(t.run_key for t in trials)
    for t in trials:
        run = next(r for r in runs if tags(r)[names.TAG_RUN_KEY] == t.run_key)
        run_tags = tags(run)
        assert run["info"]["status"] == "FINISHED", (t.name, run["info"])
        assert run_tags[names.TAG_STATUS] == names.STATUS_FINISHED
        # The whole curve, each point exactly once, also for the trial resumed on another node.
        curve = [step for step, _ in mlflow_server.history(run["info"]["run_id"], names.EVAL_RETURN)]
        assert curve == eval_steps(t.config.steps, t.resolved.eval_every), t.name
        summary = [step for step, _ in mlflow_server.history(run["info"]["run_id"],
                                                            names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN)]
        assert summary == [t.config.steps], t.name
        if t.name in killed:  # started again elsewhere, from its checkpoint
            assert int(run_tags[names.TAG_ATTEMPTS]) >= 2, (t.name, run_tags)
            assert names.TAG_RESUMED_FROM in run_tags, (t.name, run_tags)
    launch_runs = [r for r in mlflow_server.runs(spec.name) if tags(r).get(names.TAG_ROLE) == names.ROLE_LAUNCH]
    assert [r["info"]["status"] for r in launch_runs] == ["FINISHED"]


# --- the compose file -------------------------------------------------------------------------------
SECRETS = {"POSTGRES_PASSWORD": "a" * 48, "RAY_AUTH_TOKEN": "b" * 64}


def compose_config(tmp_path: Path, **values: str) -> subprocess.CompletedProcess:
    """`docker-compose config` of docker/docker-compose.yml with .env.example, `values` set, as the .env."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    env = tmp_path / ".env"
    lines = [line for line in (DOCKER / ".env.example").read_text().splitlines() if line.split("=", 1)[0] not in values]
    env.write_text("\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([exe, "--env-file", str(env), "--project-directory", str(DOCKER),
                           "-f", str(DOCKER / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60, env=clean)


def published(service: dict) -> list[tuple[str, str]]:
    """(host address, host port) of every port a service publishes, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), str(port.get("published", ""))))
        else:  # "[ip:]host:container[/proto]"; no ip means every interface
            parts = str(port).split(":")
            out.append((parts[0] if len(parts) == 3 else "", parts[-2] if len(parts) > 1 else ""))
    return out


@pytest.mark.cluster
def test_compose_file_is_valid_and_publishes_only_on_localhost(tmp_path: Path):
    done = compose_config(tmp_path, **SECRETS)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"postgres", "mlflow", "ray-head", "ray-worker"} <= set(services)
    assert not services["postgres"].get("ports"), "the database must not be published"
    for name, service in services.items():
        for host_ip, _ in published(service):
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip or 'every interface'}"
    assert {port for _, port in published(services["mlflow"])} and published(services["ray-head"])
    # Start order: each waits for what it needs to be healthy, and everyone has a health check.
    needs = {"mlflow": "postgres", "ray-head": "mlflow", "ray-worker": "ray-head"}
    for name, dependency in needs.items():
        assert services[name]["depends_on"][dependency]["condition"] == "service_healthy", name
        assert services[dependency].get("healthcheck"), dependency
    # MLflow answers requests addressed to its service name (Ray trials use http://mlflow:5000).
    command = " ".join(map(str, services["mlflow"]["command"]))
    assert "--allowed-hosts" in command and "mlflow:5000" in command
    # Tune's storage is the same volume at the same path on every Ray node.
    mounts = {name: {str(v["target"]) if isinstance(v, dict) else v.split(":")[1]
                     for v in services[name].get("volumes", [])} for name in ("ray-head", "ray-worker")}
    assert mounts["ray-head"] & mounts["ray-worker"]
    # Secrets come from the .env file; Ray requires its token. They are checked before the
    # database starts (placeholders, length: docker/check-secrets, run by tests/cluster/test_docker_stack.py).
    for name in ("ray-head", "ray-worker"):
        env = services[name]["environment"]
        assert (env["RAY_AUTH_MODE"], env["RAY_AUTH_TOKEN"]) == ("token", SECRETS["RAY_AUTH_TOKEN"]), name
    assert services["check-secrets"]["command"] == ["check-secrets"]
    assert services["postgres"]["depends_on"]["check-secrets"]["condition"] == "service_completed_successfully"


@pytest.mark.cluster
def test_a_copied_env_example_is_refused_with_one_line(tmp_path: Path):
    """The example ships no secret, so a copied one cannot start the stack with a well-known password."""
    dotenv = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    assert dotenv["POSTGRES_PASSWORD"] == dotenv["RAY_AUTH_TOKEN"] == ""
    done = compose_config(tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().endswith("set POSTGRES_PASSWORD in docker/.env (openssl rand -hex 24)"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
