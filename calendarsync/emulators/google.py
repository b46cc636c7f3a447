"""A stateful local emulator of Google's wire protocol: OAuth 2.0 and Calendar API v3.

`GoogleEmulator()` is a WSGI application; serve it with `EmulatorServer` and point the app's
settings at it (GOOGLE_AUTH_URI = {base}/o/oauth2/auth, GOOGLE_TOKEN_URI = {base}/token,
GOOGLE_REVOKE_URI = {base}/revoke, GOOGLE_API_BASE_URL = {base}/, GOOGLE_BATCH_URI =
{base}/batch/calendar/v3). Tests drive the emulated Google side through the Python methods
below; the same controls are served as JSON under /_control/ and a demo page at /.

The semantics follow https://developers.google.com/calendar/api/v3/reference and
https://developers.google.com/identity/protocols/oauth2/web-server (see PROVIDERS.md).
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from calendarsync.emulators.google_calendar import (
    batch_response,
    endpoint_name,
    handle_calendar_request,
    parse_batch,
)
from calendarsync.emulators.google_events import as_instant, render, timing_of
from calendarsync.emulators.google_http import ApiError, JsonDict, Request, Response
from calendarsync.emulators.google_instances import find_instance, series_views
from calendarsync.emulators.google_meetings import (
    WriteOptions,
    checked_send_updates,
    complete_pending,
    delete,
    insert,
    receive_invitation,
    respond,
    update,
)
from calendarsync.emulators.google_oauth import OAuthEndpoints
from calendarsync.emulators.google_pages import handle_control, handle_demo
from calendarsync.emulators.google_state import (
    Calendar,
    EmulatorState,
    EventFault,
    OAuthClient,
    Revocation,
)
from calendarsync.emulators.request_log import LoggedRequest, RequestLog
from calendarsync.emulators.server import DropConnection

__all__ = ["FAULT_KINDS", "ApiError", "GoogleEmulator"]

FAULT_KINDS = ("500", "503", "429", "403-rate", "403-user-rate", "timeout", "reset")
# What Google answers when it refuses one event, by reason: status, domain, message.
# https://developers.google.com/calendar/api/guides/errors
EVENT_REFUSALS: dict[str, tuple[int, str, str]] = {
    "forbiddenForNonOrganizer": (
        403,
        "calendar",
        "Shared properties can only be changed by the organizer of the event.",
    ),
    "forbidden": (403, "global", "Forbidden"),
    "notFound": (404, "global", "Not Found"),
    "deleted": (410, "global", "Resource has been deleted"),
    "invalid": (400, "global", "Invalid value"),
    "badRequest": (400, "global", "Bad Request"),
    "conditionNotMet": (412, "global", "Precondition Failed"),
}
DEFAULT_EVENT_REFUSAL = {403: "forbiddenForNonOrganizer", 404: "notFound", 410: "deleted", 400: "invalid"}
DEFAULT_TIMEOUT_SECONDS = 5.0

_OAUTH_ROUTES = {
    ("o", "oauth2", "auth"): "auth",
    ("o", "oauth2", "v2", "auth"): "auth",
    ("token",): "token",
    ("o", "oauth2", "token"): "token",
    ("revoke",): "revoke",
    ("o", "oauth2", "revoke"): "revoke",
    ("oauth2", "v2", "userinfo"): "userinfo",
    ("oauth2", "v3", "userinfo"): "userinfo",
    ("userinfo", "v2", "me"): "userinfo",
}


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


class GoogleEmulator:
    """Google's OAuth and Calendar API for tests and local development, as a WSGI app."""

    def __init__(self) -> None:
        self.state = EmulatorState()
        self.oauth = OAuthEndpoints(self.state)
        self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self._requests = RequestLog()
        self._wake = threading.Event()

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self.handle(Request.from_environ(environ))
        start_response(response.status_line, response.header_list())
        return [response.body]

    def handle(self, req: Request) -> Response:
        """Serve one request (raises DropConnection for an injected connection reset)."""
        try:
            return self._route(req)
        except ApiError as error:
            return error.to_response()

    def _route(self, req: Request) -> Response:
        segments = req.segments
        if segments[:2] == ["calendar", "v3"]:
            return self._calendar_call(req, None)
        if segments in (["batch", "calendar", "v3"], ["batch"]):
            if req.method != "POST":
                raise ApiError(405, "httpMethodNotAllowed", "Method Not Allowed")
            return self._batch(req)
        oauth_endpoint = _OAUTH_ROUTES.get(tuple(segments))
        if oauth_endpoint is not None:
            if oauth_endpoint != "auth" or req.method == "GET":
                self._count(oauth_endpoint)
            with self.state.lock:
                if oauth_endpoint == "auth":
                    return self.oauth.authorize(req)
                if oauth_endpoint == "token":
                    return self.oauth.token(req)
                if oauth_endpoint == "revoke":
                    return self.oauth.revoke(req)
                return self.oauth.userinfo(req)
        if segments[:1] == ["_control"]:
            return handle_control(self, req)
        if not segments or segments[0] == "_demo":
            return handle_demo(self, req)
        raise ApiError(404, "notFound", "Not Found")

    def _calendar_call(self, req: Request, fallback_authorization: str | None) -> Response:
        name = endpoint_name(req.method, req.segments[2:])
        if name:
            self._count(name)
        self._requests.record(req.method, req.path, name or "", req.body)
        fault = self._take_fault(req)
        if fault is not None:
            return self._fault_response(fault)
        with self.state.lock:
            complete_pending(self.state)
            try:
                return handle_calendar_request(self.state, req, name, fallback_authorization)
            except ApiError as error:
                return error.to_response()

    def _batch(self, req: Request) -> Response:
        self._count("batch")
        fault = self._take_fault(req)
        if fault is not None:
            return self._fault_response(fault)
        parts = parse_batch(req)
        outer_authorization = req.header("authorization")
        responses: list[tuple[str | None, Response]] = []
        for part in parts:
            if part.request.segments[:2] == ["calendar", "v3"]:
                response = self._calendar_call(part.request, outer_authorization)
            else:
                response = ApiError(404, "notFound", "Not Found").to_response()
            responses.append((part.content_id, response))
        return batch_response(responses)

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
            error = ApiError(503, "backendError", "The service is currently unavailable.")
        elif fault.kind == "500":
            error = ApiError(500, "backendError", "Backend Error")
        elif fault.kind == "503":
            error = ApiError(
                503, "backendError", "The service is currently unavailable.", headers=retry_after
            )
        elif fault.kind == "429":
            error = ApiError(
                429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=retry_after
            )
        elif fault.kind == "403-rate":
            error = ApiError(
                403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=retry_after
            )
        else:
            error = ApiError(
                403,
                "userRateLimitExceeded",
                "User Rate Limit Exceeded",
                domain="usageLimits",
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
        """Make the next `count` matching Calendar API or batch requests fail with `kind`.

        A batch request is matched itself first, then each of its parts. `path_contains` is
        matched against the request path, `method` (optional) against the HTTP method.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be positive")
        with self.state.lock:
            self._faults.append(Fault(kind, count, path_contains, retry_after, method))

    def inject_event_fault(
        self, event_id: str, status: int = 403, reason: str | None = None, count: int = 1
    ) -> None:
        """Refuse the next `count` writes (patch, update, delete) to one event or instance.

        The refusal is Google's error for `reason` (default for 403: forbiddenForNonOrganizer,
        what a change to an event organized by someone else gets); other requests go on.
        """
        chosen = reason or DEFAULT_EVENT_REFUSAL.get(status)
        if chosen is None:
            raise ValueError(f"give a reason for status {status}")
        known_status, domain, message = EVENT_REFUSALS.get(chosen, (status, "global", chosen))
        if known_status != status:
            raise ValueError(f"Google answers {chosen!r} with {known_status}, not {status}")
        if count < 1:
            raise ValueError("count must be positive")
        with self.state.lock:
            self.state.event_faults[event_id] = EventFault(status, chosen, message, domain, count)

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
        """The last Calendar API requests (a batch's parts one by one) with their bodies, oldest first."""
        return self._requests.entries()

    def reset(self) -> None:
        """Forget everything: users, clients, tokens, events, faults, counts, settings."""
        self._requests.clear()
        with self.state.lock:
            self.state.reset()
            self._faults.clear()
            self._counts.clear()
            self.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
            # Release requests hanging in a "timeout" fault.
            self._wake.set()
            self._wake = threading.Event()

    # -- the emulated Google side (tests and demo) ---------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str] | None = None
    ) -> None:
        """Register an OAuth client; redirect_uris None allows any loopback redirect URI."""
        with self.state.lock:
            self.state.clients[client_id] = OAuthClient(
                client_id, client_secret, list(redirect_uris) if redirect_uris is not None else None
            )

    def add_user(self, email: str) -> None:
        """Add a Google account with its primary calendar (id and summary are the e-mail)."""
        with self.state.lock:
            self.state.add_user(email)

    def add_calendar(self, email: str, calendar_id: str, summary: str) -> None:
        with self.state.lock:
            self.state.add_calendar(email, calendar_id, summary)

    def user_emails(self) -> list[str]:
        with self.state.lock:
            return list(self.state.users)

    def issue_tokens(self, email: str, scopes: list[str], client_id: str) -> dict[str, Any]:
        """Tokens as the token endpoint would give after consent (access, refresh, expires_in...)."""
        with self.state.lock:
            self.state.user(email)
            if client_id not in self.state.clients:
                raise KeyError(f"no registered OAuth client {client_id!r}")
            return self.oauth.token_response(
                self.state.user(email).email, client_id, list(scopes), refresh_token=None, issue_refresh=True
            )

    def _user_calendar(self, email: str, calendar_id: str) -> Calendar:
        self.state.user(email)
        complete_pending(self.state)
        try:
            return self.state.calendar(email, calendar_id)
        except ApiError:
            raise KeyError(f"{email!r} has no calendar {calendar_id!r}") from None

    def user_create_event(
        self,
        email: str,
        body: dict[str, Any],
        calendar_id: str = "primary",
        *,
        send_updates: str = "none",
        video_call: bool = False,
    ) -> dict[str, Any]:
        """Create an event as the user does in Google Calendar; raises ApiError on a bad body.

        Guests who are users here get a copy in their primary calendar; `send_updates` ("all",
        "externalOnly", "none") says whom Google mails (see `sent_mail`); `video_call` adds
        Google Meet (pending until the next request, like the API's createRequest).
        """
        options = WriteOptions(checked_send_updates(send_updates), 1 if video_call else 0)
        if video_call:
            body = {**body, "conferenceData": {"createRequest": _meet_request()}}
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            return render(insert(self.state, calendar, body, options, lenient=True))

    def user_update_event(
        self,
        email: str,
        event_id: str,
        changes: dict[str, Any],
        calendar_id: str = "primary",
        *,
        send_updates: str = "none",
    ) -> dict[str, Any]:
        """Change an event, or one instance of a series ("this event" in Google Calendar), as the
        user does (patch semantics: only the given fields change). On a guest's copy only what is
        the guest's may change (their answer, reminders...): else ApiError 403 forbiddenForNonOrganizer."""
        options = WriteOptions(checked_send_updates(send_updates))
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            if event_id not in calendar.events and find_instance(calendar, event_id) is None:
                raise KeyError(f"no event {event_id!r} in {calendar.id!r}")
            return render(update(self.state, calendar, event_id, changes, options, patch=True, lenient=True))

    def user_delete_event(
        self, email: str, event_id: str, calendar_id: str = "primary", *, send_updates: str = "none"
    ) -> None:
        """Delete an event (a whole series), or one instance of a series; a guest deleting their
        copy declines the invitation."""
        options = WriteOptions(checked_send_updates(send_updates))
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            if event_id not in calendar.events and find_instance(calendar, event_id) is None:
                raise KeyError(f"no event {event_id!r} in {calendar.id!r}")
            delete(self.state, calendar, event_id, options)

    def user_respond(self, email: str, event_id: str, response: str) -> dict[str, Any]:
        """The guest answers an invitation on their copy ("accepted", "tentative", "declined" or
        "needsAction"); the organizer's event (a user here) and the other copies show the answer."""
        with self.state.lock:
            calendar = self._user_calendar(email, "primary")
            return render(respond(self.state, calendar, event_id, response))

    def user_receive_invitation(self, email: str, body: dict[str, Any]) -> dict[str, Any]:
        """An invitation mailed by an organizer elsewhere lands in the user's primary calendar.

        `body`: an event resource with `iCalUID`, `organizer: {"email": ...}`, summary, start,
        end and attendees (the user is added if missing, with no answer yet); `id` defaults to
        one derived from the UID. Delivering the same UID again updates the copy.
        """
        with self.state.lock:
            calendar = self._user_calendar(email, "primary")
            return render(receive_invitation(self.state, calendar, body))

    def user_event_by_uid(
        self, email: str, ical_uid: str, calendar_id: str = "primary"
    ) -> dict[str, Any] | None:
        """The calendar's live event (not an instance) with that iCalUID, if any."""
        with self.state.lock:
            for stored in self._user_calendar(email, calendar_id).events.values():
                if not stored.deleted and stored.resource.get("iCalUID") == ical_uid:
                    return copy.deepcopy(stored.resource)
        return None

    def sent_mail(self, email: str) -> list[tuple[str, str, str]]:
        """What Google mailed on behalf of `email`, oldest first: (kind, recipient, iCalUID), kind
        "invitation", "update" or "cancellation" (only for writes with sendUpdates all/externalOnly)."""
        with self.state.lock:
            return list(self.state.sent_mail.get(email.strip().lower(), []))

    def clear_sent_mail(self) -> None:
        with self.state.lock:
            self.state.sent_mail.clear()

    def user_get_event(
        self, email: str, event_id: str, calendar_id: str = "primary"
    ) -> dict[str, Any] | None:
        """The stored event or instance (a deleted one with status 'cancelled'), or None if it never existed."""
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            stored = calendar.events.get(event_id)
            if stored is not None:
                return copy.deepcopy(stored.resource)
            ref = find_instance(calendar, event_id)
            return None if ref is None else copy.deepcopy(ref.current)

    def user_list_instances(
        self, email: str, event_id: str, calendar_id: str = "primary", include_cancelled: bool = False
    ) -> list[dict[str, Any]]:
        """The instances of a recurring event as the user's calendar shows them, by original start.

        Changed ones are their exceptions; cancelled ones come only with `include_cancelled`.
        """
        with self.state.lock:
            calendar = self._user_calendar(email, calendar_id)
            stored = calendar.events.get(event_id)
            if stored is None or not stored.recurring:
                raise KeyError(f"no recurring event {event_id!r} in {calendar.id!r}")
            views = [
                view for view, cancelled in series_views(stored, None) if include_cancelled or not cancelled
            ]
        return sorted(views, key=_original_start_key)

    def user_list_events(
        self, email: str, calendar_id: str = "primary", include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """The calendar's events as stored (series not expanded), by start time."""
        with self.state.lock:
            events = [
                copy.deepcopy(stored.resource)
                for stored in self._user_calendar(email, calendar_id).events.values()
                if include_deleted or not stored.deleted
            ]
        return sorted(events, key=_start_key)

    def expire_sync_tokens(self, email: str | None = None) -> None:
        """Every sync token issued so far (for the user, or anyone) answers 410 from now on."""
        with self.state.lock:
            self.state.expire_sync_tokens(email)

    def revoke_tokens(self, email: str) -> None:
        """The user removes the app's access: refresh gives invalid_grant, the API 401."""
        with self.state.lock:
            self.state.revoke_user(email)

    def revocations(self, email: str | None = None) -> list[Revocation]:
        """The tokens the app revoked at the revoke endpoint (for the user, or anyone), oldest first."""
        wanted = email.strip().lower() if email is not None else None
        with self.state.lock:
            return [r for r in self.state.revocations if wanted is None or r.email == wanted]

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Access tokens expire now: the API answers 401 until the client refreshes."""
        with self.state.lock:
            self.state.expire_access_tokens(email)


def _meet_request() -> JsonDict:
    return {"requestId": secrets.token_hex(8), "conferenceSolutionKey": {"type": "hangoutsMeet"}}


def _original_start_key(resource: JsonDict) -> tuple[Any, str]:
    original = resource["originalStartTime"]
    return as_instant(timing_of({"start": original, "end": original}).start), str(resource["id"])


def _start_key(resource: JsonDict) -> tuple[Any, str]:
    return as_instant(timing_of(resource).start), str(resource["id"])
