"""`dsrl-platform launch`: a spec on Ray Tune, tracked in MLflow (the work is in orchestrate).

Every mistake the user can make surfaces before anything is written or started: the spec and
the flags here, the tracking URI's form, then `orchestrate.launch`'s preflight (resources,
storage, the cluster address) and the store's answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsrl_platform.cli import tracking_arg

HELP = "run an experiment spec on Ray Tune, tracked in MLflow (rerun to resume)"
# flag -> smallest value it takes
_MINIMUM = {"num_cpus": 1, "max_concurrent": 1, "max_failures": 0}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="experiments/*.yaml")
    p.add_argument("--dry-run", action="store_true", help="validate and print the trials; run nothing")
    tracking_arg(p)
    p.add_argument("--address", help="join this Ray cluster (auto, HOST:PORT of its head, or ray://HOST:10001); "
                                     "default: a local Ray")
    p.add_argument("--storage", default="ray_results",
                   help="Ray Tune storage for checkpoints: a directory (default ./ray_results) or a URI "
                        "every node can reach")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--max-concurrent", type=int, help="trials running at once (overrides the spec)")
    p.add_argument("--cpus-per-trial", type=float, help="overrides the spec's resources.cpus_per_trial")
    p.add_argument("--gpus-per-trial", type=float, help="overrides the spec's resources.gpus_per_trial")
    p.add_argument("--max-failures", type=int, help="retries per trial (overrides the spec)")
    p.add_argument("--group", help="seeds trained together per trial: auto, none, seeds or a size "
                                   "(overrides the spec's resources.group)")
    p.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                   help="print progress this often (default 30)")


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.spec import describe_grid, load_trials

    spec, trials = load_trials(args.spec)
    _check_flags(args)
    if args.dry_run:
        print(describe_grid(spec, trials))
        return 0

    from dsrl_platform.tracking import check_store

    tracking_uri = check_store(args.tracking_uri)  # before Ray is even imported

    from dsrl_platform.orchestrate import LaunchOptions, launch

    opts = LaunchOptions(
        tracking_uri=tracking_uri, storage=args.storage, address=args.address,
        num_cpus=args.num_cpus, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures, progress_every_s=args.progress_every,
        group=_group(args.group))
    result = launch(spec, trials, Path(args.spec), opts, out=lambda line: print(line, flush=True))
    print(f"{spec.name}: {result.finished}/{result.total} trials finished ({result.status}); "
          f"dsrl-platform status {spec.name!r} shows it from any terminal", flush=True)
    return result.exit_code


def _group(value: str | None) -> str | int | None:
    if value is None or value in ("auto", "none", "seeds"):
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"--group {value}: expected auto, none, seeds or a group size ≥ 1")


def _check_flags(args: argparse.Namespace) -> None:
    _group(args.group)
    for flag, least in _MINIMUM.items():
        value = getattr(args, flag)
        if value is not None and value < least:
            raise ValueError(f"--{flag.replace('_', '-')}: must be at least {least}")
    if args.cpus_per_trial is not None and args.cpus_per_trial <= 0:
        raise ValueError("--cpus-per-trial: must be positive")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise ValueError("--gpus-per-trial: must not be negative")
