"""`dsrl-platform options`: every run option, its default, what it means and which algorithms have it."""

from __future__ import annotations

import argparse

HELP = "list every run option (--set NAME=VALUE and experiment YAML): default and meaning"


def configure(p: argparse.ArgumentParser) -> None:
    pass


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform import config

    owners, classes = config.option_owners(), config.config_classes()
    everywhere = set(classes)
    for name, algos in owners.items():
        field = classes[algos[0]].model_fields[name]
        default = "paper default" if field.default is None else field.default
        where = "" if set(algos) == everywhere else f" [{', '.join(algos)}]"
        print(f"{name:<22} {str(default):<16} {field.description}{where}")
    return 0
