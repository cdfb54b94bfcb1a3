"""Servers on 127.0.0.1 that tests start themselves: the addresses a tracking URI can point at.

- `silent_server()`: accepts TCP connections and never answers (a hung server, a firewall that
  swallows requests);
- `not_mlflow_server()`: a real HTTP server that answers 404 to everything (a typo'd port that
  hits some other web service);
- `postgres_greeting_server()`: answers PostgreSQL's first message (an SSLRequest: "N", no SSL)
  and nothing more: a database port, for what happens before a driver logs in;
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


@contextlib.contextmanager
def postgres_greeting_server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        s.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(2)
                    try:
                        conn.recv(8)  # length 8, code 80877103
                        conn.sendall(b"N")
                    except OSError:
                        pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield s.getsockname()[1]
        finally:
            stop.set()
            thread.join(timeout=2)
