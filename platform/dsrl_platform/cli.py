"""`dsrl-platform` — every command. Thin: parse, call, print.

User mistakes surface as `UsageError` or `ValueError`; `main` turns them into one line on stderr
and exit code 2. Each command's work lives in its own module, imported lazily so that
`dsrl-platform validate` does not pay for importing torch or Ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

EXIT_USAGE = 2


class UsageError(ValueError):
    """A mistake the user can fix; printed as one line, exit code 2."""


Handler = Callable[[argparse.Namespace], int | None]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help: str):
    """Register `configure(parser)` + `handler(args)` pairs: @command(...) on the configure fn."""

    def register(configure: Callable[[argparse.ArgumentParser], None]):
        def bind(handler: Handler) -> Handler:
            _COMMANDS[name] = (help, configure, handler)
            return handler

        configure.handler = bind  # type: ignore[attr-defined]
        return configure

    return register


# --- run -----------------------------------------------------------------------------------
@command("run", "train one agent with the papers' protocol")
def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", help="td3 | sac | dqn (`dsrl-platform options` lists every option)")
    p.add_argument("--method", help="dense | static | ds | set | rigl | prune")
    p.add_argument("--env", help="gymnasium id, e.g. HalfCheetah-v4")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="budget in environment steps")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                   help="any run option by its YAML name (repeatable), e.g. --set sparsity=0.8")
    p.add_argument("--out", help="results directory (default: results/<algo>-<method>-<env>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")


@_run_args.handler
def _run(args: argparse.Namespace) -> int:
    from dsrl_platform.single_run import run_command

    return run_command(args)


# --- bench ---------------------------------------------------------------------------------
@command("bench", "measure environment steps/s of dense, static and ds agents, or (--sparsity) update wall-clock "
                  "of sparse agents on masked dense matrices and on sparse kernels")
def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algos", help="comma-separated algorithms (default td3,sac; with --sparsity sac,td3,dqn)")
    p.add_argument("--methods", default="dense,static,ds", help="comma-separated methods")
    p.add_argument("--env", help="gymnasium id (default: each algorithm's default, e.g. HalfCheetah-v4 for td3)")
    p.add_argument("--steps", type=int, default=2000, help="timed steps per configuration")
    p.add_argument("--sparsity", help="comma-separated sparsities, e.g. 0.5,0.9,0.99: time updates of static ERK "
                                      "agents (all layers) masked dense and on sparse kernels, beside dense")
    p.add_argument("--kernels", default="auto", help="with --sparsity: kernel modes timed beside masked dense "
                                                      "(auto, sparse; comma-separated)")
    p.add_argument("--rounds", type=int, default=7, help="with --sparsity: interleaved timing rounds (medians)")
    p.add_argument("--updates", type=int, default=100, help="with --sparsity: updates per agent per round")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


@_bench_args.handler
def _bench(args: argparse.Namespace) -> int:
    from dsrl_platform.bench import bench_command

    return bench_command(args)


# --- options -------------------------------------------------------------------------------
@command("options", "list every run option (--set NAME=VALUE and experiment YAML): default and meaning")
def _options_args(p: argparse.ArgumentParser) -> None:
    pass


@_options_args.handler
def _options(args: argparse.Namespace) -> int:
    from dsrl_platform import config

    owners, classes = config.option_owners(), config.config_classes()
    everywhere = set(classes)
    for name, algos in owners.items():
        field = classes[algos[0]].model_fields[name]
        default = "paper default" if field.default is None else field.default
        where = "" if set(algos) == everywhere else f" [{', '.join(algos)}]"
        print(f"{name:<22} {str(default):<16} {field.description}{where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsrl-platform",
        description="Dense, static-sparse and dynamic-sparse deep RL comparisons (Sokar 2022, Graesser 2022).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, configure, _) in _COMMANDS.items():
        configure(sub.add_parser(name, help=help_, description=help_))
    return parser


def main(argv: list[str] | None = None) -> int:
    _load_command_modules()
    args = build_parser().parse_args(argv)
    _, _, handler = _COMMANDS[args.command]
    try:
        return int(handler(args) or 0)
    except ValueError as err:  # includes UsageError and pydantic's ValidationError
        print(f"dsrl-platform {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dsrl-platform {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(err: ValueError) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        from dsrl_platform.config import first_error

        return first_error(err)
    return " ".join(str(err).split())


def _load_command_modules() -> None:
    """Commands defined outside this file register themselves on import (cheap modules only)."""
    import importlib

    for module in ("dsrl_platform.cli_experiments", "dsrl_platform.cli_report"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


if __name__ == "__main__":
    sys.exit(main())
