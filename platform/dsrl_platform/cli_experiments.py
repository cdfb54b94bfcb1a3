"""Experiment commands: validate, launch, status, ui. Thin: parse, call, print.

Heavy libraries (Ray, MLflow, torch) are imported inside the handlers, so `validate` and
`launch --dry-run` stay fast and never touch the tracking store.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsrl_platform.cli import command
from dsrl_platform.store import resolve_tracking_uri


def _tracking_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow store: sqlite:///ABS/PATH.db or http(s)://server "
                                          "(default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")


def _print_grid(path: str) -> None:
    from dsrl_platform.spec import describe_grid, load_trials

    spec, trials = load_trials(path)
    print(describe_grid(spec, trials))


# --- validate --------------------------------------------------------------------------------
@command("validate", "check an experiment spec and print its expanded trials")
def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="experiments/*.yaml")


@_validate_args.handler
def _validate(args: argparse.Namespace) -> int:
    _print_grid(args.spec)
    return 0


# --- launch ----------------------------------------------------------------------------------
@command("launch", "run an experiment spec on Ray Tune, tracked in MLflow (rerun to resume)")
def _launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="experiments/*.yaml")
    p.add_argument("--dry-run", action="store_true", help="validate and print the trials; run nothing")
    _tracking_arg(p)
    p.add_argument("--address", help="join this Ray cluster (e.g. auto, or ray://head:10001); default: a local Ray")
    p.add_argument("--storage", default="ray_results",
                   help="Ray Tune storage for checkpoints: a directory (default ./ray_results) or a URI "
                        "every node can reach")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--max-concurrent", type=int, help="trials running at once (overrides the spec)")
    p.add_argument("--cpus-per-trial", type=float, help="overrides the spec's resources.cpus_per_trial")
    p.add_argument("--gpus-per-trial", type=float, help="overrides the spec's resources.gpus_per_trial")
    p.add_argument("--max-failures", type=int, help="retries per trial (overrides the spec)")
    p.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                   help="print progress this often (default 30)")


@_launch_args.handler
def _launch(args: argparse.Namespace) -> int:
    from dsrl_platform.spec import describe_grid, load_trials

    spec, trials = load_trials(args.spec)  # every mistake surfaces here, before any side effect
    for flag in ("num_cpus", "max_concurrent", "max_failures"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "max_failures" else 1):
            raise ValueError(f"--{flag.replace('_', '-')}: must be at least {0 if flag == 'max_failures' else 1}")
    for flag in ("cpus_per_trial", "gpus_per_trial"):
        value = getattr(args, flag)
        if value is not None and value < (1e-9 if flag == "cpus_per_trial" else 0):
            raise ValueError(f"--{flag.replace('_', '-')}: must be positive")
    if args.dry_run:
        print(describe_grid(spec, trials))
        return 0

    from dsrl_platform.orchestrate import LaunchOptions, launch

    opts = LaunchOptions(
        tracking_uri=resolve_tracking_uri(args.tracking_uri), storage=args.storage, address=args.address,
        num_cpus=args.num_cpus, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures, progress_every_s=args.progress_every)
    result = launch(spec, trials, Path(args.spec), opts, out=lambda line: print(line, flush=True))
    print(f"{spec.name}: {result.finished}/{result.total} trials finished ({result.status}); "
          f"dsrl-platform status {spec.name!r} shows it from any terminal", flush=True)
    return result.exit_code


# --- status ----------------------------------------------------------------------------------
@command("status", "progress of an experiment, read from the tracking store")
def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="the spec's name (its MLflow experiment)")
    _tracking_arg(p)
    p.add_argument("--trials", action="store_true", help="also list every started trial")


@_status_args.handler
def _status(args: argparse.Namespace) -> int:
    from dsrl_platform import progress
    from dsrl_platform.tracking import experiment_progress

    states, note = experiment_progress(resolve_tracking_uri(args.tracking_uri), args.experiment)
    print(f"{args.experiment}: {note or 'no launch run'}")
    for line in progress.report(states, progress.throughput(states)):
        print(line)
    if args.trials:
        for line in progress.trial_table(states):
            print(line)
    return 0


# --- ui --------------------------------------------------------------------------------------
@command("ui", "open the MLflow UI on the tracking store")
def _ui_args(p: argparse.ArgumentParser) -> None:
    _tracking_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)


@_ui_args.handler
def _ui(args: argparse.Namespace) -> int:
    from dsrl_platform.tracking import open_ui

    return open_ui(resolve_tracking_uri(args.tracking_uri), args.host, args.port)
