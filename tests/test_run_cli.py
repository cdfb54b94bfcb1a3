"""`dsrl-platform run` and `bench` as a user calls them: a real subprocess, exit codes, files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = ["--env", "Pendulum-v1", "--steps", "600", "--set", "warmup_steps=200", "--set", "eval_every=200",
        "--set", "eval_episodes=1", "--set", "hidden_sizes=[32,32]", "--set", "batch_size=32"]


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsrl_platform.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_bench_sparsity_times_updates_masked_and_on_kernels_beside_dense():
    result = cli("bench", "--algos", "dqn", "--sparsity", "0.9", "--kernels", "sparse", "--rounds", "2",
                 "--updates", "2", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    rows = out["rows"]
    assert [(r["sparsity"], r["kernels"]) for r in rows] == [(None, "dense"), (0.9, "dense"), (0.9, "sparse")]
    dense, masked, sparse = rows
    assert dense["flops_ratio"] == 1.0 and 0.05 < masked["flops_ratio"] == sparse["flops_ratio"] < 0.2
    assert all(r["update_ms"] > 0 for r in rows) and out["matmul_peak_gflops"] > 0
    assert (masked["layers"], sparse["sparse_layers"], sparse["layers"]) == (0, 3, 3)  # DQN's 512-512 MLP
    assert sparse["rebuild_ms"] > 0 and masked["rebuild_ms"] is None
    bad = cli("bench", "--sparsity", "0.9,1.5")
    assert bad.returncode == 2 and "--sparsity" in bad.stderr


@pytest.mark.parametrize("args,field", [
    (["--env", "NoSuchEnv-v0"], "env"),
    (["--env", "Hopper-v3"], "env"),
    (["--algo", "a2c"], "algo"),
    (["--method", "magic"], "method"),
    (["--method", "ds", "--set", "sparsity=1.0"], "sparsity"),
    (["--method", "ds", "--set", "sparsity=-0.1"], "sparsity"),
    (["--method", "ds", "--set", "lambda1=500"], "lambda1"),
    (["--steps", "1000"], "steps"),
    (["--set", "batch_size=many"], "batch_size"),
    (["--set", "no_such_option=1"], "no_such_option"),
])
def test_bad_input_is_one_line_naming_the_option_and_exit_2(tmp_path, args, field):
    result = cli("run", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "WARN" not in line]
    assert len(lines) == 1 and field in lines[0], result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_run_writes_results_prints_json_and_resumes(tmp_path):
    out = tmp_path / "run"
    result = cli("run", "--algo", "td3", "--method", "ds", *TINY, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert {"final_return", "lca", "params_total", "train_flops", "sparsity"} <= set(summary)
    assert (out / "checkpoint" / "state.pt").exists()
    curve = (out / "evaluations.csv").read_text().splitlines()
    assert curve[0].startswith("step,return_mean") and [r.split(",")[0] for r in curve[1:]] == ["0", "200", "400", "600"]
    assert "return" in result.stderr and "step" in result.stderr  # progress shown
    assert json.loads((out / "config.json").read_text())["drop_fraction"] == 0.05  # resolved defaults
    layers = json.loads((out / "layers.json").read_text())
    assert layers["actor.2"] == 0.0 and layers["actor.1"] > 0

    again = cli("run", "--algo", "td3", "--method", "ds", *TINY, "--out", str(out))
    assert again.returncode == 2 and "--out" in again.stderr  # a finished run is never overwritten
    resumed = cli("run", "--algo", "td3", "--method", "ds", *TINY, "--out", str(out), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr  # resuming at the end: same summary
    assert json.loads(resumed.stdout)["final_return"] == summary["final_return"]


def test_bench_json_lists_each_configuration():
    result = cli("bench", "--algos", "td3,dqn", "--methods", "dense,ds", "--steps", "20", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["algo"], r["method"]) for r in rows] == [("td3", "dense"), ("td3", "ds"), ("dqn", "dense"), ("dqn", "ds")]
    assert all(r["steps_per_s"] > 0 for r in rows)
    bad = cli("bench", "--methods", "dense,nope")
    assert bad.returncode == 2 and "method" in bad.stderr


@pytest.mark.parametrize("args,field", [
    (["--algo", "td3", "--env", "CartPole-v1"], "env"),  # discrete actions for a continuous agent
    (["--algo", "dqn", "--env", "Pendulum-v1"], "env"),
    (["--set", "device=cuda"] if not __import__("torch").cuda.is_available() else ["--set", "device=tpu"], "device"),
    (["--set", "eval_seed_offset=-100"], "eval_seed_offset"),
    (["--set", "hidden_sizes=[0,32]"], "hidden_sizes"),
    (["--set", "hidden_sizes=[-4,32]"], "hidden_sizes"),
    (["--set", "hidden_sizes=[100000,100000]"], "hidden_sizes"),  # checked on the meta device: no 40 GB
    (["--env", "LunarLanderContinuous-v3"], "env"),  # Box2D is not installed
    (["--env", "HalfCheetah-v4", "--method", "ds", "--set", "lambda1=500"], "lambda1"),
    (["--method", "ds", "--set", "topology_interval=25"], "topology_interval"),  # odd to policy_delay 2
    (["--set", "buffer_size=16"], "buffer_size"),
    (["--algo", "dqn", "--env", "CartPole-v1", "--set", "policy_delay=2"], "policy_delay"),  # a td3 option
])
def test_what_a_trial_would_refuse_is_refused_before_anything_is_written(tmp_path, args, field):
    argv = ["run", *TINY, *args] if "--env" not in args else \
        ["run", *[a for i, a in enumerate(TINY) if i > 1], *args]
    result = cli(*argv, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and field in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no results, no MUJOCO_LOG.TXT


def test_a_planted_checkpoint_is_refused_without_running_its_code(tmp_path):
    import torch

    out = tmp_path / "run"
    result = cli("run", "--algo", "td3", "--method", "dense", *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    state = out / "checkpoint" / "state.pt"
    torch.save({"config": Payload()}, state)
    resumed = cli("run", "--algo", "td3", "--method", "dense", *TINY, "--out", str(out), "--resume")
    assert resumed.returncode == 2, resumed.stderr
    lines = [line for line in resumed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a plain checkpoint" in lines[0] and str(state) in lines[0], resumed.stderr
    assert not marker.exists()


def test_questionable_settings_warn_and_run(tmp_path):
    result = cli("run", "--algo", "td3", "--method", "dense", *TINY, "--set", "final_evals=50",
                 "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "warning: final_evals: 50, but the run has 4 evaluations" in result.stderr
