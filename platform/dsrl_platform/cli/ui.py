"""`dsrl-platform ui`: the MLflow UI on the tracking store."""

from __future__ import annotations

import argparse

from dsrl_platform.cli import tracking_arg

HELP = "open the MLflow UI on the tracking store"


def configure(p: argparse.ArgumentParser) -> None:
    tracking_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.tracking import uri
    from dsrl_platform.tracking.ui import open_ui

    return open_ui(uri.resolve(args.tracking_uri), args.host, args.port, out=lambda line: print(line, flush=True))
