"""Servers on 127.0.0.1 that tests start themselves: the addresses a tracking URI can point at.

- `silent_server()`: accepts TCP connections and never answers (a hung server, a firewall that
  swallows requests);
- `not_mlflow_server()`: a real HTTP server that answers 404 to everything (a typo'd port that
  hits some other web service);
- `free_port()`: a port nothing listens on (refused connections).
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and says nothing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_error(404)

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def not_mlflow_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
