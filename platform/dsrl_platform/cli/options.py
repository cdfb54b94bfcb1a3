"""`dsrl-platform options`: every run option, its default and what it means (from RunConfig)."""

from __future__ import annotations

import argparse

HELP = "list every run option (--set NAME=VALUE and experiment YAML): default and meaning"


def configure(p: argparse.ArgumentParser) -> None:
    pass


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.config import RunConfig

    for name, field in RunConfig.model_fields.items():
        default = "paper default" if field.default is None else field.default
        print(f"{name:<22} {str(default):<16} {field.description}")
    return 0
