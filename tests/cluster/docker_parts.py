"""docker/docker-compose.yml run for real: a Docker engine, the images, one compose project.

Every project gets a unique name (`dsrl-test-<hex>`), its own .env with fresh secrets and ports
chosen at run time on 127.0.0.1, and is removed with `down -v` at the end; containers are
looked up and killed by id, by the project's labels. Nothing else in the engine is touched.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_parts import ROOT, free_port

DOCKER = ROOT / "docker"
# Tags of this checkout's own: another checkout's tests may build theirs in the same engine.
_CHECKOUT = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
IMAGE, POSTGRES_IMAGE = f"dsrl-platform:test-{_CHECKOUT}", f"dsrl-postgres:test-{_CHECKOUT}"
# How the README launches a grid, from the head node.
LAUNCH = ["dsrl-platform", "launch", "experiments/smoke.yaml", "--address", "auto",
          "--tracking-uri", "http://mlflow:5000", "--storage", "/shared/ray_results", "--progress-every", "10"]


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def engine_or_skip() -> list[str]:
    """The compose command (`docker compose`, or docker-compose 1.29) of a reachable engine;
    otherwise the calling test module is skipped, with one line."""
    where = os.environ.get("DOCKER_HOST", "the default socket")
    if shutil.which("docker") is None:
        pytest.skip("docker: no docker CLI (.ci/run installs docker.io and starts a private engine as root)",
                    allow_module_level=True)
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           timeout=30)
    if probe.returncode != 0 or not probe.stdout.strip():
        why = (probe.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"docker: no Docker engine at {where}: {why} (.ci/run starts one as root)", allow_module_level=True)
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("docker: neither `docker compose` nor docker-compose is installed", allow_module_level=True)


def build_images() -> float:
    """Both images as a host without Docker Hub builds them (docker/build-local); seconds taken."""
    start = time.monotonic()
    env = {**os.environ, "DSRL_IMAGE": IMAGE, "POSTGRES_IMAGE": POSTGRES_IMAGE, "PYTHON": sys.executable}
    done = subprocess.run([str(DOCKER / "build-local")], env=env, capture_output=True, text=True, timeout=1000)
    assert done.returncode == 0, f"docker/build-local failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    print(done.stdout, end="")
    return time.monotonic() - start


class Compose:
    """One compose project of docker/docker-compose.yml with its own .env."""

    def __init__(self, command: list[str], root: Path, **settings: str):
        self.command, self.project = command, f"dsrl-test-{secrets.token_hex(4)}"
        self.mlflow_port = free_port()
        self.env_file = root / ".env"
        values = {
            "POSTGRES_PASSWORD": secrets.token_hex(24), "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "DSRL_IMAGE": IMAGE, "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "MLFLOW_PORT": str(self.mlflow_port), "RAY_DASHBOARD_PORT": str(free_port()),
            "RAY_WORKER_CPUS": "1",  # two workers on a 2-core machine
            "RAY_SHM_SIZE": "512mb",
            **settings,
        }
        lines = [line for line in (DOCKER / ".env.example").read_text().splitlines()
                 if line.split("=", 1)[0] not in values and not line.startswith("COMPOSE_PROJECT_NAME")]
        self.env_file.write_text("\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n")
        # The .env decides, not whatever the calling shell has set.
        self.os_env = {k: v for k, v in os.environ.items() if k not in values}

    def argv(self, *args: str) -> list[str]:
        return [*self.command, "--env-file", str(self.env_file), "-p", self.project,
                "-f", str(DOCKER / "docker-compose.yml"), *args]

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self.argv(*args), env=self.os_env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
        return done

    def containers(self, service: str | None = None, every: bool = False) -> list[str]:
        """Ids of the project's containers (running ones unless `every`), by its labels."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return docker("ps", "-q", "--no-trunc", *(["-a"] if every else []), *filters).split()

    def health(self, service: str) -> list[str]:
        return [docker("inspect", "-f", "{{.State.Health.Status}}", c).strip() for c in self.containers(service)]

    def services_created(self) -> set[str]:
        return {docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', c).strip()
                for c in self.containers(every=True)}

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of this project still in the engine."""
        label = f"label=com.docker.compose.project={self.project}"
        named = [v for v in docker("volume", "ls", "-q").split() if v.startswith(f"{self.project}_")]
        return {"containers": self.containers(every=True),
                "networks": docker("network", "ls", "-q", "--filter", label).split(),
                "volumes": sorted(set(docker("volume", "ls", "-q", "--filter", label).split()) | set(named))}

    def head(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command in the Ray head's container."""
        return self.run("exec", "-T", "ray-head", *argv, timeout=timeout, check=False)

    def wait_for_ray_nodes(self, count: int, timeout: float = 120) -> None:
        code = (f"import ray, time\nray.init(address='auto', logging_level='ERROR')\nt = time.monotonic() + {timeout}\n"
                f"while sum(n['Alive'] for n in ray.nodes()) != {count} and time.monotonic() < t:\n"
                f"    time.sleep(1)\nprint(sum(n['Alive'] for n in ray.nodes()))\n")
        done = self.head("python", "-c", code, timeout=timeout + 60)
        assert done.returncode == 0 and done.stdout.split()[-1:] == [str(count)], \
            f"expected {count} Ray nodes alive:\n{done.stdout}\n{done.stderr[-3000:]}"

    def down(self, *args: str) -> None:
        self.run("down", "--remove-orphans", "-t", "20", *args, timeout=300)
