"""`dsrl-platform bench`: environment steps per second, one thread, same conditions for all.
(`--sparsity`: update wall-clock of sparse kernels against masked dense, bench_updates.py.)

Each configuration gets a 1M-step budget (so schedules such as DS's topology updates behave as
in a real run), fills the replay buffer with the random warm-up, then times `--steps` steps of
acting plus one gradient update each. Evaluation is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from dsrl_platform import config
from dsrl_platform.methods import METHODS

WARMUP = 1000


def bench_config(algo: str, method: str, env: str | None, device: str = "cpu"):
    options = {"algo": algo, "method": method, "steps": 1_000_000, "threads": 1, "device": device}
    if env:
        options["env"] = env
    if "warmup_steps" in config.config_class(algo).model_fields:
        options["warmup_steps"] = WARMUP
    return config.build(**options)


def measure(algo: str, method: str, env: str | None, steps: int) -> float:
    from dsrl_platform.train.runner import Runner

    trainer = Runner(bench_config(algo, method, env))
    for _ in range(trainer.config.first_update_step() + 50):  # warm-up, then a few updates to settle allocations
        trainer._env_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer._env_step()
    return steps / (time.perf_counter() - start)


def _names(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


def bench_command(args: argparse.Namespace) -> int:
    if args.sparsity:
        from dsrl_platform.bench_updates import ALGOS, bench_updates

        try:
            sparsities = [float(s) for s in _names(args.sparsity)]
        except ValueError:
            raise ValueError(f"--sparsity: {args.sparsity!r} is not a comma-separated list of numbers") from None
        return bench_updates(_names(args.algos or ALGOS), sparsities, _names(args.kernels), args.env,
                             args.rounds, args.updates, args.json)
    algos = _names(args.algos or "td3,sac")
    methods = _names(args.methods)
    for algo in algos:  # validate every name before spending minutes
        for method in methods:
            bench_config(algo, method, args.env).resolve()
    if args.steps <= 0:
        raise ValueError(f"--steps: must be positive, got {args.steps}")
    if getattr(args, "groups", None):
        return _groups_command(args, algos, methods)
    results = []
    for algo in algos:
        dense = None
        for method in methods:
            print(f"bench: {algo}/{method} on {bench_config(algo, method, args.env).env}, {args.steps} steps …",
                  file=sys.stderr, flush=True)
            rate = measure(algo, method, args.env, args.steps)
            dense = rate if not METHODS[method].sparse else dense
            results.append({"algo": algo, "method": method, "steps_per_s": round(rate, 1),
                            "ratio_to_dense": round(rate / dense, 3) if dense else None})
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{'algo':<6}{'method':<8}{'steps/s':>10}{'× dense':>10}")
        for r in results:
            ratio = "" if r["ratio_to_dense"] is None else f"{r['ratio_to_dense']:.2f}"
            print(f"{r['algo']:<6}{r['method']:<8}{r['steps_per_s']:>10.1f}{ratio:>10}")
    return 0


def _groups_command(args: argparse.Namespace, algos: list[str], methods: list[str]) -> int:
    from dsrl_platform import bench_groups

    try:
        groups = sorted({int(g) for g in args.groups.split(",") if g.strip()})
    except ValueError:
        raise ValueError(f"--groups {args.groups}: expected group sizes, e.g. 1,5") from None
    if not groups or groups[0] < 1:
        raise ValueError(f"--groups {args.groups}: group sizes must be at least 1")
    result = bench_groups.run(algos, methods, args.env, groups, args.steps, device=args.device,
                              log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s (one thread, 100×256 @ 256×256); "
          f"plain PyTorch TD3 loop {result['plain_td3_steps_per_s']:.1f} steps/s")
    print(f"{'algo':<6}{'method':<8}{'group':>6}{'steps/s/member':>16}{'× group 1':>11}{'GFLOP/s':>9}"
          f"{'of peak':>9}{'× plain':>9}")
    for r in result["rows"]:
        plain = "" if r["ratio_to_plain_loop"] is None else f"{r['ratio_to_plain_loop']:.2f}"
        print(f"{r['algo']:<6}{r['method']:<8}{r['group']:>6}{r['member_steps_per_s']:>16.1f}"
              f"{r['ratio_to_group_1']:>11.2f}{r['gflops']:>9.2f}{r['peak_fraction']:>9.1%}{plain:>9}")
    return 0
