"""Where the tracking store is: one rule for every command."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(cli_value: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else a SQLite file in the working directory.

    Always absolute: Ray Tune trials change into their own directory.
    """
    uri = cli_value or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return f"sqlite:///{Path.cwd().resolve() / DEFAULT_DB}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    if "://" not in uri:  # a bare path: treat as a SQLite file
        return f"sqlite:///{Path(uri).resolve()}"
    return uri


def check_store_exists(uri: str, hint: str = "pass --tracking-uri or set MLFLOW_TRACKING_URI") -> None:
    """Readers refuse a missing SQLite file: opening one would create an empty store."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ValueError(f"tracking store {uri}: no such file ({hint})")
