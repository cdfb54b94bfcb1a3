"""`dsrl-platform status`: an experiment's progress, read from the tracking store."""

from __future__ import annotations

import argparse

from dsrl_platform.cli import tracking_arg

HELP = "progress of an experiment, read from the tracking store"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="the spec's name (its MLflow experiment)")
    tracking_arg(p)
    p.add_argument("--trials", action="store_true", help="also list every started trial")


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform import progress
    from dsrl_platform.tracking import uri
    from dsrl_platform.tracking.status import experiment_progress

    states, note = experiment_progress(uri.resolve(args.tracking_uri), args.experiment)
    print(f"{args.experiment}: {note or 'no launch run'}")
    for line in progress.report(states, progress.throughput(states)):
        print(line)
    if args.trials:
        for line in progress.trial_table(states):
            print(line)
    return 0
