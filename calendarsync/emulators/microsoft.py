"""A stateful local emulator of Microsoft 365: the identity platform (v2.0) and Graph's calendar API.

`MicrosoftEmulator()` is one WSGI application serving both sides; the identity endpoints must be
reached over HTTPS (msal refuses anything else), so serve it twice: with `TlsEmulatorServer`
(a `TestAuthority` certificate) for identity and with `EmulatorServer` for Graph. Point the app at
it with MICROSOFT_AUTHORITY = {https base}/common, MICROSOFT_GRAPH_BASE_URL = {http base}/v1.0/ and
MICROSOFT_CA_BUNDLE = the test CA's PEM file. Tests drive the emulated Microsoft side through the
Python methods below; the same controls are served as JSON under /_control/ and a demo page at /.

Meetings between the emulated mailboxes (invitations, updates and cancellations, attendees' copies,
RSVPs, Teams links) are in microsoft_meetings.py; what each mailbox mailed is `sent_invitations`.
Semantics follow https://learn.microsoft.com/en-us/graph/api/resources/event and
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow (PROVIDERS.md).
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from calendarsync.emulators.google_http import JsonDict, Request, Response
from calendarsync.emulators.microsoft_events import (
    clean_fields,
    delete_event,
    delete_occurrence,
    find_occurrence,
    insert_event,
    occurrence_id,
    occurrences_of,
    sort_key,
    update_event,
)
from calendarsync.emulators.microsoft_graph import (
    authenticate,
    batch_response,
    endpoint_name,
    handle_graph_request,
    parse_batch,
)
from calendarsync.emulators.microsoft_identity import IdentityEndpoints
from calendarsync.emulators.microsoft_meetings import RSVP_ACTIONS, receive_invitation, respond
from calendarsync.emulators.microsoft_occurrences import update_occurrence
from calendarsync.emulators.microsoft_pages import handle_control, handle_demo
from calendarsync.emulators.microsoft_render import RenderOptions, render
from calendarsync.emulators.microsoft_state import (
    Calendar,
    EventFault,
    GraphError,
    MicrosoftState,
    OAuthClient,
    StoredEvent,
    normalize_scope,
)
from calendarsync.emulators.request_log import LoggedRequest, RequestLog
from calendarsync.emulators.server import DropConnection

__all__ = ["FAULT_KINDS", "GraphError", "MicrosoftEmulator"]

# Graph throttles with 429 only; "403-rate" and "403-user-rate" are accepted as 429s so tests can
# use the Google emulator's vocabulary.
FAULT_KINDS = ("500", "503", "504", "429", "403-rate", "403-user-rate", "timeout", "reset")
# What Graph answers when it refuses one item, by error code: status and message.
# https://learn.microsoft.com/en-us/graph/errors
EVENT_REFUSALS: dict[str, tuple[int, str]] = {
    "ErrorAccessDenied": (403, "Access is denied. Check credentials and try again."),
    "ErrorItemNotFound": (404, "The specified object was not found in the store."),
    "ErrorInvalidRequest": (400, "The request is invalid."),
    "ErrorIrresolvableConflict": (
        412,
        "The send or update operation could not be performed because the change key passed in the "
        "request does not match the current change key for the item.",
    ),
}
DEFAULT_EVENT_REFUSAL = {403: "ErrorAccessDenied", 404: "ErrorItemNotFound", 400: "ErrorInvalidRequest"}
DEFAULT_TIMEOUT_SECONDS = 5.0
# What the user-side methods show: the user's own view (text bodies, every extended property).
USER_VIEW = RenderOptions(time_zone="UTC", text_body=True, extended=frozenset({"*"}))


@dataclass
class Fault:
    kind: str
    remaining: int
    path_contains: str | None
    retry_after: int
    method: str | None

    def matches(self, req: Request) -> bool:
        if self.method is not None and req.method != self.method.upper():
            return False
        return self.path_contains is None or self.path_contains in req.path


def _identity_route(segments: list[str]) -> tuple[str, str] | None:
    """(endpoint, tenant) of an identity-platform path, or None."""
    match segments:
        case [tenant, "v2.0", ".well-known", "openid-configuration"]:
            return "discovery", tenant
        case [tenant, "oauth2", "v2.0", "authorize"]:
            return "authorize", tenant
        case [tenant, "oauth2", "v2.0", "token"]:
            return "token", tenant
        case [tenant, "discovery", "v2.0", "keys"]:
            return "keys", tenant
    return None


class MicrosoftEmulator:
    """Microsoft's identity platform and Graph calendar API for tests and local development, as WSGI."""

    def __init__(self) -> None:
        self.state = MicrosoftState()
        self.identity = IdentityEndpoints(self.state)
        self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self._requests = RequestLog()
        self._wake = threading.Event()

    @property
    def authorize_base_url(self) -> str | None:
        """Where discovery sends browsers to sign in (None: the identity server itself, over HTTPS)."""
        return self.identity.authorize_base_url

    @authorize_base_url.setter
    def authorize_base_url(self, value: str | None) -> None:
        self.identity.authorize_base_url = value.rstrip("/") if value else None

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self.handle(Request.from_environ(environ))
        start_response(response.status_line, response.header_list())
        return [response.body]

    def handle(self, req: Request) -> Response:
        """Serve one request (raises DropConnection for an injected connection reset)."""
        try:
            return self._route(req)
        except GraphError as error:
            return error.to_response()

    def _route(self, req: Request) -> Response:
        segments = req.segments
        if segments[:1] == ["v1.0"]:
            if segments == ["v1.0", "$batch"]:
                if req.method != "POST":
                    raise GraphError(405, "Request_BadRequest", "Batch requests are POSTed.")
                return self._batch(req)
            return self._graph_call(req)
        identity = _identity_route(segments)
        if identity is not None:
            endpoint, tenant = identity
            if endpoint != "authorize" or req.method == "GET":
                self._count(endpoint)
            with self.state.lock:
                if endpoint == "discovery":
                    return self.identity.discovery(req, tenant)
                if endpoint == "authorize":
                    return self.identity.authorize(req, tenant)
                if endpoint == "token":
                    return self.identity.token(req, tenant)
                return self.identity.keys()
        if segments[:1] == ["_control"]:
            return handle_control(self, req)
        if not segments or segments[0] == "_demo":
            return handle_demo(self, req)
        raise GraphError(404, "NotFound", "Resource not found.")

    def _graph_call(self, req: Request) -> Response:
        name = endpoint_name(req.method, req.segments[1:])
        if name:
            self._count(name)
        self._requests.record(req.method, req.path, name or "", req.body)
        fault = self._take_fault(req)
        if fault is not None:
            return self._fault_response(fault)
        with self.state.lock:
            try:
                return handle_graph_request(self.state, req, name)
            except GraphError as error:
                return error.to_response()
            except KeyError:  # a token of a user removed meanwhile
                return GraphError(404, "ErrorItemNotFound", "The user was not found.").to_response()

    def _batch(self, req: Request) -> Response:
        self._count("batch")
        fault = self._take_fault(req)
        if fault is not None:
            return self._fault_response(fault)
        with self.state.lock:
            authenticate(self.state, req)  # the batch itself needs a valid token
        parts = parse_batch(req)
        return batch_response([(part.id, self._graph_call(part.request)) for part in parts])

    # -- faults and counts -----------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self.state.lock:
            self._counts[name] += 1

    def _take_fault(self, req: Request) -> Fault | None:
        with self.state.lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(req):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        retry_after = [("Retry-After", str(fault.retry_after))]
        if fault.kind == "reset":
            raise DropConnection
        if fault.kind == "timeout":
            # Outside the state lock: other requests go on while this one hangs.
            self._wake.wait(self.timeout_seconds)
            error = GraphError(504, "UnknownError", "The gateway did not receive a timely response.")
        elif fault.kind == "500":
            error = GraphError(500, "generalException", "An internal server error occurred.")
        elif fault.kind == "503":
            error = GraphError(
                503, "ServiceUnavailable", "The service is temporarily unavailable.", headers=retry_after
            )
        elif fault.kind == "504":
            error = GraphError(504, "UnknownError", "The gateway did not receive a timely response.")
        else:
            error = GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                headers=retry_after,
            )
        return error.to_response()

    def inject_faults(
        self,
        kind: str,
        count: int = 1,
        path_contains: str | None = None,
        retry_after: int = 1,
        method: str | None = None,
    ) -> None:
        """Make the next `count` matching Graph requests fail with `kind`.

        A batch request is matched itself first, then each of its parts. `path_contains` is
        matched against the request path (e.g. "/events", "/$batch"), `method` against the HTTP method.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be positive")
        with self.state.lock:
            self._faults.append(Fault(kind, count, path_contains, retry_after, method))

    def inject_event_fault(
        self, event_id: str, status: int = 403, code: str | None = None, count: int = 1
    ) -> None:
        """Refuse the next `count` writes (PATCH, DELETE) to one event or occurrence with a Graph error.

        `code` defaults by status (403: ErrorAccessDenied, what a write to an item the user may
        not change gets); other requests go on.
        """
        chosen = code or DEFAULT_EVENT_REFUSAL.get(status)
        if chosen is None:
            raise ValueError(f"give an error code for status {status}")
        known_status, message = EVENT_REFUSALS.get(chosen, (status, chosen))
        if known_status != status:
            raise ValueError(f"Graph answers {chosen!r} with {known_status}, not {status}")
        if count < 1:
            raise ValueError("count must be positive")
        with self.state.lock:
            self.state.event_faults[event_id] = EventFault(status, chosen, message, count)

    def clear_faults(self) -> None:
        with self.state.lock:
            self._faults.clear()
            self.state.event_faults.clear()

    def request_counts(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        """Forget the counts and the request log."""
        with self.state.lock:
            self._counts.clear()
        self._requests.clear()

    def request_log(self) -> list[LoggedRequest]:
        """The last Graph requests (a batch's parts one by one) with their bodies, oldest first."""
        return self._requests.entries()

    def reset(self) -> None:
        """Forget everything: users, clients, tokens, events, faults, counts, settings."""
        self._requests.clear()
        with self.state.lock:
            self.state.reset()
            self._faults.clear()
            self._counts.clear()
            self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
            self._wake.set()  # release requests hanging in a "timeout" fault
            self._wake = threading.Event()

    # -- the emulated Microsoft side (tests and demo) ------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str] | None = None
    ) -> None:
        """Register an app; redirect_uris None allows any loopback redirect URI."""
        with self.state.lock:
            self.state.clients[client_id] = OAuthClient(
                client_id, client_secret, list(redirect_uris) if redirect_uris is not None else None
            )

    def add_user(self, email: str, display_name: str | None = None) -> None:
        """Add a Microsoft 365 user with their default calendar ("Calendar")."""
        with self.state.lock:
            self.state.add_user(email, display_name)

    def add_calendar(self, email: str, calendar_id: str | None, name: str) -> str:
        """Add (or rename) a calendar of the user; returns its id (made up when None is given)."""
        with self.state.lock:
            return self.state.add_calendar(email, calendar_id, name).id

    def set_calendar_read_only(self, email: str, calendar_id: str, read_only: bool = True) -> None:
        with self.state.lock:
            self._user_calendar(email, calendar_id).can_edit = not read_only

    def default_calendar_id(self, email: str) -> str:
        with self.state.lock:
            return self.state.user(email).default_calendar_id

    def user_calendars(self, email: str) -> list[JsonDict]:
        """The user's calendars: id, name and whether it is the default one."""
        with self.state.lock:
            user = self.state.user(email)
            return [
                {"id": c.id, "name": c.name, "is_default": c.is_default, "can_edit": c.can_edit}
                for c in user.calendars.values()
            ]

    def user_emails(self) -> list[str]:
        with self.state.lock:
            return list(self.state.users)

    def issue_tokens(self, email: str, scopes: list[str], client_id: str) -> dict[str, Any]:
        """Tokens as the token endpoint gives after consent (openid and offline_access are added)."""
        with self.state.lock:
            user = self.state.user(email)
            if client_id not in self.state.clients:
                raise KeyError(f"no registered app {client_id!r}")
            granted = [normalize_scope(scope) for scope in scopes]
            granted += [scope for scope in ("openid", "profile", "offline_access") if scope not in granted]
            base = "https://login.microsoftonline.com"
            return self.identity.token_response(base, user.email, client_id, granted)

    def _user_calendar(self, email: str, calendar_id: str | None) -> Calendar:
        self.state.user(email)
        try:
            return self.state.calendar(email, calendar_id)
        except GraphError:
            raise KeyError(f"{email!r} has no calendar {calendar_id!r}") from None

    def _user_event(self, email: str, event_id: str, calendar_id: str | None) -> tuple[Calendar, StoredEvent]:
        calendar = self._user_calendar(email, calendar_id)
        stored = calendar.events.get(event_id)
        if stored is None or stored.deleted:
            raise KeyError(f"no event {event_id!r} in calendar {calendar.id!r}")
        return calendar, stored

    def user_create_event(self, email: str, body: dict[str, Any], calendar_id: str | None = None) -> JsonDict:
        """Create an event as the user does in Outlook (a Graph event body); raises GraphError on a bad one."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            stored, _ = insert_event(self.state, calendar, body, allow_transaction=False)
            return render(stored, calendar, USER_VIEW)

    def user_update_event(
        self, email: str, event_id: str, changes: dict[str, Any], calendar_id: str | None = None
    ) -> JsonDict:
        """Change an event, or one occurrence of a series, as the user does in Outlook (PATCH
        semantics: only the given properties change; a changed occurrence becomes an exception)."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            occurrence = find_occurrence(calendar, event_id) if event_id not in calendar.events else None
            if occurrence is not None:
                series, found = occurrence
                update_occurrence(self.state, calendar, series, found, changes)
                return render(series, calendar, USER_VIEW, found)
            calendar, stored = self._user_event(email, event_id, calendar_id)
            return render(update_event(self.state, calendar, stored, changes), calendar, USER_VIEW)

    def user_delete_event(self, email: str, event_id: str, calendar_id: str | None = None) -> None:
        """Delete an event, a whole series, or one occurrence of a series."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            occurrence = find_occurrence(calendar, event_id) if event_id not in calendar.events else None
            if occurrence is not None:
                delete_occurrence(self.state, calendar, occurrence[0], event_id)
                return
            calendar, stored = self._user_event(email, event_id, calendar_id)
            delete_event(self.state, calendar, stored)

    def user_get_event(self, email: str, event_id: str, calendar_id: str | None = None) -> JsonDict | None:
        """The live event or occurrence as the user sees it (text body, extended properties), else None."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            stored = calendar.events.get(event_id)
            if stored is not None:
                return None if stored.deleted else render(stored, calendar, USER_VIEW)
            occurrence = find_occurrence(calendar, event_id)
            return None if occurrence is None else render(occurrence[0], calendar, USER_VIEW, occurrence[1])

    def user_list_instances(
        self, email: str, event_id: str, calendar_id: str | None = None
    ) -> list[JsonDict]:
        """The occurrences and exceptions of a series as the user sees them, by original start.

        Cancelled occurrences are left out; the series is expanded as far as it goes (at most a
        year past today for one without an end).
        """
        with self.state.lock:
            calendar, stored = self._user_event(email, event_id, calendar_id)
            if not stored.recurring:
                raise KeyError(f"event {event_id!r} is not a series")
            return [
                render(stored, calendar, USER_VIEW, occurrence)
                for occurrence in occurrences_of(stored.fields, None)
                if occurrence_id(stored.id, occurrence) not in stored.cancelled_occurrences
            ]

    def user_list_events(
        self, email: str, calendar_id: str | None = None, include_deleted: bool = False
    ) -> list[JsonDict]:
        """The calendar's events (a series once, as its master), by start; deleted ones carry "@removed"."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            events = []
            for stored in sorted(calendar.events.values(), key=sort_key):
                if stored.deleted and not include_deleted:
                    continue
                rendered = render(stored, calendar, USER_VIEW)
                if stored.deleted:
                    rendered["@removed"] = {"reason": "deleted"}
                events.append(copy.deepcopy(rendered))
            return events

    # -- meetings (microsoft_meetings.py) ------------------------------------------------------------

    def sent_invitations(self, email: str) -> list[tuple[str, str, str]]:
        """What the mailbox mailed about meetings it organizes, oldest first: (kind, recipient,
        iCalUId), kind "invitation", "update" or "cancellation"."""
        with self.state.lock:
            mailbox = self.state.user(email).email
            return [(m.kind, m.recipient, m.ical_uid) for m in self.state.sent_mail.get(mailbox, [])]

    def sent_responses(self, email: str) -> list[tuple[str, str, str]]:
        """The answers the mailbox's owner sent organizers, oldest first: (response, organizer,
        iCalUId), response "accepted", "tentativelyAccepted" or "declined"."""
        with self.state.lock:
            mailbox = self.state.user(email).email
            return [(m.kind, m.recipient, m.ical_uid) for m in self.state.sent_responses.get(mailbox, [])]

    def clear_sent_mail(self) -> None:
        """Forget the invitations, updates, cancellations and responses sent so far."""
        with self.state.lock:
            self.state.sent_mail.clear()
            self.state.sent_responses.clear()

    def user_respond(
        self, email: str, event_id: str, action: str, *, send_response: bool = True, comment: str = ""
    ) -> None:
        """The user answers a meeting request in Outlook: ``action`` "accept", "tentativelyAccept"
        or "decline", on their copy (any of their calendars); raises GraphError like Graph."""
        if action not in RSVP_ACTIONS:
            raise ValueError(f"unknown response {action!r}; expected one of {sorted(RSVP_ACTIONS)}")
        with self.state.lock:
            found = self.state.find_event(email, event_id)
            if found is None or found[1].deleted:
                raise KeyError(f"{email!r} has no event {event_id!r}")
            body = {"sendResponse": send_response, "comment": comment}
            respond(self.state, found[0], found[1], action, body)

    def deliver_invitation(
        self,
        email: str,
        ical_uid: str,
        organizer: str,
        body: dict[str, Any],
        *,
        organizer_name: str | None = None,
    ) -> JsonDict:
        """A meeting request from an organizer elsewhere lands in the user's default calendar (a
        Graph event body: subject, start, end, attendees...); a copy already there is updated."""
        with self.state.lock:
            user = self.state.user(email)
            fields = clean_fields(body)
            name = organizer_name or organizer
            stored = receive_invitation(self.state, user, ical_uid, (organizer, name), fields)
            return render(stored, self.state.calendar(email, stored.calendar_id), USER_VIEW)

    def user_event_by_uid(self, email: str, ical_uid: str) -> JsonDict | None:
        """The user's event (organized or a copy) with that iCalUId in any of their calendars, as the
        user sees it (a cancelled copy too: it has isCancelled), else None."""
        with self.state.lock:
            for calendar in self.state.user(email).calendars.values():
                for stored in calendar.events.values():
                    if not stored.deleted and stored.ical_uid == ical_uid:
                        return render(stored, calendar, USER_VIEW)
            return None

    def expire_sync_tokens(self, email: str | None = None) -> None:
        """Every delta token (and delta page) issued so far answers 410 syncStateNotFound from now on."""
        with self.state.lock:
            self.state.expire_delta_tokens(email)

    def revoke_tokens(self, email: str) -> None:
        """The user (or an admin) revokes the app's sessions: refresh fails, Graph answers 401."""
        with self.state.lock:
            self.state.revoke_user(email)

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Access tokens expire now: Graph answers 401 until the client refreshes."""
        with self.state.lock:
            self.state.expire_access_tokens(email)
