"""Serve a WSGI app (one of the provider emulators) from a background thread on loopback.

Tests run the emulators in-process behind this server so the real client libraries talk to
them over real sockets; `manage.py run_emulators` uses it for local development.

Connections: one request per connection (HTTP/1.0 style), unless the app keeps a connection
open. NTLM authenticates a TCP connection, not a request (its three legs ride one keep-alive
connection, and IIS then serves that connection's later requests without a new handshake), so
an app can ask for HTTP/1.1 keep-alive response by response: every request's environ carries
``calsync.connection``, one ``ConnectionState`` per TCP connection, whose ``data`` the app may
use for per-connection state (the Exchange emulator keeps its NTLM acceptor there) and whose
``keep_alive`` it sets to keep the connection open after this response. Only responses with a
Content-Length to HTTP/1.1 requests that did not ask to close are kept alive.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import sys
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIApplication

logger = logging.getLogger(__name__)


# The environ key of the request's ``ConnectionState``.
CONNECTION_KEY = "calsync.connection"
# How long a kept-alive connection may sit idle before the server closes it (IIS: 120 s).
KEEP_ALIVE_IDLE_SECONDS = 60


class DropConnection(Exception):
    """Raised by an emulator to close the client's connection without any response (a reset)."""


@dataclass
class ConnectionState:
    """One TCP connection, as its requests' WSGI environ sees it (``environ[CONNECTION_KEY]``)."""

    # What the app remembers about this connection between its requests.
    data: dict[str, Any] = field(default_factory=dict)
    # Set by the app during a request: keep the connection open after this response.
    keep_alive: bool = False
    # Requests served on this connection so far (the current one included).
    requests: int = 0


class _BodyReader:
    """``wsgi.input`` limited to the request's Content-Length, so what the app leaves unread can
    be skipped before the next request on a kept-alive connection."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.readline(size) if size else b""
        self.remaining -= len(data)
        return data

    def drain(self) -> None:
        while self.remaining > 0 and self.read(min(self.remaining, 65536)):
            pass


class _ServerHandler(ServerHandler):
    """wsgiref's handler, without stderr tracebacks, that turns DropConnection into a reset."""

    dropped = False
    connection: ConnectionState | None = None
    keep_alive_allowed = False

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # The app has run (our apps return their whole body): keep the connection only if it asked
        # to, the request allows it and the body's end is known without closing.
        headers = getattr(self, "headers", None)  # wsgiref's response headers (set by start_response)
        keeping = bool(
            self.keep_alive_allowed
            and self.connection is not None
            and self.connection.keep_alive
            and headers is not None
            and "Content-Length" in headers
        )
        if self.connection is not None:
            self.connection.keep_alive = keeping
        if keeping:
            self.http_version = "1.1"

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
    timeout = KEEP_ALIVE_IDLE_SECONDS

    def handle(self) -> None:
        """Serve the connection's requests: one, or more while the app keeps it alive."""
        state = ConnectionState()
        while self._handle_one(state):
            server = self.server
            if isinstance(server, _ThreadingWSGIServer):
                server.track_idle(self.connection, idle=True)
            try:
                self.raw_requestline = self.rfile.readline(65537)
            except OSError:  # idle too long, or closed by EmulatorServer.stop()
                return
            finally:
                if isinstance(server, _ThreadingWSGIServer):
                    server.track_idle(self.connection, idle=False)
            if not self.raw_requestline:
                return  # the client closed the connection

    def _handle_one(self, state: ConnectionState) -> bool:
        """One request (its request line read already, except for the first); True to go on."""
        if state.requests == 0:
            self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return False
        # HTTP/1.1 parsing: a request may ask to keep the connection (wsgiref defaults to 1.0).
        self.protocol_version = "HTTP/1.1"
        if not self.parse_request():
            return False
        state.requests += 1
        state.keep_alive = False
        environ = self.get_environ()
        environ[CONNECTION_KEY] = state
        body: _BodyReader | None = None
        chunked = "chunked" in str(self.headers.get("Transfer-Encoding", "")).lower()
        if not chunked:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length >= 0:
                body = _BodyReader(self.rfile, length)  # type: ignore[arg-type]  # a socket reader
        handler = _ServerHandler(
            body or self.rfile,  # type: ignore[arg-type]  # wsgiref only reads from it
            self.wfile,  # type: ignore[arg-type]  # a socket writer, as in wsgiref itself
            self.get_stderr(),
            environ,
            multithread=True,
        )
        handler.connection = state
        handler.keep_alive_allowed = body is not None and not self.close_connection
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back pointer for logging
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if handler.dropped:
            self._reset_connection()
            return False
        if not state.keep_alive or body is None:
            return False
        try:
            body.drain()
            self.wfile.flush()
        except OSError:
            return False
        return True

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
        # Kept-alive connections waiting for their next request (closed by close_idle_connections).
        self._idle: set[socket.socket] = set()

    def mark_dropped(self, connection: socket.socket) -> None:
        with self._dropped_lock:
            self._dropped.add(id(connection))

    def track_idle(self, connection: socket.socket, *, idle: bool) -> None:
        with self._dropped_lock:
            if idle:
                self._idle.add(connection)
            else:
                self._idle.discard(connection)

    def close_idle_connections(self) -> None:
        """Wake the threads waiting on kept-alive connections: their clients see the connection end."""
        with self._dropped_lock:
            idle, self._idle = list(self._idle), set()
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

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
        server.close_idle_connections()
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


__all__ = ["CONNECTION_KEY", "ConnectionState", "DropConnection", "EmulatorServer"]
