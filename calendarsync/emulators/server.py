"""Serve a WSGI app (one of the provider emulators) from a background thread on loopback.

Tests run the emulators in-process behind this server so the real client libraries talk to
them over real sockets; `manage.py run_emulators` uses it for local development.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import sys
import threading
from types import TracebackType
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIApplication

logger = logging.getLogger(__name__)


class DropConnection(Exception):
    """Raised by an emulator to close the client's connection without any response (a reset)."""


class _ServerHandler(ServerHandler):
    """wsgiref's handler, without stderr tracebacks, that turns DropConnection into a reset."""

    dropped = False

    def handle_error(self) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DropConnection):
            self.dropped = True
            return
        super().handle_error()

    def log_exception(self, exc_info: Any) -> None:
        logger.error("emulator request failed", exc_info=exc_info)


class _RequestHandler(WSGIRequestHandler):
    # A client that connects and never sends must not hold a thread forever.
    timeout = 60

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]  # a socket writer, as in wsgiref itself
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back pointer for logging
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if handler.dropped:
            self._reset_connection()

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the client sees a connection
        # reset instead of a clean end of stream.
        server = self.server
        if not isinstance(server, _ThreadingWSGIServer):
            return
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.mark_dropped(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _RequestHandler)
        self._dropped: set[int] = set()
        self._dropped_lock = threading.Lock()

    def mark_dropped(self, connection: socket.socket) -> None:
        with self._dropped_lock:
            self._dropped.add(id(connection))

    def shutdown_request(self, request: Any) -> None:
        with self._dropped_lock:
            dropped = id(request) in self._dropped
            self._dropped.discard(id(request))
        if dropped:
            # No shutdown(SHUT_WR): that would send a FIN before the RST.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-request are normal for an emulator under fault injection.
        logger.debug("emulator connection from %s failed", client_address, exc_info=True)


class EmulatorServer:
    """A threaded WSGI server on a background thread; use as a context manager or start()/stop()."""

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator server is not running")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        server = _ThreadingWSGIServer((self.host, self.port))
        server.set_app(self.app)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def serve_until_interrupted(self) -> None:
        """Block the calling thread until Ctrl-C (for the management command)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["DropConnection", "EmulatorServer"]
