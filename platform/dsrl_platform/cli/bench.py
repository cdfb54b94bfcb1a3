"""`dsrl-platform bench`: environment steps/s (the work is in dsrl_platform.bench)."""

from __future__ import annotations

import argparse

HELP = ("measure environment steps/s of dense, static and ds agents; (--groups) grouped training; (--sparsity) "
        "update wall-clock on masked dense matrices and on sparse kernels")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algos", help="comma-separated algorithms (default td3,sac; with --sparsity sac,td3,dqn)")
    p.add_argument("--methods", default="dense,static,ds", help="comma-separated methods")
    p.add_argument("--env", help="gymnasium id (default: each algorithm's default, e.g. HalfCheetah-v4 for td3)")
    p.add_argument("--steps", type=int, default=2000, help="timed steps per configuration")
    p.add_argument("--groups", help="grouped training: group sizes to compare, e.g. 1,5 (steps/s per member, "
                                    "GFLOP/s against the machine's matmul peak, a plain PyTorch TD3 loop beside)")
    p.add_argument("--sparsity", help="comma-separated sparsities, e.g. 0.5,0.9,0.99: time updates of static ERK "
                                      "agents (all layers) masked dense and on sparse kernels, beside dense")
    p.add_argument("--kernels", default="auto", help="with --sparsity: kernel modes timed beside masked dense "
                                                      "(auto, sparse; comma-separated)")
    p.add_argument("--rounds", type=int, default=7, help="with --sparsity: interleaved timing rounds (medians)")
    p.add_argument("--updates", type=int, default=100, help="with --sparsity: updates per agent per round")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where grouped agents train (--groups)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.bench import bench_command

    return bench_command(args)
