"""Checkpoints as plain data: never unpickle code from a checkpoint file.

A checkpoint directory holds `state.pt` (tensors, numbers, strings, lists, dicts: read with
`torch.load(weights_only=True)`, which refuses any other object) and `arrays.npz` (the numpy
arrays of the state — replay buffers, recorded actions — read with `allow_pickle=False`). In
the state tree each array is replaced by a reference to its entry in the npz file.

Writes are atomic: a checkpoint is written next to its directory and swapped in, so a crash
leaves the previous one.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE, ARRAYS_FILE = "state.pt", "arrays.npz"
_ARRAY_REF = "__npz__"


def _split(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = tree
        return {_ARRAY_REF: key}
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {k: _split(v, arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_split(v, arrays) for v in tree)
    return tree


def _join(tree: Any, arrays: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY_REF}:
            return arrays[tree[_ARRAY_REF]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_join(v, arrays) for v in tree)
    return tree


def save(state: dict[str, Any], directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    plain = _split(state, arrays)
    torch.save(plain, directory / STATE_FILE)
    np.savez(directory / ARRAYS_FILE, **arrays)


def load(directory: str | Path) -> dict[str, Any]:
    """The state saved in `directory`; ValueError (one line) if it is not a plain checkpoint."""
    directory = Path(directory)
    path = directory / STATE_FILE
    try:
        plain = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise ValueError(f"resume: no checkpoint in {directory}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, AttributeError) as err:
        # weights_only refuses any object that is not plain data (a planted checkpoint's code)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = f"it asks to run {found.group(1)}" if found else "it is not plain data"
        raise ValueError(f"resume: {path} is not a plain checkpoint of this platform; refused to load it ({reason})") from None
    try:
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ValueError(f"resume: {directory / ARRAYS_FILE} is missing") from None
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"resume: {directory / ARRAYS_FILE} is not a plain array file ({err})") from None
    return _join(plain, arrays)


def save_atomically(state: dict[str, Any], directory: Path) -> None:
    """Write a checkpoint next to `directory`, then swap it in: a crash leaves the old one."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=directory.parent))
    save(state, tmp)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
