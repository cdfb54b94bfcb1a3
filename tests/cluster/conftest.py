"""Fixtures of the cluster tests: a real PostgreSQL, an MLflow server on it, a Ray cluster.

The parts themselves, and the rules they keep (127.0.0.1, ports chosen at run time, every
process stopped by PID), are in cluster_parts.py.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_parts import MlflowServer, Postgres, RayCluster, postgres_bin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: real PostgreSQL + MLflow server + multi-node Ray cluster (minutes; "
                   "needs the Debian postgresql package)")
    config.addinivalue_line(
        "markers", "docker: builds the images and runs docker/docker-compose.yml in a Docker engine "
                   "(~10 min; .ci/run starts a private engine as root)")


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg2", reason="MLflow's PostgreSQL driver (pip install psycopg2-binary)")
    # Not pytest's tmp_path: the `postgres` user must be able to reach it when we are root.
    root = Path(tempfile.mkdtemp(prefix="dsrl-pg-"))
    db = Postgres(bin_dir, root)
    try:
        yield db.start()
    finally:
        db.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres: Postgres, tmp_path: Path) -> Iterator[MlflowServer]:
    """A fresh database and an MLflow server on it, for one test."""
    uri = postgres.create_database(f"mlflow_{secrets.token_hex(4)}")
    server = MlflowServer(uri, tmp_path / "mlflow")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    """A head and two worker nodes, one CPU each."""
    root = Path(tempfile.mkdtemp(prefix="dsrl-ray-"))  # short path: Ray's Unix sockets live in it
    cluster = RayCluster(root)
    try:
        for _ in range(3):
            cluster.add_node()
        cluster.wait_for_nodes(3)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
