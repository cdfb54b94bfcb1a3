"""Checks on directories a command will write, made before it writes anything."""

from __future__ import annotations

import os
from pathlib import Path


def check_can_be_directory(path: Path, label: str) -> None:
    """`path` is a writable directory, or can be created as one: its nearest existing ancestor is
    a writable directory. ValueError "<label>: <problem>" otherwise."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{label}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{label}: {existing} is not writable")
