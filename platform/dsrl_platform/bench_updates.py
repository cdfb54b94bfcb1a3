"""`dsrl-platform bench --sparsity …`: update wall-clock of sparse agents, dense vs masked vs kernels.

For each algorithm: the dense agent, and at every sparsity a static agent with ERK over all
layers (Graesser's setting) on masked dense matrices (`sparse_kernels: dense`) and on each
kernel mode asked for (`auto` by default). Every agent fills its replay buffer with the random
warm-up and makes a few updates to settle; then all of them are timed in interleaved rounds (one
round: `--updates` updates of each agent, in a rotating order), so that a shared machine's load
falls on all alike; the table shows each agent's median ms per update over the rounds, its ratio
to the dense and to the masked-dense agent, and its training FLOPs relative to dense. One thread.

Compared with the machine's peak: a 1024² float32 matmul on one thread, and the rate the dense
agent's update achieves on its FLOPs.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from dsrl_platform import config

ALGOS = "sac,td3,dqn"
WARMUP = 1000
SETTLE = 20
KERNEL_MODES = ("auto", "sparse")


@dataclass
class Entry:
    algo: str
    sparsity: float | None  # None: the dense agent
    kernels: str  # "dense" (masked dense), "auto", "sparse"
    runner: object = field(repr=False)
    times_ms: list[float] = field(default_factory=list)
    rebuild_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def bench_config(algo: str, sparsity: float | None, kernels: str, env: str | None):
    options = {"algo": algo, "steps": 1_000_000, "threads": 1, "device": "cpu", "buffer_size": 20_000}
    if env:
        options["env"] = env
    if "warmup_steps" in config.config_class(algo).model_fields:
        options["warmup_steps"] = WARMUP
    if sparsity is None:
        return config.build(**options, method="dense")
    return config.build(**options, method="static", sparsity=sparsity, sparse_layers="all", distribution="erk",
                        sparse_kernels=kernels)


def _ready(algo: str, sparsity: float | None, kernels: str, env: str | None) -> Entry:
    from dsrl_platform.train.runner import Runner

    runner = Runner(bench_config(algo, sparsity, kernels, env))
    for _ in range(runner.config.first_update_step()):
        runner._env_step()
    for _ in range(SETTLE):
        runner.agent.update()
    return Entry(algo, sparsity, kernels, runner)


def _time_rounds(entries: list[Entry], rounds: int, updates: int) -> None:
    for r in range(rounds):
        for i in range(len(entries)):
            e = entries[(i + r) % len(entries)]
            agent = e.runner.agent
            start = time.perf_counter()
            for _ in range(updates):
                agent.update()
            e.times_ms.append(1e3 * (time.perf_counter() - start) / updates)


def rebuild_ms(e: Entry, repeats: int = 5) -> float | None:
    """ms to rebuild the agent's sparse structures from its masks, as after a topology update."""
    kernels = [net for net in e.runner.networks.values() if net.kernels is not None]
    if not kernels:
        return None
    start = time.perf_counter()
    for _ in range(repeats):
        for net in kernels:
            net.topology.changed()
            net.kernels.sync()
    return 1e3 * (time.perf_counter() - start) / repeats


def matmul_peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    """One thread's float32 matmul rate on an n × n product (best of `repeats`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    torch.set_num_threads(threads)
    return 2 * n**3 / best / 1e9


def _row(e: Entry, dense: Entry, masked: Entry | None) -> dict:
    costs, net = e.runner.costs, e.runner
    paths = net.kernel_paths()
    return {"algo": e.algo, "env": net.config.env, "sparsity": e.sparsity, "kernels": e.kernels,
            "update_ms": round(e.median_ms, 3),
            "update_ms_quartiles": [round(q, 3) for q in statistics.quantiles(e.times_ms, n=4)] if len(e.times_ms) > 1 else None,
            "x_dense": round(dense.median_ms / e.median_ms, 3),
            "x_masked": None if masked is None else round(masked.median_ms / e.median_ms, 3),
            "flops_ratio": round(costs.flops_per_step() / costs.flops_per_step(dense=True), 4),
            "flops_per_update": costs.flops_per_step(),
            "sparse_layers": sum(p != "dense" for p in paths.values()), "layers": len(paths),
            "rebuild_ms": e.rebuild_ms}


def bench_updates(algos: list[str], sparsities: list[float], modes: list[str], env: str | None,
                  rounds: int, updates: int, as_json: bool) -> int:
    for s in sparsities:
        if not 0.0 <= s < 1.0:
            raise ValueError(f"--sparsity: {s} is outside [0, 1)")
    for m in modes:
        if m not in KERNEL_MODES:
            raise ValueError(f"--kernels: unknown {m!r} (choose from {', '.join(KERNEL_MODES)})")
    for algo in algos:  # validate every configuration before spending minutes
        for s in sparsities:
            for kernels in ("dense", *modes):
                bench_config(algo, s, kernels, env).resolve()
    if rounds <= 0 or updates <= 0:
        raise ValueError("--rounds, --updates: must be positive")
    torch.set_num_threads(1)
    peak = matmul_peak_gflops()
    rows = []
    for algo in algos:
        print(f"bench: {algo}: building and warming {1 + len(sparsities) * (1 + len(modes))} agents, "
              f"then {rounds} rounds × {updates} updates each …", file=sys.stderr, flush=True)
        dense = _ready(algo, None, "dense", env)
        entries = [dense]
        by_level: dict[float, dict[str, Entry]] = {}
        for s in sparsities:
            by_level[s] = {k: _ready(algo, s, k, env) for k in ("dense", *modes)}
            entries += by_level[s].values()
        _time_rounds(entries, rounds, updates)
        for e in entries:  # after the timing: a rebuild changes the targets' paths until their next update
            e.rebuild_ms = rebuild_ms(e)
        rows.append(_row(dense, dense, None))
        for s in sparsities:
            masked = by_level[s]["dense"]
            rows += [_row(e, dense, masked) for e in by_level[s].values()]
    if as_json:
        print(json.dumps({"rows": rows, "matmul_peak_gflops": round(peak, 1), "rounds": rounds, "updates": updates}))
        return 0
    print(f"update wall-clock, ms per update: median of {rounds} interleaved rounds × {updates} updates, 1 thread")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"float32 matmul peak (1024², 1 thread) {peak:.0f} GFLOP/s")
    print(f"{'algo':<5}{'sparsity':>9}{'kernels':>9}{'FLOPs×':>8}{'ms':>9}{'×dense':>8}{'×masked':>9}{'sparse':>8}"
          f"{'rebuild ms':>12}")
    for r in rows:
        sparsity = "dense" if r["sparsity"] is None else f"{r['sparsity']:.2f}"
        kernels = "—" if r["sparsity"] is None else ("masked" if r["kernels"] == "dense" else r["kernels"])
        x_masked = "" if r["x_masked"] is None else f"{r['x_masked']:.2f}"
        layers = f"{r['sparse_layers']}/{r['layers']}" if r["layers"] else ""
        print(f"{r['algo']:<5}{sparsity:>9}{kernels:>9}{r['flops_ratio']:>8.3f}{r['update_ms']:>9.3f}"
              f"{r['x_dense']:>8.2f}{x_masked:>9}{layers:>8}"
              f"{'' if r['rebuild_ms'] is None else format(r['rebuild_ms'], '.2f'):>12}".rstrip())
        if r["sparsity"] is None:
            gflops = r["flops_per_update"] / (r["update_ms"] * 1e-3) / 1e9
            print(f"{'':<5}dense update: {r['flops_per_update'] / 1e6:.0f} MFLOP in {r['update_ms']:.2f} ms = "
                  f"{gflops:.1f} GFLOP/s ({100 * gflops / peak:.0f}% of the matmul peak)")
    return 0
