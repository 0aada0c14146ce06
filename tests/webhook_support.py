"""A webhook receiver on loopback for the tests and benchmarks: a real HTTP server on a thread
that keeps every request (headers, body, time received) and can answer slowly or with an
error status."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """``start()`` listens on ``port`` (the same port again after ``stop()``: a receiver that
    goes down and comes back). ``received``: ``(monotonic time, headers, body, status
    answered)`` per request; ``status`` may be a function called per request."""

    def __init__(
        self,
        port: int | None = None,
        status: int | Callable[[], int] = 200,
        delay: float = 0.0,
    ) -> None:
        self.port = port or free_port()
        self.status = status
        self.delay = delay
        self.received: list[tuple[float, dict[str, str], bytes, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if owner.delay:
                    time.sleep(owner.delay)
                code = owner.status() if callable(owner.status) else owner.status
                with owner._lock:
                    headers = {**dict(self.headers), "x-path": self.path}
                    owner.received.append((time.monotonic(), headers, body, code))
                self.send_response(code)
                if 300 <= code < 400:  # a redirect to another path of this receiver
                    self.send_header("location", f"http://127.0.0.1:{owner.port}/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            request_queue_size = 256  # the default 5 resets connections under load

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        """The ``webhook-id`` of every request received, in order (duplicates kept)."""
        with self._lock:
            return [
                {k.lower(): v for k, v in h.items()}.get("webhook-id", "")
                for _, h, _, _ in self.received
            ]

    def verified(self, secret: str, ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Every body received (of the events ``ids``, when given), each verified with the
        Standard Webhooks library."""
        with self._lock:
            got = list(self.received)
        out = []
        for _, headers, body, _ in got:
            lower = {k.lower(): v for k, v in headers.items()}
            if ids is not None and lower.get("webhook-id") not in ids:
                continue
            out.append(Webhook(secret).verify(body, lower))
        return out

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(b) for _, _, b, _ in self.received]


def ok_ids(rx: Receiver) -> list[str]:
    """The ``webhook-id`` of every request the receiver answered with a 2xx."""
    with rx._lock:
        return [
            {k.lower(): v for k, v in h.items()}.get("webhook-id", "")
            for _, h, _, code in rx.received
            if 200 <= code < 300
        ]
