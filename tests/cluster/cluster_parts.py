"""The cluster of docker/docker-compose.yml, without Docker: real PostgreSQL, a real `mlflow
server` backed by it, and a Ray head with worker nodes started by `ray start`.

PostgreSQL and MLflow listen on 127.0.0.1, every port is chosen at run time, and all state
lives in private temporary directories. Each process is started in a session of its own and
stopped at teardown by the PIDs of that session and its descendants, so nothing else on the
machine is touched (never `ray stop`, never a kill by name). Ray cannot be held to the loopback
interface (it replaces 127.0.0.1 by the host's address and listens on every interface), so it
runs with token authentication, as in the compose file: the token keeps strangers out.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dsrl_platform import names

BIN = Path(sys.executable).parent  # mlflow, ray and dsrl-platform of this environment
ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, service: Service | None = None, interval: float = 0.5):
    """`predicate()`'s first truthy value, polled for `timeout` s; fails early if `service` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if service is not None and not service.alive:
            raise RuntimeError(f"{service.name} exited while waiting for {what}:\n{tail(service.log)}")
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --- processes ---------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, session id, start time) of a live process; None if it is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[3]), int(fields[19]))


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Service:
    """A process started in a new session; `stop` ends it and everything it started."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 user: str | None = None, cwd: Path | None = None):
        self.name, self.argv, self.log, self.env, self.user, self.cwd = name, argv, log, env, user, cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, user=self.user,
                                         cwd=self.cwd, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def processes(self) -> dict[int, int]:
        """PID -> start time of every live process of this service: its session and descendants."""
        if self.proc is None:
            return {}
        table = {pid: st for pid in _all_pids() if (st := _stat(pid)) is not None}
        ours = {pid for pid, (_, sid, _) in table.items() if sid == self.pid}
        frontier = set(ours) | {self.pid}
        while frontier:  # descendants that started sessions of their own
            frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier and pid not in ours}
            ours |= frontier
        return {pid: table[pid][2] for pid in ours if pid in table}

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """`sig` to every process of the service, SIGKILL to what is left after `grace` s."""
        if self.proc is None:
            return
        known = self.processes()  # kept: children whose parent exits leave the descendant tree
        self._signal(known, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the leader
            known = self._live({**known, **self.processes()})
            if not known:
                break
            time.sleep(0.2)
        self._signal({**known, **self.processes()}, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL to the whole service at once: a crash, not a shutdown."""
        self.stop(signal.SIGKILL, grace=5.0)

    @staticmethod
    def _live(processes: dict[int, int]) -> dict[int, int]:
        """The ones still running (the same process: a PID may be reused, its start time not)."""
        return {pid: started for pid, started in processes.items() if (st := _stat(pid)) and st[2] == started}

    @classmethod
    def _signal(cls, processes: dict[int, int], sig: int) -> None:
        for pid in cls._live(processes):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


# --- PostgreSQL ----------------------------------------------------------------------------------
def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory (apt-get install postgresql)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class Postgres:
    """A private PostgreSQL cluster on 127.0.0.1 (trust authentication, user `mlflow`)."""

    USER = "mlflow"

    def __init__(self, bin_dir: Path, root: Path):
        self.bin, self.root, self.port = bin_dir, root, free_port()
        # PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user.
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.data = root / "data"
        self.service = Service("postgres", [
            str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(root),
            "-c", f"listen_addresses={HOST}", "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=60",
        ], root / "postgres.log", user=self.run_as)

    def start(self) -> Postgres:
        if self.run_as:
            shutil.chown(self.root, self.run_as, self.run_as)
        init = subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.USER, "--auth=trust",
                               "--no-locale", "-E", "UTF8", "--no-sync"],
                              user=self.run_as, capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, f"initdb failed: {init.stdout}{init.stderr}"
        self.service.start()
        wait_until(self._ready, 60, "PostgreSQL to accept connections", self.service)
        return self

    def _ready(self) -> bool:
        probe = [str(self.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-U", self.USER]
        return subprocess.run(probe, timeout=10).returncode == 0

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URI for MLflow."""
        made = subprocess.run([str(self.bin / "createdb"), "-h", HOST, "-p", str(self.port), "-U", self.USER, name],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, f"createdb {name} failed: {made.stderr}"
        return f"postgresql+psycopg2://{self.USER}@{HOST}:{self.port}/{name}"

    def stop(self) -> None:
        self.service.stop(signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown


# --- MLflow server ---------------------------------------------------------------------------------
class MlflowApi:
    """MLflow's REST API at `url` (an MLflow server on 127.0.0.1)."""

    def __init__(self, url: str):
        self.url = url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, body: dict | None = None, **query) -> dict:
        """One call of MLflow's REST API: POST `body` if given, else GET with `query`."""
        url = f"{self.url}/api/2.0/mlflow/{path}"
        if body is None:
            req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(query, doseq=True)}")
        else:
            req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def runs(self, experiment_name: str) -> list[dict]:
        """Every run of an experiment, as the REST API returns them (info + data); [] before it exists."""
        try:
            exp = self.api("experiments/get-by-name", experiment_name=experiment_name)["experiment"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise
        runs, token = [], None
        while True:
            page = self.api("runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000,
                                            **({"page_token": token} if token else {})})
            runs += page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return runs

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every point of a metric, in step order."""
        points, token = [], None
        while True:
            page = self.api("metrics/get-history", run_id=run_id, metric_key=key, max_results=25000,
                            **({"page_token": token} if token else {}))
            points += [(int(m["step"]), float(m["value"])) for m in page.get("metrics", [])]
            token = page.get("next_page_token")
            if not token:
                return sorted(points)


class MlflowServer(MlflowApi):
    """`mlflow server` on PostgreSQL with served artifacts; can be stopped and started again."""

    def __init__(self, backend_uri: str, root: Path, port: int | None = None):
        self.backend_uri, self.port = backend_uri, port or free_port()
        super().__init__(f"http://{HOST}:{self.port}")
        (root / "artifacts").mkdir(parents=True, exist_ok=True)
        self.service = Service("mlflow", [
            str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri,
            "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
            "--host", HOST, "--port", str(self.port), "--workers", "1",
        ], root / "mlflow-server.log")

    def start(self, timeout: float = 120) -> MlflowServer:
        self.service.start()
        wait_until(self.healthy, timeout, f"the MLflow server at {self.url}", self.service)
        return self

    def stop(self) -> None:
        self.service.stop(signal.SIGTERM, grace=5.0)


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def trial_run(server: MlflowApi, experiment: str, trial: str) -> dict | None:
    """The MLflow run of a trial (by its name), or None before it has one."""
    for run in server.runs(experiment):
        if run["info"]["run_name"] == trial and tags(run).get(names.TAG_ROLE) == names.ROLE_TRIAL:
            return run
    return None


def eval_steps(steps: int, every: int) -> list[int]:
    """Where the trainer evaluates: step 0, every `every` steps, and at the end of the budget."""
    return sorted({*range(0, steps + 1, every), steps})


# --- Ray ---------------------------------------------------------------------------------------
# Processes of a Ray node that are not task or actor workers.
_RAY_SYSTEM_TITLES = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent")


@dataclass
class RayNode:
    name: str
    service: Service

    def worker_processes(self) -> dict[int, str]:
        """PID -> title of the processes running tasks or actors on this node (e.g. Tune trials)."""
        out = {}
        for pid in self.service.processes():
            title = cmdline(pid)
            if title.startswith("ray::") and not title.startswith(_RAY_SYSTEM_TITLES):
                out[pid] = title
        return out


class RayCluster:
    """A head node and worker nodes on this host, one CPU each, each with `ray start --block`."""

    def __init__(self, root: Path, cpus_per_node: int = 1):
        self.root, self.cpus = root, cpus_per_node
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.nodes: list[RayNode] = []
        self.env = {
            **os.environ,
            # Token authentication, as in the compose file; every driver needs the same two.
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            # Notice a dead node in ~3 s instead of ~15 s (Ray's defaults are for real networks).
            "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
        }
        self.env.pop("RAY_ADDRESS", None)

    def _node_args(self, temp_dir: Path) -> list[str]:
        # Every port of its own: several nodes share this host (Ray's defaults would collide).
        ports = {f"--{name}": free_port() for name in (
            "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port")}
        return [f"--num-cpus={self.cpus}", "--num-gpus=0",
                f"--temp-dir={temp_dir}", f"--object-store-memory={100 * 1024 ** 2}",
                "--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats", "--block",
                *(f"{flag}={port}" for flag, port in ports.items())]

    def add_node(self) -> RayNode:
        head = not self.nodes
        name = "head" if head else f"worker{len(self.nodes)}"
        temp_dir = self.root / name  # short: Ray's socket paths must fit in 107 characters
        temp_dir.mkdir()
        if head:
            role = ["--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--dashboard-port={free_port()}"]
        else:
            role = [f"--address={self.address}"]
        service = Service(f"ray-{name}", [str(BIN / "ray"), "start", *role, *self._node_args(temp_dir)],
                          self.root / f"{name}.log", env=self.env).start()
        node = RayNode(name, service)
        self.nodes.append(node)
        wait_until(lambda: "Ray runtime started" in tail(service.log, 100_000), 90,
                   f"Ray node {name} to start", service)
        return node

    @property
    def workers(self) -> list[RayNode]:
        return self.nodes[1:]

    def driver(self, code: str, timeout: float = 120) -> str:
        """Run `code` in a Python driver connected to the cluster (`ray` imported); its stdout."""
        script = f"import ray\nray.init(address={self.address!r}, logging_level='ERROR')\n{code}\nray.shutdown()\n"
        done = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)
        assert done.returncode == 0, f"driver failed:\n{done.stdout}\n{done.stderr[-3000:]}"
        return done.stdout

    def wait_for_nodes(self, count: int, timeout: float = 60) -> None:
        self.driver(f"import time\nt = time.monotonic() + {timeout}\n"
                    f"while sum(n['Alive'] for n in ray.nodes()) != {count} and time.monotonic() < t:\n"
                    f"    time.sleep(0.5)\n"
                    f"alive = sum(n['Alive'] for n in ray.nodes())\n"
                    f"assert alive == {count}, f'{{alive}} nodes alive, expected {count}'", timeout + 60)

    def stop(self) -> None:
        for node in reversed(self.nodes):  # a crash of each node; the data that matters is elsewhere
            node.service.kill()
