"""A stateful local emulator of Exchange Web Services (EWS) for the calendar: SOAP over HTTP, NTLM and Basic.

`ExchangeEmulator()` is a WSGI application; serve it with `EmulatorServer` and give the app the
server URL `{base}/EWS/Exchange.asmx`. Tests play the user (in Outlook) and the Exchange admin
through the Python methods below; the same controls are served as JSON under /_control/ and a
demo page at /.

Sign-in (``exchange_auth``): each emulator offers NTLM, Basic or both (``auth_methods``, default
both, as an Exchange Server whose EWS directory has Windows authentication and Basic on) and
answers a request without usable credentials with IIS's 401 challenges (``WWW-Authenticate:
Negotiate``, ``NTLM``, ``Basic realm="..."``). NTLM runs pyspnego's acceptor over a kept-alive
connection. A two-factor mailbox refuses its normal password with a 401 whose ``X-MS-Diagnostics``
header says multi-factor authentication is required, and accepts only its app password (SPEC
C5; Microsoft's account page issues app passwords for such accounts).

Server version (``server_version``): every response's ``ServerVersionInfo`` header says which
Exchange this is, Exchange Server 2016 (15.1) by default or 2019 (15.2) (``EXCHANGE_2016``,
``EXCHANGE_2019`` in ``exchange_xml``). The calendar operations emulated here behave the same on
both, as on the real servers.

Semantics: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-operations-in-exchange
(see PROVIDERS.md, Exchange section).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from calendarsync.emulators.exchange_auth import (
    AUTH_METHODS,
    MFA_DIAGNOSTICS,
    NtlmAcceptor,
    SignIn,
    normalize_methods,
)
from calendarsync.emulators.exchange_meeting_controls import MeetingControls
from calendarsync.emulators.exchange_occurrences import check_occurrence_move
from calendarsync.emulators.exchange_ops import OPERATIONS
from calendarsync.emulators.exchange_pages import handle_control, handle_demo
from calendarsync.emulators.exchange_resolve import ACCESS_DENIED, ITEM_NOT_FOUND, Context
from calendarsync.emulators.exchange_state import (
    CALENDAR,
    DELETED_ITEMS,
    ExchangeState,
    ItemFault,
    Mailbox,
    StoredItem,
    data_summary,
    now,
    parse_occurrence_id,
    validate_item,
)
from calendarsync.emulators.exchange_user import describe, item_data, meeting_summary
from calendarsync.emulators.exchange_xml import (
    EWS_PATH,
    EXCHANGE_2016,
    EXCHANGE_2019,
    SOAP_CONTENT_TYPE,
    EwsError,
    ServerVersion,
    SoapError,
    fault,
    operation_response,
    parse_request,
    reporting_version,
    response_message,
)
from calendarsync.emulators.google_http import Request, Response, html_page
from calendarsync.emulators.request_log import LoggedRequest, RequestLog
from calendarsync.emulators.server import CONNECTION_KEY, ConnectionState, DropConnection

__all__ = [
    "AUTH_METHODS",
    "EWS_PATH",
    "EXCHANGE_2016",
    "EXCHANGE_2019",
    "FAULT_KINDS",
    "MFA_DIAGNOSTICS",
    "EwsError",
    "ExchangeEmulator",
    "ServerVersion",
]

FAULT_KINDS = ("500", "busy", "timeout", "reset", "busy-item")
# The message texts Exchange sends with the response codes a refused item gets.
ITEM_REFUSALS = {
    "ErrorAccessDenied": ACCESS_DENIED,
    "ErrorItemNotFound": ITEM_NOT_FOUND,
}
DEFAULT_TIMEOUT_SECONDS = 5.0
BUSY_MESSAGE = "The server cannot service this request right now. Try again later."


@dataclass
class Fault:
    kind: str
    remaining: int
    operation: str | None
    back_off_ms: int

    def matches(self, operation: str) -> bool:
        if self.kind == "busy-item":
            return operation == "CreateItem"
        return self.operation is None or self.operation == operation


class ExchangeEmulator(SignIn, MeetingControls):
    """Exchange Web Services for calendars, for tests and local development, as a WSGI app.

    Meetings (``MeetingControls``): ``user_create_meeting``, ``user_send_meeting_update``,
    ``user_cancel_meeting``, ``user_receive_invitation``, ``user_respond``, ``user_find_by_uid``
    and ``meeting_messages`` (what each mailbox mailed: invitations, updates, cancellations).
    """

    def __init__(
        self,
        *,
        auth_methods: Iterable[str] = AUTH_METHODS,
        server_version: ServerVersion = EXCHANGE_2016,
        var_dir: Path | None = None,
    ) -> None:
        self.state = ExchangeState()
        self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
        self._default_auth_methods = normalize_methods(auth_methods)
        self._default_server_version = server_version
        self.auth_methods = self._default_auth_methods
        self.server_version = server_version
        self._ntlm = NtlmAcceptor(var_dir)
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self._auth_counts: Counter[str] = Counter()
        self._requests = RequestLog()
        self._wake = threading.Event()

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        connection = environ.get(CONNECTION_KEY)
        response = self.handle(
            Request.from_environ(environ), connection if isinstance(connection, ConnectionState) else None
        )
        start_response(response.status_line, response.header_list())
        return [response.body]

    def handle(self, req: Request, connection: ConnectionState | None = None) -> Response:
        """Serve one request (raises DropConnection for an injected connection reset).

        ``connection``: the TCP connection's state, which NTLM needs (``EmulatorServer`` passes it
        in the environ); without it every request is a new connection.
        """
        path = req.path.lower()
        if path == EWS_PATH.lower():
            if req.method != "POST":
                return Response(405, b"EWS takes SOAP requests by POST.", "text/plain", [("Allow", "POST")])
            return self._ews(req, connection or ConnectionState())
        if req.segments[:1] == ["_control"]:
            return handle_control(self, req)
        if not req.segments or req.segments[0] == "_demo":
            return handle_demo(self, req)
        return Response(
            404,
            html_page(
                "404 - File or directory not found.", "<h1>404 - File or directory not found.</h1>"
            ).encode(),
            "text/html; charset=utf-8",
        )

    def _ews(self, req: Request, connection: ConnectionState) -> Response:
        authenticated = self._authenticate(req, connection)
        if isinstance(authenticated, Response):
            return authenticated
        try:
            operation_elem = parse_request(req.body)
        except SoapError as error:
            return Response(error.status, fault(error), SOAP_CONTENT_TYPE)
        operation = operation_elem.tag.rpartition("}")[2]
        with self.state.lock:
            self._counts[operation] += 1
        self._requests.record(req.method, req.path, operation, req.body)
        handler = OPERATIONS.get(operation)
        if handler is None:
            unknown = SoapError("ErrorInvalidRequest", f"The emulator does not implement {operation}.")
            return Response(unknown.status, fault(unknown), SOAP_CONTENT_TYPE)
        injected = self._take_fault(operation)
        if injected is not None and injected.kind != "busy-item":
            return self._fault_response(injected)
        with self.state.lock, reporting_version(self.server_version):
            context = Context(self.state, authenticated, before_create=self._item_fault_hook())
            try:
                body = handler(context, operation_elem)
            except SoapError as error:
                return Response(error.status, fault(error), SOAP_CONTENT_TYPE)
            except EwsError as error:
                body = operation_response(operation, [response_message(operation, error=error)])
        return Response(200, body, SOAP_CONTENT_TYPE)

    # -- faults and counts -----------------------------------------------------------------------

    def _take_fault(self, operation: str) -> Fault | None:
        with self.state.lock:
            for fault_ in self._faults:
                if fault_.kind != "busy-item" and fault_.remaining > 0 and fault_.matches(operation):
                    fault_.remaining -= 1
                    if fault_.remaining == 0:
                        self._faults.remove(fault_)
                    return fault_
        return None

    def _item_fault_hook(self) -> Any:
        def before_create() -> None:
            # Runs under the state lock, for each item of a CreateItem request.
            for fault_ in self._faults:
                if fault_.kind == "busy-item" and fault_.remaining > 0:
                    fault_.remaining -= 1
                    if fault_.remaining == 0:
                        self._faults.remove(fault_)
                    raise EwsError("ErrorServerBusy", BUSY_MESSAGE)

        return before_create

    def _fault_response(self, injected: Fault) -> Response:
        if injected.kind == "reset":
            raise DropConnection
        if injected.kind == "busy":
            error = SoapError("ErrorServerBusy", BUSY_MESSAGE, back_off_ms=injected.back_off_ms)
            return Response(500, fault(error), SOAP_CONTENT_TYPE)
        if injected.kind == "timeout":
            # Outside the state lock: other requests go on while this one hangs.
            self._wake.wait(self.timeout_seconds)
        page = html_page(
            "Runtime Error", "<h1>Server Error in '/EWS' Application.</h1><h2>Runtime Error</h2>"
        )
        return Response(500, page.encode(), "text/html; charset=utf-8")

    def inject_faults(
        self,
        kind: str,
        count: int = 1,
        operation: str | None = None,
        back_off_ms: int = 1000,
    ) -> None:
        """Make the next `count` EWS requests (of `operation`, e.g. "CreateItem", if given) fail.

        Kinds: "500" (HTTP 500 error page), "busy" (ErrorServerBusy fault with BackOffMilliseconds
        = `back_off_ms`), "timeout" (hang `timeout_seconds`, then 500), "reset" (drop the
        connection), "busy-item" (the next `count` items inside CreateItem requests fail alone
        with ErrorServerBusy while the rest of the request works).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be positive")
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; expected one of {sorted(OPERATIONS)}")
        with self.state.lock:
            self._faults.append(Fault(kind, count, operation, back_off_ms))

    def inject_item_fault(
        self, item_id: str, response_code: str = "ErrorAccessDenied", count: int = 1
    ) -> None:
        """Refuse the next `count` UpdateItem or DeleteItem of one item or occurrence: that item's
        response message carries `response_code` (ErrorAccessDenied: the user may not change it),
        the rest of the request goes on."""
        if count < 1:
            raise ValueError("count must be positive")
        message = ITEM_REFUSALS.get(response_code, response_code)
        with self.state.lock:
            self.state.item_faults[item_id] = ItemFault(response_code, message, count)

    def clear_faults(self) -> None:
        with self.state.lock:
            self._faults.clear()
            self.state.item_faults.clear()

    def request_counts(self) -> dict[str, int]:
        """EWS requests per operation name (GetFolder, SyncFolderItems, ...) and refused logins ("401").

        Sign-in round trips that are not refusals (challenges, NTLM legs) are in ``auth_counts``."""
        with self.state.lock:
            return dict(self._counts)

    def set_server_version(self, version: ServerVersion) -> None:
        """Report this Exchange build in ``ServerVersionInfo`` (``EXCHANGE_2016``, ``EXCHANGE_2019``)."""
        with self.state.lock:
            self.server_version = version

    def reset_counts(self) -> None:
        """Forget the counts and the request log."""
        with self.state.lock:
            self._counts.clear()
            self._auth_counts.clear()
        self._requests.clear()

    def request_log(self) -> list[LoggedRequest]:
        """The last EWS requests (SOAP bodies, named by operation), oldest first."""
        return self._requests.entries()

    def reset(self) -> None:
        """Forget everything: mailboxes, items, sync states, faults, counts, settings (the sign-in
        methods and server version go back to what the emulator was built with)."""
        self._requests.clear()
        with self.state.lock:
            self.state.reset()
            self._faults.clear()
            self._counts.clear()
            self._auth_counts.clear()
            self.auth_methods = self._default_auth_methods
            self.server_version = self._default_server_version
            self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
            # Release requests hanging in a "timeout" fault.
            self._wake.set()
            self._wake = threading.Event()

    # -- the emulated Exchange side (tests and demo) -------------------------------------------

    def add_user(
        self, email: str, password: str, *, two_factor: bool = False, app_password: str | None = None
    ) -> None:
        """Add (or reset the sign-in of) a mailbox; a two-factor one signs in with its app password only."""
        with self.state.lock:
            self.state.add_mailbox(email, password, two_factor=two_factor, app_password=app_password)

    def set_two_factor(self, email: str, enabled: bool, app_password: str | None = None) -> None:
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            if enabled and not (app_password or mailbox.app_password):
                raise ValueError("a two-factor account needs an app password")
            mailbox.two_factor = enabled
            if app_password is not None:
                mailbox.app_password = app_password

    def revoke(self, email: str, new_password: str | None = None) -> None:
        """The user changes their password, which also revokes their app passwords: the old ones get 401."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            mailbox.password = new_password or f"changed-{secrets.token_urlsafe(12)}"
            if mailbox.app_password is not None:
                mailbox.app_password = f"revoked-{secrets.token_urlsafe(12)}"

    def set_calendar_access(self, email: str, allowed: bool) -> None:
        """An admin takes away (or gives back) access to the calendar folder: ErrorAccessDenied."""
        with self.state.lock:
            self.state.mailbox(email).calendar_access = allowed

    def add_calendar(self, email: str, calendar_id: str, name: str) -> None:
        """Another calendar the user adds in Outlook; ``calendar_id`` becomes its folder id."""
        with self.state.lock:
            self.state.add_calendar(self.state.mailbox(email), calendar_id, name)

    def user_emails(self) -> list[str]:
        with self.state.lock:
            return list(self.state.mailboxes)

    def calendar_folder_id(self, email: str) -> str:
        with self.state.lock:
            return self.state.mailbox(email).folder(CALENDAR).id

    def user_create_event(self, email: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create an event as the user does in Outlook. Fields: see ``_item_data``."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            item = self.state.create_item(mailbox.folder(CALENDAR), item_data(fields))
            return describe(item)

    def user_update_event(self, email: str, item_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change an event (or one occurrence of a series) as the user does; only given fields change."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            occurrence = parse_occurrence_id(item_id)
            if occurrence is not None:
                master = self._calendar_item(mailbox, occurrence[0])
                instance = master.instance_at(occurrence[1])
                if instance is None:
                    raise KeyError(f"no occurrence {item_id!r}")
                data = item_data(changes, base=instance.data)
                data.recurrence = None
                validate_item(data)
                check_occurrence_move(master, occurrence[1], data)
                master.exceptions[occurrence[1]] = data
                self.state.touch(master)
                return describe(master)
            item = self._calendar_item(mailbox, item_id)
            data = item_data(changes, base=item.data)
            validate_item(data)
            item.data = data
            self.state.touch(item)
            return describe(item)

    def user_delete_event(self, email: str, item_id: str) -> None:
        """Delete as Outlook does: the item moves to Deleted Items (an occurrence leaves its series)."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            occurrence = parse_occurrence_id(item_id)
            if occurrence is not None:
                master = self._calendar_item(mailbox, occurrence[0])
                master.exceptions.pop(occurrence[1], None)
                master.deleted_occurrences.add(occurrence[1])
                self.state.touch(master)
                return
            self.state.remove_item(mailbox, self._calendar_item(mailbox, item_id), hard=False)

    def user_get_event(self, email: str, item_id: str) -> dict[str, Any] | None:
        """The event (or occurrence) as stored in the calendar, or None if it is not there (any more)."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            occurrence = parse_occurrence_id(item_id)
            if occurrence is not None:
                master = mailbox.folder(CALENDAR).items.get(occurrence[0])
                instance = master.instance_at(occurrence[1]) if master is not None else None
                if master is None or instance is None:
                    return None
                return {
                    **data_summary(instance.data),
                    **meeting_summary(master),
                    "id": instance.id,
                    "change_key": master.change_key,
                    "series_id": master.id,
                    "uid": master.uid,
                    "last_modified": master.modified.isoformat(),
                }
            item = mailbox.folder(CALENDAR).items.get(item_id)
            return None if item is None else describe(item)

    def user_list_occurrences(self, email: str, item_id: str) -> list[dict[str, Any]]:
        """A series' occurrences as Outlook shows them (deleted ones left out, changed ones as
        changed), with their ids and original starts; for a series without an end, up to a year
        past today."""
        with self.state.lock:
            master = self._calendar_item(self.state.mailbox(email), item_id)
            if not master.is_master:
                raise KeyError(f"{item_id!r} is not a recurring series")
            horizon = max(master.data.start, now()) + dt.timedelta(days=366)
            return [
                {
                    **data_summary(instance.data),
                    **meeting_summary(master),
                    "id": instance.id,
                    "change_key": master.change_key,
                    "series_id": master.id,
                    "uid": master.uid,
                    "last_modified": master.modified.isoformat(),
                    "original_start": instance.original_start.isoformat(),
                    "is_exception": instance.is_exception,
                }
                for instance in master.instances(horizon)
            ]

    def user_list_events(self, email: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """The calendar's items (a series once, not expanded), by start; with Deleted Items if asked."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            folders = [CALENDAR, DELETED_ITEMS] if include_deleted else [CALENDAR]
            items = [item for name in folders for item in mailbox.folder(name).items.values()]
            described = [{**describe(item), "folder": item.folder} for item in items]
        return sorted(described, key=lambda entry: (entry["start"], entry["id"]))

    def expire_sync_tokens(self, email: str | None = None) -> None:
        """Every sync state issued so far (to the user, or anyone) answers ErrorInvalidSyncStateData."""
        with self.state.lock:
            self.state.expire_sync_states(email)

    expire_sync_states = expire_sync_tokens

    @staticmethod
    def _calendar_item(mailbox: Mailbox, item_id: str) -> StoredItem:
        item = mailbox.folder(CALENDAR).items.get(item_id)
        if item is None:
            raise KeyError(f"no event {item_id!r} in the calendar of {mailbox.email}")
        return item
