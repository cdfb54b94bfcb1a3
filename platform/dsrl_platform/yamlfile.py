"""Reading the YAML files users write (experiment specs, dashboards): one mapping per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: Path, label: str, expected: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """The file's top-level mapping; `error("<label>: <problem>")` for a missing file, bad YAML
    (with its line) or another top level. `expected` names the keys a mapping should hold."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "yaml"
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise error(f"{label}: {where}: {problem}") from None
    if not isinstance(raw, dict):
        raise error(f"{label}: top level: expected a mapping with {expected} (got {type(raw).__name__})")
    return raw
