"""How the Exchange emulator signs mailboxes in: NTLM and Basic, as IIS in front of Exchange Server does.

Each emulator offers NTLM, Basic or both (``ExchangeEmulator(auth_methods=...)``). A request
without usable credentials gets a 401 with one ``WWW-Authenticate`` challenge per offered scheme,
in IIS's order: ``Negotiate`` and ``NTLM`` (Windows authentication), then ``Basic realm="host"``.

Basic is checked per request. NTLM authenticates the TCP connection: the client's NEGOTIATE
message gets a 401 carrying the server's CHALLENGE, its AUTHENTICATE message on the same
connection signs the connection in, and the connection's later requests are served without any
``Authorization`` header (IIS's default, and what requests_ntlm relies on). So the acceptor and
the signed-in mailbox live in the connection's state (``server.ConnectionState``), and every NTLM
response asks the server to keep the connection alive. A connection stays signed in while the
mailbox's password (or app password) is the one it signed in with: a changed password (``revoke``)
makes its next request start over, as a new connection to Exchange would.

The NTLM server side is pyspnego's acceptor (``spnego.server(protocol="ntlm",
options=NegotiateOptions.use_ntlm)``: its pure-Python NTLM, whatever the platform has), the library
requests_ntlm itself uses for the client side. It accepts raw NTLM tokens under both the ``NTLM``
and ``Negotiate`` schemes (requests_ntlm sends raw NTLM; SPNEGO-wrapped or Kerberos tokens are
refused). Its one limitation shapes this module: pyspnego 0.12 verifies an AUTHENTICATE message
only against the credential file named by the ``NTLM_USER_FILE`` environment variable (lines
``DOMAIN:USER:PASSWORD``; see ``spnego/_ntlm.py``: ``_get_credential_file`` reads the variable,
and neither ``spnego.server`` nor the acceptor takes a store or a callback). So:

- ``NTLM_USER_FILE`` is set once per process, at the first NTLM handshake, to a file of its own:
  ``exchange-emulator-ntlm-<pid>.users`` in the var dir the emulator was given
  (``ExchangeEmulator(var_dir=...)``; ``manage.py run_emulators`` gives ``settings.VAR_DIR``),
  else ``CALSYNC_VAR_DIR``, else the temporary directory; mode 0600, removed at exit. A value
  already in the environment is replaced (and logged): the emulator owns this variable in its
  process. Processes sharing a var dir (``make run``, parallel test workers) each have their own
  file.
- Under one process-wide lock, each AUTHENTICATE step writes the current mailboxes of the
  emulator serving it (``:email:password``, with each two-factor mailbox's app password), runs
  the acceptor and empties the file again, so several emulators in one process never see each
  other's users, and no password stays on disk between handshakes.
- User names are the e-mail addresses (what exchangelib sends): ``DOMAIN\\user`` logins are
  not emulated.
- A two-factor mailbox's normal password over NTLM gets the same ``X-MS-Diagnostics`` hint as
  over Basic: when the AUTHENTICATE message fails, a copy of the acceptor taken before the step
  checks it once more against the two-factor mailboxes' normal passwords.

https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/ (the NTLM messages)
https://learn.microsoft.com/en-us/exchange/architecture/client-access/authentication
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import copy
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego

from calendarsync.emulators.exchange_state import ExchangeState, Mailbox
from calendarsync.emulators.google_http import Request, Response, html_page
from calendarsync.emulators.server import ConnectionState

logger = logging.getLogger(__name__)

NTLM = "ntlm"
BASIC = "basic"
AUTH_METHODS = (NTLM, BASIC)
NTLM_SCHEMES = ("ntlm", "negotiate")
NTLM_SIGNATURE = b"NTLMSSP\x00"
NTLM_NEGOTIATE, NTLM_AUTHENTICATE = 1, 3
# What Microsoft's front end says when a password works but the account demands a second factor.
MFA_DIAGNOSTICS = (
    '4000001;reason="Multi-factor authentication is required for this account. '
    'Sign in with an app password.";error_category="mfa_required"'
)
# Where this module keeps its state in a connection's ``ConnectionState.data``.
HANDSHAKE_KEY = "exchange.ntlm_handshake"
SIGNED_IN_KEY = "exchange.ntlm_signed_in"


def normalize_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """("ntlm", "basic") in IIS's order; refuses an empty or unknown choice."""
    chosen = {method.strip().lower() for method in methods}
    unknown = chosen - set(AUTH_METHODS)
    if unknown or not chosen:
        raise ValueError(f"auth methods must be a non-empty subset of {AUTH_METHODS}, not {sorted(chosen)}")
    return tuple(method for method in AUTH_METHODS if method in chosen)


def challenge_headers(methods: Iterable[str], realm: str) -> list[tuple[str, str]]:
    """The 401's challenges, one header each, as IIS sends them."""
    headers: list[tuple[str, str]] = []
    if NTLM in methods:
        headers += [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")]
    if BASIC in methods:
        headers.append(("WWW-Authenticate", f'Basic realm="{realm}"'))
    return headers


def parse_basic(encoded: str) -> tuple[str, str]:
    """user and password of a Basic credential ("" for both when it does not decode)."""
    try:
        username, _, password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return username, password


def ntlm_message_type(token: bytes) -> int | None:
    """1 (NEGOTIATE), 2 (CHALLENGE) or 3 (AUTHENTICATE) for a raw NTLM message, else None."""
    if len(token) < 12 or not token.startswith(NTLM_SIGNATURE):
        return None
    return int.from_bytes(token[8:12], "little")


def decode_token(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        return b""


def accepted_secret(mailbox: Mailbox) -> str | None:
    """The one secret a mailbox signs in with: its app password if it has two-factor on."""
    return mailbox.app_password if mailbox.two_factor else mailbox.password


def sign_in_stamp(mailbox: Mailbox) -> tuple[str, str | None]:
    """What a signed-in connection depends on: the mailbox and the secret it signed in with."""
    return mailbox.email, accepted_secret(mailbox)


# --------------------------------------------------------------------------- the credential file


class _UserFile:
    """The process's ``NTLM_USER_FILE`` (see the module docstring): one per process, set once."""

    lock = threading.Lock()
    path: Path | None = None

    @classmethod
    def ensure(cls, var_dir: Path | None) -> Path:
        with cls.lock:
            if cls.path is None:
                base = var_dir or Path(os.environ.get("CALSYNC_VAR_DIR") or tempfile.gettempdir())
                base.mkdir(parents=True, exist_ok=True)
                path = base / f"exchange-emulator-ntlm-{os.getpid()}.users"
                cls._write(path, "")
                previous = os.environ.get("NTLM_USER_FILE")
                if previous and previous != str(path):
                    logger.warning("The Exchange emulator replaces NTLM_USER_FILE=%s with %s", previous, path)
                os.environ["NTLM_USER_FILE"] = str(path)  # read by pyspnego's NTLM acceptor
                atexit.register(cls._remove, path)
                cls.path = path
            return cls.path

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    @classmethod
    def step_with(cls, context: Any, token: bytes, users: list[tuple[str, str]]) -> bool:
        """Run the acceptor's AUTHENTICATE step against exactly these (e-mail, password) users."""
        lines = "".join(f":{email}:{password}\n" for email, password in users if ":" not in email)
        with cls.lock:
            if cls.path is None:
                raise RuntimeError("the NTLM user file is not set up")
            cls._write(cls.path, lines)
            try:
                context.step(token)
            except Exception:  # SpnegoError, or a malformed message pyspnego could not unpack
                return False
            finally:
                cls._write(cls.path, "")  # no password stays on disk between handshakes
        return bool(context.complete)


# --------------------------------------------------------------------------- NTLM per connection


@dataclass
class NtlmOutcome:
    """What one NTLM leg came to: a challenge to send, a signed-in mailbox, or a refusal."""

    challenge: str | None = None  # the CHALLENGE message (base64) for ``WWW-Authenticate``
    mailbox: Mailbox | None = None
    refused: bool = False
    two_factor: bool = False  # refused, but the mailbox's normal password was right (C5)


class NtlmAcceptor:
    """The server side of NTLM for one emulator (state lives on each connection)."""

    def __init__(self, var_dir: Path | None = None) -> None:
        self.var_dir = var_dir

    def negotiate(self, connection: dict[str, Any], token: bytes) -> NtlmOutcome:
        """A NEGOTIATE message: a fresh acceptor for this connection and its CHALLENGE."""
        _UserFile.ensure(self.var_dir)  # pyspnego refuses to build an acceptor without the file
        connection.pop(SIGNED_IN_KEY, None)
        # use_ntlm: pyspnego's own NTLM, never a platform one (SSPI, gss-ntlmssp) where installed.
        context = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
        try:
            challenge = context.step(token)
        except Exception:  # SpnegoError, or a malformed message pyspnego could not unpack
            connection.pop(HANDSHAKE_KEY, None)
            return NtlmOutcome(refused=True)
        connection[HANDSHAKE_KEY] = context
        return NtlmOutcome(challenge=base64.b64encode(challenge or b"").decode("ascii"))

    def authenticate(
        self, connection: dict[str, Any], token: bytes, mailboxes: dict[str, Mailbox]
    ) -> NtlmOutcome:
        """An AUTHENTICATE message on the connection that got our CHALLENGE."""
        context = connection.pop(HANDSHAKE_KEY, None)
        if context is None:  # no handshake on this connection: the client must start over
            return NtlmOutcome(refused=True)
        # A copy taken before the step, for the two-factor hint: the step consumes the context.
        second_opinion = copy.copy(context)
        accepted = [(m.email, secret) for m in mailboxes.values() if (secret := accepted_secret(m))]
        if _UserFile.step_with(context, token, accepted):
            mailbox = mailboxes.get(str(context.client_principal or "").rpartition("\\")[2].lower())
            if mailbox is not None:
                connection[SIGNED_IN_KEY] = sign_in_stamp(mailbox)
                return NtlmOutcome(mailbox=mailbox)
            return NtlmOutcome(refused=True)
        normal = [(m.email, m.password) for m in mailboxes.values() if m.two_factor]
        two_factor = bool(normal) and _UserFile.step_with(second_opinion, token, normal)
        return NtlmOutcome(refused=True, two_factor=two_factor)

    @staticmethod
    def signed_in(connection: dict[str, Any], mailboxes: dict[str, Mailbox]) -> Mailbox | None:
        """The mailbox this connection signed in as, while its password is unchanged."""
        stamp = connection.get(SIGNED_IN_KEY)
        if stamp is None:
            return None
        mailbox = mailboxes.get(stamp[0])
        if mailbox is None or sign_in_stamp(mailbox) != stamp:
            connection.pop(SIGNED_IN_KEY, None)
            return None
        return mailbox

    @staticmethod
    def forget(connection: dict[str, Any]) -> None:
        connection.pop(HANDSHAKE_KEY, None)
        connection.pop(SIGNED_IN_KEY, None)


# --------------------------------------------------------------------------- the emulator's side


class SignIn:
    """Who an EWS request signs in as (mixed into ``ExchangeEmulator``): ``_authenticate``."""

    state: ExchangeState
    auth_methods: tuple[str, ...]
    _ntlm: NtlmAcceptor
    _counts: Counter[str]
    _auth_counts: Counter[str]

    def _authenticate(self, req: Request, connection: ConnectionState) -> Mailbox | Response:
        """The mailbox signing in, or the 401 to send (a challenge, or a refusal)."""
        scheme, _, credential = (req.header("authorization") or "").strip().partition(" ")
        scheme = scheme.lower()
        methods = self.auth_methods
        if scheme in NTLM_SCHEMES and NTLM in methods:
            # The handshake's legs and the signed-in connection's requests need the connection kept
            # (Basic requests close it, as they always did here: NTLM alone needs keep-alive).
            connection.keep_alive = True
            return self._ntlm_leg(req, connection, scheme, decode_token(credential))
        if scheme == BASIC and BASIC in methods:
            return self._basic(req, credential)
        if scheme:  # credentials in a scheme this server does not offer: refused
            return self._refused(req)
        if NTLM in methods:
            connection.keep_alive = True
            with self.state.lock:
                mailbox = self._ntlm.signed_in(connection.data, self.state.mailboxes)
            if mailbox is not None:
                self._count_auth("ntlm-connection-reused")
                return mailbox
        self._count_auth("challenge")
        return self._unauthorized(self._challenges(req))

    def _basic(self, req: Request, credential: str) -> Mailbox | Response:
        username, password = parse_basic(credential)
        # DOMAIN\user and user@domain both name the mailbox.
        username = username.rpartition("\\")[2].strip().lower()
        with self.state.lock:
            mailbox = self.state.mailboxes.get(username)
            if mailbox is not None and mailbox.accepts(password):
                self._auth_counts["basic-signed-in"] += 1
                return mailbox
            mfa = mailbox is not None and mailbox.two_factor and password == mailbox.password
        return self._refused(req, two_factor=mfa)

    def _ntlm_leg(
        self, req: Request, connection: ConnectionState, scheme: str, token: bytes
    ) -> Mailbox | Response:
        kind = ntlm_message_type(token)
        label = "Negotiate" if scheme == "negotiate" else "NTLM"
        if kind == NTLM_NEGOTIATE:
            outcome = self._ntlm.negotiate(connection.data, token)
            if outcome.challenge is not None:
                self._count_auth("ntlm-negotiate")
                # The CHALLENGE leg's 401 carries that one challenge only.
                return self._unauthorized([("WWW-Authenticate", f"{label} {outcome.challenge}")])
            return self._refused(req)
        if kind == NTLM_AUTHENTICATE:
            with self.state.lock:
                mailboxes = dict(self.state.mailboxes)
            outcome = self._ntlm.authenticate(connection.data, token, mailboxes)
            if outcome.mailbox is not None:
                self._count_auth("ntlm-signed-in")
                return outcome.mailbox
            return self._refused(req, two_factor=outcome.two_factor)
        self._ntlm.forget(connection.data)
        return self._refused(req)  # not an NTLM message (SPNEGO, Kerberos): not emulated

    def _refused(self, req: Request, *, two_factor: bool = False) -> Response:
        """Credentials were sent and are wrong: counted as "401", with the C5 hint if it applies."""
        with self.state.lock:
            self._counts["401"] += 1
        hint = [("X-MS-Diagnostics", MFA_DIAGNOSTICS)] if two_factor else []
        return self._unauthorized(self._challenges(req) + hint)

    def _challenges(self, req: Request) -> list[tuple[str, str]]:
        return challenge_headers(self.auth_methods, req.header("host") or "exchange")

    @staticmethod
    def _unauthorized(headers: list[tuple[str, str]]) -> Response:
        body = html_page(
            "401 - Unauthorized", "<h1>401 - Unauthorized: Access is denied due to invalid credentials.</h1>"
        )
        return Response(401, body.encode(), "text/html; charset=utf-8", headers)

    def _count_auth(self, what: str) -> None:
        with self.state.lock:
            self._auth_counts[what] += 1

    def auth_counts(self) -> dict[str, int]:
        """Sign-in events: "challenge" (a 401 to a request without credentials), "ntlm-negotiate"
        (a CHALLENGE sent), "ntlm-signed-in" (a connection signed in), "ntlm-connection-reused" (a
        request served on a signed-in connection without a new handshake), "basic-signed-in"."""
        with self.state.lock:
            return dict(self._auth_counts)

    def set_auth_methods(self, methods: Iterable[str]) -> None:
        """Offer NTLM, Basic or both ("ntlm", "basic") from the next request on (``reset`` restores
        what the emulator was built with)."""
        chosen = normalize_methods(methods)
        with self.state.lock:
            self.auth_methods = chosen
