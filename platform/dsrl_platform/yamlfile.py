"""Reading the YAML files users write (experiment specs, dashboards): one mapping per file.

Stricter than `yaml.safe_load`: a key given twice in one mapping is an error naming both lines
(PyYAML silently keeps the last, so a second `name:` would quietly rename an experiment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (merge keys `<<` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if seen is not None:
                raise ConstructorError(None, None, f"duplicate key {key!r} (first at line {seen})",
                                       key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_mapping(path: Path, label: str, expected: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """The file's top-level mapping; `error("<label>: <problem>")` for a file that cannot be read
    (missing, a directory, not UTF-8), bad YAML (with its line), a duplicate key or another top
    level. `expected` names the keys a mapping should hold."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except IsADirectoryError:
        raise error(f"{label}: is a directory, not a YAML file") from None
    except UnicodeDecodeError as err:
        raise error(f"{label}: not a UTF-8 text file (byte 0x{err.object[err.start]:02x} at offset {err.start})") \
            from None
    except OSError as err:
        raise error(f"{label}: cannot be read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "yaml"
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise error(f"{label}: {where}: {problem}") from None
    if not isinstance(raw, dict):
        raise error(f"{label}: top level: expected a mapping with {expected} (got {type(raw).__name__})")
    return raw
