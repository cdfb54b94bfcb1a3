"""Where the tracking store is: the accepted forms of a tracking URI, one rule for every command.

Checked before anything connects, so a typo is one line naming the URI and the forms accepted:

- `sqlite:///PATH.db` (three slashes; a relative PATH is made absolute, because Ray Tune trials
  change directory) or a bare path such as `./mlflow.db`: a SQLite file;
- `http(s)://HOST[:PORT][/PREFIX]`: an MLflow tracking server;
- `postgresql|mysql|mssql[+DRIVER]://USER@HOST[:PORT]/DB`: a database MLflow manages.

MLflow's file stores (`file:` URIs, directories) are refused: several Ray workers writing one
directory store lose runs. Nothing here does I/O beyond looking at the local file system.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DB = "mlflow.db"
ACCEPTED = "sqlite:///PATH.db, http(s)://HOST:PORT or postgresql|mysql|mssql[+DRIVER]://USER@HOST/DB"
DATABASES = ("postgresql", "mysql", "mssql")
SERVERS = ("http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def resolve(cli_value: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else ./mlflow.db; checked and made absolute."""
    uri = (cli_value or os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if not uri:
        return f"sqlite:///{Path.cwd().resolve() / DEFAULT_DB}"
    if not _SCHEME.match(uri):  # a bare path: a SQLite file
        return _sqlite(uri, Path(uri))
    scheme = scheme_of(uri)
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///"):
            raise _bad(uri, "a SQLite URI has three slashes: sqlite:///relative.db or sqlite:////absolute/path.db")
        return _sqlite(uri, Path(uri.removeprefix("sqlite:///")))
    if scheme == "file":
        raise _bad(uri, "MLflow file stores are not supported (Ray workers writing one directory lose runs)")
    if scheme in SERVERS or scheme.split("+")[0] in DATABASES:
        if not urlsplit(uri).hostname:
            raise _bad(uri, "no host in it")
        return uri
    close = difflib.get_close_matches(scheme, ["sqlite", *SERVERS, *DATABASES], n=1)
    raise _bad(uri, f"unsupported scheme {scheme!r}" + (f" (did you mean {close[0]}?)" if close else ""))


def _sqlite(uri: str, path: Path) -> str:
    if str(path) in ("", ":memory:"):
        raise _bad(uri, "an in-memory store would vanish with the process; name a file")
    return f"sqlite:///{path.expanduser().resolve()}"


def _bad(uri: str, problem: str) -> ValueError:
    return ValueError(f"tracking store {shown(uri)}: {problem}; accepted: {ACCEPTED}")


def scheme_of(uri: str) -> str:
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


def is_server(uri: str) -> bool:
    return scheme_of(uri) in SERVERS


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def network_address(uri: str) -> tuple[str, int] | None:
    """(host, port) of a server or database URI, None for a SQLite file."""
    scheme = scheme_of(uri).split("+")[0]
    if scheme not in _DEFAULT_PORTS:
        return None
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:  # e.g. http://host:port with a non-numeric port
        raise _bad(uri, "the port is not a number") from None
    return parts.hostname or "", port or _DEFAULT_PORTS[scheme]


def shown(uri: str) -> str:
    """The URI as printed: a password in it is masked."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", uri)


def check_readable(uri: str, hint: str = "pass --tracking-uri or set MLFLOW_TRACKING_URI") -> None:
    """Readers refuse a missing SQLite file: opening one would create an empty store."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        problem = "is a directory, not a SQLite file" if path.is_dir() else "no such file"
        raise ValueError(f"tracking store {uri}: {problem} ({hint})")


def check_creatable(uri: str) -> None:
    """Writers may create a SQLite file, but not the directories above it."""
    path = sqlite_path(uri)
    if path is None or path.is_file():
        return
    if path.is_dir():
        raise ValueError(f"tracking store {uri}: is a directory, not a SQLite file")
    if not path.parent.is_dir():
        raise ValueError(f"tracking store {uri}: directory {path.parent} does not exist (create it, or choose "
                         f"another path)")
