"""`dsrl-platform validate`: check a spec and print its expanded trials; nothing runs."""

from __future__ import annotations

import argparse

HELP = "check an experiment spec and print its expanded trials"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="experiments/*.yaml")


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.spec import describe_grid, load_trials

    print(describe_grid(*load_trials(args.spec)))
    return 0
