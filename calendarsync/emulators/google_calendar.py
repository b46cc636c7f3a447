"""The Calendar API v3 endpoints of the emulator (`/calendar/v3/...`) and the batch wire format."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import secrets
import zlib
from dataclasses import dataclass

from calendarsync.emulators.google_events import render
from calendarsync.emulators.google_http import (
    ApiError,
    JsonDict,
    Request,
    Response,
    empty_response,
    json_response,
)
from calendarsync.emulators.google_instances import get_event, list_instances
from calendarsync.emulators.google_listing import list_events
from calendarsync.emulators.google_meetings import delete, insert, update, write_options
from calendarsync.emulators.google_state import (
    CALENDAR_READONLY_SCOPE,
    CALENDAR_SCOPE,
    EVENTS_READONLY_SCOPE,
    EVENTS_SCOPE,
    AccessGrant,
    Calendar,
    EmulatorState,
)

MAX_BATCH_PARTS = 1000
CALENDAR_READ_SCOPES = frozenset({CALENDAR_SCOPE, CALENDAR_READONLY_SCOPE})
EVENT_READ_SCOPES = frozenset({CALENDAR_SCOPE, CALENDAR_READONLY_SCOPE, EVENTS_SCOPE, EVENTS_READONLY_SCOPE})
EVENT_WRITE_SCOPES = frozenset({CALENDAR_SCOPE, EVENTS_SCOPE})

_AUTH_ERROR_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def endpoint_name(method: str, segments: list[str]) -> str:
    """The API method a request under /calendar/v3 calls, e.g. 'events.list'; '' if none."""
    match segments:
        case ["users", "me", "calendarList"] if method == "GET":
            return "calendarList.list"
        case ["users", "me", "calendarList", _] if method == "GET":
            return "calendarList.get"
        case ["calendars", _] if method == "GET":
            return "calendars.get"
        case ["calendars", _, "events"]:
            return {"GET": "events.list", "POST": "events.insert"}.get(method, "")
        case ["calendars", _, "events", _]:
            return {
                "GET": "events.get",
                "PATCH": "events.patch",
                "PUT": "events.update",
                "DELETE": "events.delete",
            }.get(method, "")
        case ["calendars", _, "events", _, "instances"] if method == "GET":
            return "events.instances"
    return ""


def _required_scopes(name: str) -> frozenset[str]:
    if name.startswith("events."):
        return (
            EVENT_READ_SCOPES
            if name in ("events.list", "events.get", "events.instances")
            else EVENT_WRITE_SCOPES
        )
    return CALENDAR_READ_SCOPES


def authenticate(state: EmulatorState, req: Request, fallback_authorization: str | None) -> AccessGrant:
    authorization = req.header("authorization") or fallback_authorization or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = req.arg("access_token") or ""
    if not token:
        raise ApiError(
            401,
            "required",
            "Login Required.",
            extra={"location": "Authorization", "locationType": "header"},
            headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')],
            top_message=_AUTH_ERROR_MESSAGE,
        )
    grant = state.access_grants.get(token.strip())
    if grant is None or not grant.usable():
        raise ApiError(
            401,
            "authError",
            "Invalid Credentials",
            extra={"location": "Authorization", "locationType": "header"},
            headers=[
                ("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"')
            ],
            top_message=_AUTH_ERROR_MESSAGE,
        )
    return grant


def _calendar_etag(calendar: Calendar) -> str:
    return f'"{zlib.crc32(f"{calendar.id}|{calendar.summary}".encode())}"'


def _calendar_list_entry(state: EmulatorState, calendar: Calendar) -> JsonDict:
    entry: JsonDict = {
        "kind": "calendar#calendarListEntry",
        "etag": _calendar_etag(calendar),
        "id": calendar.id,
        "summary": calendar.summary,
        "timeZone": calendar.time_zone,
        "colorId": "14",
        "backgroundColor": "#9fe1e7",
        "foregroundColor": "#000000",
        "selected": True,
        "accessRole": "owner",
        "defaultReminders": [],
    }
    if calendar.primary:
        entry["primary"] = True
    return entry


def _with_etag(resource: JsonDict, status: int = 200) -> Response:
    return json_response(resource, status, [("ETag", str(resource.get("etag", "")))])


def handle_calendar_request(
    state: EmulatorState, req: Request, name: str, fallback_authorization: str | None
) -> Response:
    """Serve one Calendar API call; `req.segments` start with 'calendar', 'v3'. Hold state.lock."""
    segments = req.segments[2:]
    if not name:
        raise ApiError(404, "notFound", "Not Found")
    grant = authenticate(state, req, fallback_authorization)
    if not set(grant.scopes) & _required_scopes(name):
        raise ApiError(
            403,
            "insufficientPermissions",
            "Insufficient Permission",
            top_message="Request had insufficient authentication scopes.",
            headers=[
                (
                    "WWW-Authenticate",
                    'Bearer realm="https://accounts.google.com/", error="insufficient_scope"',
                )
            ],
        )
    user = state.user(grant.email)
    if name == "calendarList.list":
        return json_response(
            {
                "kind": "calendar#calendarList",
                "etag": state.etag(state.seq),
                "items": [_calendar_list_entry(state, calendar) for calendar in user.calendars.values()],
            }
        )
    calendar = state.calendar(user.email, segments[1] if name != "calendarList.get" else segments[3])
    if name == "calendarList.get":
        return json_response(_calendar_list_entry(state, calendar))
    if name == "calendars.get":
        return json_response(
            {
                "kind": "calendar#calendar",
                "etag": _calendar_etag(calendar),
                "id": calendar.id,
                "summary": calendar.summary,
                "timeZone": calendar.time_zone,
            }
        )
    if name == "events.list":
        return json_response(list_events(state, calendar, req))
    if name == "events.insert":
        return _with_etag(render(insert(state, calendar, req.json(), write_options(req))))
    event_id = segments[3]
    if name == "events.instances":
        return json_response(list_instances(state, calendar, event_id, req))
    if name == "events.get":
        resource = get_event(calendar, event_id)
        if req.header("if-none-match") == resource.get("etag"):
            return empty_response(304)
        return _with_etag(resource)
    # A refusal the operator injected for this one event (e.g. 403 forbiddenForNonOrganizer).
    state.take_event_fault(event_id)
    if name == "events.delete":
        delete(state, calendar, event_id, write_options(req), if_match=req.header("if-match"))
        return empty_response(204)
    stored = update(
        state,
        calendar,
        event_id,
        req.json(),
        write_options(req),
        patch=name == "events.patch",
        if_match=req.header("if-match"),
    )
    return _with_etag(render(stored))


# -- batch -----------------------------------------------------------------------------------


@dataclass
class BatchPart:
    content_id: str | None
    request: Request


def _unfold(value: str | None) -> str | None:
    return None if value is None else value.replace("\r", "").replace("\n", "").strip()


def _split_head(rest: bytes) -> tuple[bytes, bytes]:
    """Headers and body of an HTTP message after its first line (CRLF or bare LF endings)."""
    if rest.startswith((b"\r\n", b"\n")):
        return b"", rest.lstrip(b"\r\n")
    ends = [(index, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (index := rest.find(sep)) >= 0]
    if not ends:
        return rest, b""
    index, length = min(ends)
    return rest[:index], rest[index + length :]


def _parse_inner_request(raw: bytes, base_url: str) -> Request:
    request_line, _, rest = raw.lstrip(b"\r\n").partition(b"\n")
    parts = request_line.decode("latin-1").strip().split(" ")
    if len(parts) < 2:
        raise ApiError(400, "badRequest", "Failed to parse batch request")
    head, body = _split_head(rest)
    headers: dict[str, str] = {}
    last = ""
    for line in head.decode("latin-1").splitlines():
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip().lower()
            headers[last] = value.strip()
    return Request.from_target(parts[0], parts[1], headers, body, base_url)


def parse_batch(req: Request) -> list[BatchPart]:
    content_type = req.header("content-type") or ""
    if not content_type.lower().startswith("multipart/mixed") or "boundary" not in content_type:
        raise ApiError(400, "badRequest", "Batch requests must be multipart/mixed with a boundary.")
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + req.body
    )
    payload = message.get_payload()
    if not isinstance(payload, list) or not payload:
        raise ApiError(400, "badRequest", "Batch request contains no parts.")
    if len(payload) > MAX_BATCH_PARTS:
        raise ApiError(
            400, "badRequest", f"A batch request cannot contain more than {MAX_BATCH_PARTS} requests."
        )
    parts = []
    for part in payload:
        if not isinstance(part, email.message.Message):
            raise ApiError(400, "badRequest", "Failed to parse batch request")
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            raise ApiError(400, "badRequest", "Failed to parse batch request")
        parts.append(BatchPart(_unfold(part["Content-ID"]), _parse_inner_request(raw, req.base_url)))
    return parts


def _response_content_id(content_id: str | None) -> str | None:
    if not content_id:
        return None
    inner = content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") else content_id
    return f"<response-{inner}>"


def batch_response(parts: list[tuple[str | None, Response]]) -> Response:
    boundary = "batch_" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for content_id, response in parts:
        head = [f"--{boundary}", "Content-Type: application/http"]
        response_id = _response_content_id(content_id)
        if response_id:
            head.append(f"Content-ID: {response_id}")
        inner = [f"HTTP/1.1 {response.status_line}"]
        inner += [f"{key}: {value}" for key, value in response.header_list()]
        chunks.append(("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(inner) + "\r\n\r\n").encode("utf-8"))
        chunks.append(response.body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(200, b"".join(chunks), f"multipart/mixed; boundary={boundary}")
