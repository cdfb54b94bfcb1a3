"""`dsrl-platform`: the command table, and one line with exit code 2 for every user mistake.

Each command is a module of this package holding `HELP`, `configure(parser)` and
`handle(args) -> int`. The modules are cheap to import: each imports its heavy libraries (torch,
Ray, MLflow) inside `handle`, so that `dsrl-platform validate` does not pay for them.

User mistakes surface as `UsageError` or `ValueError`; `main` turns them into one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# command -> module of this package, in the order `--help` lists them
COMMANDS = {
    "run": "run", "bench": "bench", "options": "options",
    "validate": "validate", "launch": "launch", "status": "status", "ui": "ui", "report": "report",
}


class UsageError(ValueError):
    """A mistake the user can fix; printed as one line, exit code 2."""


def tracking_arg(p: argparse.ArgumentParser) -> None:
    """--tracking-uri, the same on every command that uses the store."""
    p.add_argument("--tracking-uri", help="MLflow store: sqlite:///PATH.db or http(s)://HOST:PORT "
                                          "(default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")


def _module(command: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{COMMANDS[command]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsrl-platform",
        description="Dense, static-sparse and dynamic-sparse deep RL comparisons (Sokar 2022, Graesser 2022).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _module(name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(_module(args.command).handle(args) or 0)
    except ValueError as err:  # includes UsageError and pydantic's ValidationError
        print(f"dsrl-platform {_command(argv)}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dsrl-platform {_command(argv)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _command(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if a in COMMANDS), "")


def _one_line(err: ValueError) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        from dsrl_platform.config import first_error

        return first_error(err)
    return " ".join(str(err).split())
