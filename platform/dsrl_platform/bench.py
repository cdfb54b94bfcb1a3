"""`dsrl-platform bench`: environment steps per second, one thread, same conditions for all.

Each configuration gets a 1M-step budget (so schedules such as DS's topology updates behave as
in a real run), fills the replay buffer with the random warm-up, then times `--steps` steps of
acting plus one gradient update each. Evaluation is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from dsrl_platform.config import RunConfig

WARMUP = 1000


def measure(algo: str, method: str, env: str, steps: int) -> float:
    from dsrl_platform.trainer import Trainer

    trainer = Trainer(RunConfig(algo=algo, method=method, env=env, steps=1_000_000,
                                warmup_steps=WARMUP, threads=1, device="cpu"))
    for _ in range(WARMUP + 50):  # random warm-up, then a few updates to settle allocations
        trainer._env_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer._env_step()
    return steps / (time.perf_counter() - start)


def bench_command(args: argparse.Namespace) -> int:
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for algo in algos:  # validate every name before spending minutes
        for method in methods:
            RunConfig(algo=algo, method=method, env=args.env)
    if args.steps <= 0:
        raise ValueError(f"--steps: must be positive, got {args.steps}")
    results = []
    for algo in algos:
        dense = None
        for method in methods:
            print(f"bench: {algo}/{method} on {args.env}, {args.steps} steps …", file=sys.stderr, flush=True)
            rate = measure(algo, method, args.env, args.steps)
            dense = rate if method == "dense" else dense
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
