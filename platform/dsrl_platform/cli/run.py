"""`dsrl-platform run`: one agent, the papers' protocol (the work is in dsrl_platform.single_run)."""

from __future__ import annotations

import argparse

HELP = "train one agent with the papers' protocol"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", help="td3 | sac | dqn | ppo (`dsrl-platform options` lists every option)")
    p.add_argument("--method", help="dense | dense_matched | static | ds | set | rigl | prune")
    p.add_argument("--env", help="gymnasium id, e.g. HalfCheetah-v4")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="budget in environment steps")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                   help="any run option by its YAML name (repeatable), e.g. --set sparsity=0.8")
    p.add_argument("--out", help="results directory (default: results/<algo>-<method>-<env>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.single_run import run_command

    return run_command(args)
