"""Bad input, odd addresses and faults, through the real CLI (issue 8).

Each case runs `dsrl-platform` in a subprocess in its own empty directory and asserts what a
user must see: exit code 2, one line on stderr naming the field, address or file, within
seconds, and nothing written or started: no store, no runs, no results directory, no Ray (Ray's
temporary directory is pointed into the test directory, so a started Ray would leave it).
Servers are the test's own, on 127.0.0.1 (local_servers.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from local_servers import free_port, not_mlflow_server, postgres_greeting_server, silent_server

from dsrl_platform.spec import MAX_TRIALS

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
MAIN = "import sys; from dsrl_platform.cli import main; sys.exit(main(sys.argv[1:]))"
FAST_S = 15  # every refusal ends within this (issue 8: "within ~15 s") on a machine not overloaded


def budget(seconds: float) -> float:
    """`seconds`, stretched on a machine busier than its cores (other jobs share CI machines)."""
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Work:
    dir: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 120, prefix: tuple[str, ...] = ()) -> Result:
        start = time.monotonic()
        out = subprocess.run([*prefix, sys.executable, "-c", MAIN, *args], cwd=self.dir, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        return Result(out.returncode, out.stdout, out.stderr, time.monotonic() - start)

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.dir / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        return path

    def refused(self, result: Result, *fragments: str, keep: set[str] = frozenset()) -> str:
        """Exit 2, one line naming every fragment, fast, and nothing new in the directory."""
        line = result.stderr.strip()
        assert result.code == 2, (result.code, result.stdout[-2000:], result.stderr[-2000:])
        assert "\n" not in line and line.startswith("dsrl-platform "), result.stderr
        for fragment in fragments:
            assert fragment in line, line
        assert result.seconds < budget(FAST_S), f"{result.seconds:.1f} s: {line}"
        assert {p.name for p in self.dir.iterdir()} <= set(keep), sorted(p.name for p in self.dir.iterdir())
        return line


@pytest.fixture
def work(tmp_path) -> Work:
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items()  # (in-process tests set MLflow's HTTP defaults)
           if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS") and not k.startswith("MLFLOW_HTTP_")}
    env["RAY_TMPDIR"] = str(run_dir / "ray-tmp")  # appears if anything started Ray
    return Work(run_dir, env)


# --- tracking URIs: one line naming the URI, for every command that uses the store ----------------
FORMS = {
    "two slashes": ("sqlite://rel.db", "a SQLite URI has three slashes"),
    "scheme typo": ("htp://typo:5000", "unsupported scheme 'htp' (did you mean http?)"),
    "relative file store": ("file:./mlruns", "MLflow file stores are not supported"),
    "absolute file store": ("file:///tmp/mlruns", "MLflow file stores are not supported"),
}
COMMANDS = {
    "launch": lambda: ["launch", str(SMOKE), "--num-cpus", "2"],
    "status": lambda: ["status", "smoke"],
    "report": lambda: ["report", "smoke", "--out", "r"],
    "ui": lambda: ["ui", "--port", str(free_port())],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("form", list(FORMS))
def test_unsupported_uri_forms_name_the_uri_and_the_accepted_forms(work, command, form):
    uri, problem = FORMS[form]
    line = work.refused(work.cli(*COMMANDS[command](), "--tracking-uri", uri), f"tracking store {uri}: ", problem)
    assert "accepted: sqlite:///PATH.db, http(s)://HOST:PORT" in line


@pytest.mark.parametrize("command", ["launch", "status", "report"])
def test_a_server_that_is_not_mlflow(work, command):
    with not_mlflow_server() as port:
        uri = f"http://127.0.0.1:{port}"
        work.refused(work.cli(*COMMANDS[command](), "--tracking-uri", uri),
                     f"tracking store {uri}: answers, but not as an MLflow tracking server", "404")


@pytest.mark.parametrize("command", ["launch", "status", "report"])
def test_a_server_that_never_answers_fails_within_seconds(work, command):
    with silent_server() as port:
        uri = f"http://127.0.0.1:{port}"
        work.refused(work.cli(*COMMANDS[command](), "--tracking-uri", uri),
                     f"tracking store {uri}: accepts connections but did not answer within 5 s")


@pytest.mark.parametrize("command", ["launch", "status", "report"])
def test_a_refused_port_fails_at_once(work, command):
    uri = f"http://127.0.0.1:{free_port()}"
    result = work.cli(*COMMANDS[command](), "--tracking-uri", uri)
    work.refused(result, f"tracking store {uri}: unreachable: nothing accepts connections")
    assert result.seconds < budget(8)


@pytest.mark.parametrize("command", ["launch", "status"])
def test_a_database_uri_whose_driver_is_missing(work, command):
    with postgres_greeting_server() as port:  # the address answers; the driver is what is missing
        uri = f"postgresql+pg8000://mlflow:secret@127.0.0.1:{port}/mlflow"
        line = work.refused(work.cli(*COMMANDS[command](), "--tracking-uri", uri),
                            "its database driver 'pg8000' is not installed")
        assert "secret" not in line and "mlflow:***@" in line  # the password is not printed


@pytest.mark.parametrize("command", ["launch", "report"])
def test_a_database_port_that_never_answers(work, command):
    with silent_server() as port:  # psycopg2 would wait for it forever
        uri = f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
        work.refused(work.cli(*COMMANDS[command](), "--tracking-uri", uri),
                     f"tracking store {uri}: accepts connections but did not answer as a database within 3 s")


def test_sqlite_in_a_missing_directory_is_not_created(work):
    uri = "sqlite:////nonexistent-dsrl/dir/x.db"
    work.refused(work.cli(*COMMANDS["launch"](), "--tracking-uri", uri),
                 f"tracking store {uri}: directory /nonexistent-dsrl/dir does not exist")
    work.refused(work.cli("status", "smoke", "--tracking-uri", uri), f"tracking store {uri}: no such file")
    assert not Path("/nonexistent-dsrl").exists()


# --- launch preflight: refused before the store is written or Ray started ---------------------------
def test_launch_address_without_a_cluster_fails_before_writing(work):
    port = free_port()
    work.refused(work.cli(*COMMANDS["launch"](), "--address", f"127.0.0.1:{port}"),
                 f"--address 127.0.0.1:{port}: no Ray cluster listens at 127.0.0.1:{port}")
    work.refused(work.cli(*COMMANDS["launch"](), "--address", f"ray://127.0.0.1:{port}"),
                 f"no Ray cluster listens at 127.0.0.1:{port}")
    work.refused(work.cli(*COMMANDS["launch"](), "--address", "head-without-port"),
                 "--address head-without-port: expected auto, HOST:PORT or ray://HOST:PORT")


def test_launch_more_gpus_than_the_machine_has(work):
    # 64 GPUs: more than any machine these tests run on, with or without an accelerator.
    work.refused(work.cli(*COMMANDS["launch"](), "--gpus-per-trial", "64"),
                 "resources.gpus_per_trial: a trial needs 64 GPUs but the local Ray has")
    spec = work.file("gpus.yaml", SMOKE.read_text().replace("resources:\n", "resources:\n  gpus_per_trial: 64\n"))
    assert "gpus_per_trial: 64" in spec.read_text()
    work.refused(work.cli("launch", str(spec), "--num-cpus", "2"), "a trial needs 64 GPUs", keep={"gpus.yaml"})


def test_launch_storage_that_is_a_file(work):
    work.file("results", "not a directory")
    for storage in ("results", "results/sub"):
        work.refused(work.cli(*COMMANDS["launch"](), "--storage", storage),
                     f"--storage {storage}: {work.dir / 'results'} is a file, not a directory", keep={"results"})


# --- spec files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["validate"], ["launch"], ["launch", "--dry-run"]], ids=" ".join)
def test_a_directory_as_the_spec(work, args):
    (work.dir / "experiments").mkdir()
    work.refused(work.cli(*args, "experiments"), "experiments: is a directory, not a YAML file",
                 keep={"experiments"})


def test_a_binary_spec_names_the_file_and_the_problem(work):
    path = work.file("spec.yaml", b"name: t\n\xff\xfe\x00binary")
    work.refused(work.cli("validate", str(path)), f"{path}: not a UTF-8 text file (byte 0xff at offset 8)",
                 keep={"spec.yaml"})


@pytest.mark.parametrize("text, where", [
    ("name: t\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1}\nname: other\n",
     "line 3: duplicate key 'name' (first at line 1)"),
    ("name: t\ngrid:\n  algo: td3\n  method: ds\n  steps: 3000\n  env: Pendulum-v1\n  steps: 5000\n  seed: 1\n",
     "line 7: duplicate key 'steps' (first at line 5)"),
    ("name: t\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, seed: 2}\n",
     "line 2: duplicate key 'seed' (first at line 2)"),
], ids=["name", "steps", "flow mapping"])
def test_duplicate_keys_are_refused_naming_both_lines(work, text, where):
    path = work.file("spec.yaml", text)
    for args in (["validate", str(path)], ["launch", str(path)]):
        work.refused(work.cli(*args), f"{path}: {where}", keep={"spec.yaml"})


def test_duplicate_keys_in_a_dashboard(work, store):
    dash = work.file("d.yaml", "name: x\ntitle: t\ntables: [returns]\ntitle: again\n")
    work.refused(work.cli("report", "smoke", "--dashboard", str(dash), "--out", "r", "--tracking-uri", store),
                 f"dashboard {dash}: line 4: duplicate key 'title' (first at line 2)", keep={"d.yaml"})


# --- huge grids ------------------------------------------------------------------------------------------
BIG = """name: big
grid:
  algo: [td3, sac]
  method: [dense, static, ds, set, rigl, prune]
  env: [HalfCheetah-v4, Hopper-v4]
  sparsity: [0.5, 0.8, 0.9, 0.95, 0.99]
  steps: [100000, 200000]
  seed: {seeds}
"""  # per seed: 2 algos × 2 envs × 2 budgets × (1 dense + 5 methods × 5 levels) = 208 trials


def test_a_million_trial_grid_is_refused_at_once_with_its_count(work):
    path = work.file("big.yaml", BIG.format(seeds=4808))  # 1,000,064 trials
    result = work.cli("validate", str(path))
    work.refused(result, f"{path}: grid: 1,000,064 trials exceed the limit of {MAX_TRIALS:,} per spec",
                 keep={"big.yaml"})
    assert result.seconds < budget(5)
    path = work.file("big.yaml", BIG.format(seeds=10**9))  # refused before a list of 10⁹ seeds exists
    work.refused(work.cli("launch", str(path)), "grid.seed: 1,000,000,000 seeds exceed the limit",
                 keep={"big.yaml"})


def test_fifty_thousand_trials_validate_in_seconds(work):
    path = work.file("big.yaml", BIG.format(seeds=240))
    result = work.cli("validate", str(path))
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("big: 49920 trials = ") and len(result.stdout.splitlines()) == 3 + 49920
    assert result.seconds < budget(20), result.seconds  # 6 s on a busy 2-core machine (before: 10 s)


def test_ctrl_c_is_answered_at_once(work):
    path = work.file("big.yaml", BIG.format(seeds=480))  # 99,840 trials: ~10 s of expansion
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "validate", str(path)], cwd=work.dir, env=work.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < budget(3)
    assert err.strip().splitlines()[-1] == "dsrl-platform validate: interrupted"


# --- report --out -----------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path) -> str:
    """A real SQLite store holding the 'smoke' experiment with one finished trial."""
    from dsrl_platform import names
    from dsrl_platform.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker.connect(uri)
    exp = tracker.experiment_id("smoke")
    run_id = tracker.client.create_run(exp, run_name="t", tags={
        names.TAG_ROLE: names.ROLE_TRIAL, names.TAG_ALGO: "td3", names.TAG_METHOD: "dense",
        names.TAG_ENV: "Pendulum-v1", names.TAG_SEED: "0", names.TAG_BUDGET: "1000"}).info.run_id
    tracker.client.log_metric(run_id, names.EVAL_RETURN, -100.0, step=1000)
    tracker.finish_trial(run_id)
    return uri


def _read_only(path: Path) -> tuple[str, ...]:
    """A command prefix under which `path` is read-only: a read-only bind mount in a private
    mount namespace when root (permission bits do not stop root), else the permission bits."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return ()
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("root without mount namespaces: cannot make a read-only directory")
    return ("unshare", "-m", "sh", "-c", f'mount --bind "{path}" "{path}" && mount -o remount,bind,ro "{path}" "{path}" '
            '&& exec "$@"', "sh")


def test_report_out_in_a_read_only_directory(work, store):
    parent = work.dir / "reports"
    parent.mkdir()
    prefix = _read_only(parent)
    result = work.cli("report", "smoke", "--tracking-uri", store, "--out", str(parent / "r"), prefix=prefix)
    work.refused(result, f"--out {parent / 'r'}: {parent} is not writable", keep={"reports"})
    assert list(parent.iterdir()) == []  # no temporary or .old directory left


def test_report_out_that_cannot_be_created(work, store):
    work.file("notes.txt", "a file")
    work.refused(work.cli("report", "smoke", "--tracking-uri", store, "--out", "notes.txt/r"),
                 f"{work.dir / 'notes.txt'} is a file, not a directory", keep={"notes.txt"})
    result = work.cli("report", "smoke", "--tracking-uri", store, "--out", "/proc/dsrl-report/r")
    work.refused(result, "--out /proc/dsrl-report/r: ", keep={"notes.txt"})
    assert not Path("/proc/dsrl-report").exists()


def test_report_replaces_an_earlier_report_by_renames_in_its_directory(work, store):
    out = work.dir / "r"
    assert work.cli("report", "smoke", "--tracking-uri", store, "--out", str(out)).code == 0
    (out / "stale.txt").write_text("from an older report")
    again = work.cli("report", "smoke", "--tracking-uri", store, "--out", str(out))
    assert again.code == 0, again.stderr
    assert not (out / "stale.txt").exists() and (out / "index.html").is_file()
    assert [p.name for p in work.dir.iterdir()] == ["r"]  # no .r.tmp-* or .r.old-* left


def test_ui_on_a_port_in_use(work, store):
    with silent_server() as port:
        work.refused(work.cli("ui", "--tracking-uri", store, "--port", str(port)),
                     f"--port {port}: cannot listen on 127.0.0.1:{port}")
