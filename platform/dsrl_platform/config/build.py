"""From flat option names (YAML, `--set`, a worker's payload) to an algorithm's config.

Every algorithm's options share one flat namespace; `build` picks the class of the chosen
algorithm (agents/registry.py) and refuses an option that belongs to other algorithms only,
naming it and where it applies.
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from pydantic import ValidationError

from dsrl_platform.config.base import Resolved, RunConfig, resolved_type

DEFAULT_ALGO = "td3"


def config_classes() -> dict[str, type[RunConfig]]:
    from dsrl_platform.agents.registry import ALGORITHMS  # the agents import torch: only when asked

    return {name: entry.config for name, entry in ALGORITHMS.items()}


def config_class(algo: str) -> type[RunConfig]:
    classes = config_classes()
    if algo not in classes:
        raise ValueError(f"algo: unknown {algo!r} (choose from {', '.join(classes)})")
    return classes[algo]


def option_owners() -> dict[str, list[str]]:
    """Every option name -> the algorithms that have it, in registry order."""
    owners: dict[str, list[str]] = {}
    for algo, cls in config_classes().items():
        for name in cls.model_fields:
            owners.setdefault(name, []).append(algo)
    return owners


def check_names(algo: str, names: Any) -> None:
    """ValueError for the first name that is not an option of `algo`."""
    fields = config_class(algo).model_fields
    owners = option_owners()
    for name in names:
        if name in fields:
            continue
        if name in owners:
            raise ValueError(f"{name}: not an option of {algo} (it applies to {', '.join(owners[name])})")
        close = difflib.get_close_matches(name, list(owners), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ValueError(f"{name}: unknown option{hint}")


def build(**options: Any) -> RunConfig:
    """The chosen algorithm's config (td3 unless `algo` says otherwise), options checked."""
    algo = options.setdefault("algo", DEFAULT_ALGO)
    cls = config_class(algo)
    check_names(algo, options)
    return cls(**options)


def resolved(payload: dict[str, Any]) -> Resolved:
    """A resolved config from its `model_dump()` (what a worker receives); checked, not re-resolved."""
    return resolved_type(config_class(payload.get("algo", DEFAULT_ALGO))).model_validate(payload)


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """['batch_size=64', 'sparsity=0.8'] -> typed values (YAML scalars), names checked."""
    owners = option_owners()
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--set {pair!r}: expected name=value")
        if name not in owners:
            close = difflib.get_close_matches(name, list(owners), n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else " (`dsrl-platform options` lists them)"
            raise ValueError(f"--set {name}: unknown option{hint}")
        try:
            out[name] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ValueError(f"--set {name}: cannot read the value {raw!r}") from None
    return out


def first_error(err: ValidationError, prefix: str = "") -> str:
    """One line naming the option and the problem, from a pydantic error."""
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    if not e["loc"]:  # a model-level check: its message starts with the option's name
        return f"{prefix}{msg}"
    where = ".".join(str(p) for p in e["loc"])
    value = e.get("input")
    shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
    return f"{prefix}{where}: {msg}{shown}"
