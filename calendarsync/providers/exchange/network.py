"""Where CalSync may send an Exchange password: public addresses, plus ``EXCHANGE_ALLOWED_NETWORKS``.

A user types the Exchange server URL (or autodiscover finds it), and the server then sends their
e-mail and password there. Without a rule, that is a server-side request forgery: the cloud
metadata service (169.254.169.254), the database on 10.0.0.5 or a port on loopback would get
the request and, through the error text, tell which ports are open. So:

- every address CalSync connects to for Exchange must be public: not loopback, private,
  link-local, multicast, reserved, shared (100.64/10) or unspecified, IPv4 or IPv6, including
  IPv4 addresses wrapped in IPv6 (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, 6to4,
  Teredo, NAT64); ``EXCHANGE_ALLOWED_NETWORKS`` lets a self-hosted install reach its own server;
- the rule is applied to the address the socket actually connects to, when it connects
  (``GuardedHTTPAdapter``), so a DNS answer that changes between a check and the connection
  (DNS rebinding) gains nothing. exchangelib builds every session, autodiscover's included,
  with ``BaseProtocol.HTTP_ADAPTER_CLS``; ``install_network_guard`` sets it to ours.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from exchangelib.protocol import BaseProtocol
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it through a
# translator: NAT64's well-known and local-use prefixes (RFC 6052, RFC 8215).
NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# IPv4-compatible IPv6 addresses (::a.b.c.d, deprecated by RFC 4291 section 2.5.5.1).
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class BlockedAddress(OSError):
    """CalSync may not connect to this address for Exchange (an ``OSError``: a failed connection)."""

    def __init__(self, host: str, addresses: Iterable[str] = ()) -> None:
        refused = ", ".join(addresses) or "no address"
        super().__init__(f"Exchange connections to {host} ({refused}) are not allowed")
        self.host = host


# --------------------------------------------------------------------------- the address rule


def allowed_networks() -> tuple[IPNetwork, ...]:
    """``EXCHANGE_ALLOWED_NETWORKS``, read at every check (settings parses it; tests override it)."""
    configured: Iterable[Any] = getattr(settings, "EXCHANGE_ALLOWED_NETWORKS", ()) or ()
    return tuple(ipaddress.ip_network(str(network), strict=False) for network in configured)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to through a transition mechanism, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where packets go
    if any(address in prefix for prefix in NAT64_PREFIXES) or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: IPAddress) -> bool:
    """Globally reachable unicast: every special-purpose class is refused.

    ``ipaddress``'s flags follow the IANA special-purpose registries:
    https://docs.python.org/3.11/library/ipaddress.html#ipaddress.IPv4Address.is_global
    """
    special = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        special = special or address.is_site_local or (embedded is not None and not _is_public(embedded))
    return not special


def _in_allowed_networks(address: IPAddress) -> bool:
    return any(address.version == network.version and address in network for network in allowed_networks())


def address_allowed(address: str) -> bool:
    """May CalSync connect to this IP address (as a string, e.g. a socket's peer) for Exchange?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket: judge (and allow) it as IPv4.
        ip = ip.ipv4_mapped
    return _in_allowed_networks(ip) or _is_public(ip)


# --------------------------------------------------------------------------- checks by name


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """getaddrinfo for a TCP connection, in the address families urllib3 would use."""
    # https://docs.python.org/3.11/library/socket.html#socket.getaddrinfo
    return socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)


def check_host(host: str, port: int) -> None:
    """Resolve ``host``; raise ``BlockedAddress`` unless at least one address is allowed.

    ``socket.gaierror`` (an ``OSError``) when the name does not resolve. A check before any
    request, for an early refusal: the connection itself is checked again (``GuardedHTTPAdapter``).
    """
    addresses = [str(info[4][0]) for info in resolve(host, port)]
    if not any(address_allowed(address) for address in addresses):
        raise BlockedAddress(host, addresses)


def check_url(url: str) -> None:
    """``check_host`` for the host and port of a URL (``BlockedAddress`` for a URL without a host)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise BlockedAddress(url)
    check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


# Microsoft's endpoint lists (MicrosoftDocs/microsoft-365-docs, microsoft-365/includes/
# office-365-worldwide-endpoints.md, office-365-operated-by-21vianet-endpoints.md and
# microsoft-365/enterprise/microsoft-365-u-s-government-{gcc-high,dod}-endpoints.md):
# https://learn.microsoft.com/en-us/microsoft-365/enterprise/urls-and-ip-address-ranges
EXCHANGE_ONLINE_HOSTS: tuple[str, ...] = (
    # Worldwide (and GCC): "outlook.office.com, outlook.office365.com" (endpoint set 1).
    "outlook.office365.com",
    "outlook.office.com",
    # Worldwide: "*.outlook.com" (set 8), Exchange Online's older pod hosts (podNNNNN.outlook.com)
    # and its autodiscover (autodiscover-s.outlook.com).
    "outlook.com",
    # US Government GCC High: "outlook.office365.us".
    "outlook.office365.us",
    # US Government DoD: "outlook-dod.office365.us, webmail.apps.mil".
    "outlook-dod.office365.us",
    "webmail.apps.mil",
    # Operated by 21Vianet in China: "partner.outlook.cn, *.partner.outlook.cn".
    "partner.outlook.cn",
    # Microsoft Cloud Deutschland (closed; its mailboxes moved to outlook.office365.com).
    "outlook.office.de",
)


def is_exchange_online(url: str) -> bool:
    """Is the URL's host a Microsoft 365 EWS host (or a subdomain of one)?"""
    host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    return any(host == online or host.endswith(f".{online}") for online in EXCHANGE_ONLINE_HOSTS)


class ExchangeOnlineHost(OSError):
    """A request to Exchange Online: EWS there is off (issue #16); refused like a closed port."""


_online_refusals = threading.local()


@contextmanager
def exchange_online_refusals() -> Iterator[list[str]]:
    """Collect the Exchange Online URLs the guard refused in this thread meanwhile (autodiscover
    sent on to Microsoft 365 means the mailbox is there)."""
    refused: list[str] = []
    previous = getattr(_online_refusals, "urls", None)
    _online_refusals.urls = refused
    try:
        yield refused
    finally:
        _online_refusals.urls = previous


def _refuse_exchange_online(url: str) -> None:
    if is_exchange_online(url):
        collected = getattr(_online_refusals, "urls", None)
        if collected is not None:
            collected.append(url)
        raise ExchangeOnlineHost(f"{urlsplit(url).hostname} is Exchange Online")


def plain_http_allowed(url: str) -> bool:
    """A password goes over plain http only with DEBUG on, or to an allowed loopback host (the
    local emulator of ``make run`` and the tests); everything else needs https."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return True
    if settings.DEBUG:
        return True
    host = (parts.hostname or "").lower()
    host = "127.0.0.1" if host == "localhost" else host
    try:
        return ipaddress.ip_address(host).is_loopback and address_allowed(host)
    except ValueError:
        return False


def blocked_address_in(exc: BaseException) -> BlockedAddress | None:
    """The ``BlockedAddress`` behind a failure, however requests and exchangelib wrapped it.

    urllib3 wraps it (``ProtocolError``/``MaxRetryError``), requests in ``ConnectionError``, and
    exchangelib re-raises that as ``ErrorTimeoutExpired`` inside its ``except`` block, so the
    original is on the ``__cause__``/``__context__`` chain or in the wrappers' ``args``/``reason``.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BlockedAddress):
            return current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return None


# --------------------------------------------------------------------------- the connection guard


def _set_socket_options(sock: socket.socket, options: Iterable[tuple[int, int, int | bytes]] | None) -> None:
    for level, name, value in options or ():
        sock.setsockopt(level, name, value)


def connect_to_allowed_address(
    host: str,
    port: int,
    timeout: Any,
    *,
    source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """urllib3's ``create_connection``, connecting only to allowed addresses of ``host``.

    Each address getaddrinfo gives is checked before the connection is tried, and the socket's
    peer once connected: what is checked is what the request goes to.
    https://urllib3.readthedocs.io/en/stable/reference/urllib3.connection.html
    """
    refused: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _name, sockaddr in resolve(host, port):
        if not address_allowed(str(sockaddr[0])):
            refused.append(str(sockaddr[0]))
            continue
        sock = socket.socket(family, kind, proto)
        try:
            _set_socket_options(sock, socket_options)
            if isinstance(timeout, int | float):  # urllib3 passes a sentinel for "the default"
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            peer = str(sock.getpeername()[0])
            if not address_allowed(peer):
                raise BlockedAddress(host, [peer])
        except BlockedAddress:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    if last_error is not None:
        raise last_error
    logger.info("Refused an Exchange connection to %s: %s", host, ", ".join(refused) or "no address")
    raise BlockedAddress(host, refused)


def _open_guarded(conn: HTTPConnection) -> socket.socket:
    """Stands in for urllib3's ``HTTPConnection._new_conn`` (where it opens the socket), same errors."""
    try:
        return connect_to_allowed_address(
            conn.host,
            conn.port,
            conn.timeout,
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except BlockedAddress:
        raise
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc


class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _open_guarded(self)


class GuardedHTTPSConnection(HTTPSConnection):
    # TLS is then set up on this socket with the URL's host name (SNI, certificate check).
    def _new_conn(self) -> socket.socket:
        return _open_guarded(self)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedHTTPAdapter(HTTPAdapter):
    """requests' adapter whose connections go only to allowed addresses (see the module's docstring).

    Through an outgoing proxy the proxy connects, not us: the target's name is then checked
    before the request (the proxy resolves it again, so that check cannot see a rebinding).
    https://requests.readthedocs.io/en/latest/user/advanced/#transport-adapters
    """

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        # https://urllib3.readthedocs.io/en/stable/reference/urllib3.poolmanager.html (pool classes per scheme)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        try:
            # Nothing, credentials least of all, goes to Exchange Online (EWS is off there).
            _refuse_exchange_online(request.url or "")
        except ExchangeOnlineHost as exc:
            raise requests.exceptions.ConnectionError(exc, request=request) from exc
        if proxies and request.url and select_proxy(request.url, dict(proxies)):
            try:
                check_url(request.url)
            except OSError as exc:  # as a refused connection, which exchangelib handles
                raise requests.exceptions.ConnectionError(exc, request=request) from exc
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


_install_lock = threading.Lock()


def install_network_guard() -> None:
    """Make every exchangelib session (EWS and autodiscover) use ``GuardedHTTPAdapter``.

    exchangelib's documented way to choose the adapter of its sessions:
    https://ecederstrand.github.io/exchangelib/#proxies-and-custom-tls-validation
    (``BaseProtocol.get_adapter`` builds ``HTTP_ADAPTER_CLS`` for each new session). Its requests
    go to the mounted endpoint only, never following redirects (``allow_redirects=False`` in
    exchangelib.util.post_ratelimited and exchangelib.transport).
    """
    with _install_lock:
        if BaseProtocol.HTTP_ADAPTER_CLS is not GuardedHTTPAdapter:
            BaseProtocol.HTTP_ADAPTER_CLS = GuardedHTTPAdapter
