"""HTTPS for the emulators: a throwaway certificate authority (trustme) and a TLS `EmulatorServer`.

msal talks to the identity platform over HTTPS only, so the Microsoft identity emulator is served
with a certificate from a test CA; clients trust it through a CA bundle file (MICROSOFT_CA_BUNDLE).
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any
from wsgiref.types import WSGIApplication

import trustme

from calendarsync.emulators.server import EmulatorServer, _ThreadingWSGIServer

HANDSHAKE_TIMEOUT_SECONDS = 10


class TestAuthority:
    """A certificate authority for loopback servers; `write_ca_bundle` gives clients what to trust."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self._ca = trustme.CA(organization_name="CalSync emulator test CA")
        self._leaf = self._ca.issue_cert("127.0.0.1", "localhost", "::1")

    @property
    def ca_pem(self) -> bytes:
        return bytes(self._ca.cert_pem.bytes())

    def write_ca_bundle(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.ca_pem)
        return path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context


class _TlsWSGIServer(_ThreadingWSGIServer):
    """Accepts TCP, then does the TLS handshake in the request's own thread (a slow client blocks no one)."""

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address)

    def setup_environ(self) -> None:
        super().setup_environ()
        self.base_environ["HTTPS"] = "on"  # wsgiref derives wsgi.url_scheme from it

    def finish_request(self, request: Any, client_address: Any) -> None:
        if not isinstance(request, socket.socket):
            return
        tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            tls.close()
            return
        try:
            # The handler only needs a server with get_app(), which this is.
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            tls.close()


class TlsEmulatorServer(EmulatorServer):
    """`EmulatorServer` over HTTPS with the given server context."""

    def __init__(
        self, app: WSGIApplication, context: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(app, host, port)
        self.context = context

    @property
    def url(self) -> str:
        return "https" + super().url.removeprefix("http")

    def start(self) -> TlsEmulatorServer:
        if self._server is not None:
            return self
        server = _TlsWSGIServer((self.host, self.port), self.context)
        server.set_app(self.app)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-tls-server",
            daemon=True,
        )
        self._thread.start()
        return self


__all__ = ["TestAuthority", "TlsEmulatorServer"]
