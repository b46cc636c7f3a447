"""The Microsoft Graph calendar endpoints of the emulator (`/v1.0/...`) and JSON batching.

References: https://learn.microsoft.com/en-us/graph/api/resources/calendar,
https://learn.microsoft.com/en-us/graph/api/event-delta, https://learn.microsoft.com/en-us/graph/json-batching
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import urllib.parse
import zlib
from dataclasses import dataclass

from calendarsync.emulators.google_http import JsonDict, Request, Response, empty_response, json_response
from calendarsync.emulators.microsoft_events import (
    check_if_match,
    delete_event,
    delete_occurrence,
    find_occurrence,
    insert_event,
    live_event,
    sort_key,
    update_event,
)
from calendarsync.emulators.microsoft_meetings import RSVP_ACTIONS, respond
from calendarsync.emulators.microsoft_occurrences import update_occurrence
from calendarsync.emulators.microsoft_render import RenderOptions, render, views_in_window
from calendarsync.emulators.microsoft_state import (
    CALENDARS_READ,
    CALENDARS_READWRITE,
    USER_READ,
    AccessGrant,
    Calendar,
    DeltaPage,
    GraphError,
    MicrosoftState,
    Window,
    item_not_found,
    sync_state_not_found,
)

MAX_BATCH_REQUESTS = 20
RSVP_ENDPOINTS = frozenset(f"events.{action}" for action in RSVP_ACTIONS)
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
READ_SCOPES = frozenset({CALENDARS_READ, CALENDARS_READWRITE})
WRITE_SCOPES = frozenset({CALENDARS_READWRITE})
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
# singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')
_PROPERTY_FILTER = re.compile(
    r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*",
    re.IGNORECASE,
)
# singleValueExtendedProperties($filter=id eq '...')
_PROPERTY_EXPAND = re.compile(
    r"\s*singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'\s*\))?\s*",
    re.IGNORECASE,
)


def endpoint_name(method: str, segments: list[str]) -> str:
    """The Graph operation a request under /v1.0 asks for, e.g. 'events.delta'; '' if none."""
    match segments:
        case ["me"] if method == "GET":
            return "me.get"
        case ["me", "calendars"] if method == "GET":
            return "calendars.list"
        case ["me", "calendars", _] | ["me", "calendar"] if method == "GET":
            return "calendars.get"
        case ["me", "calendars", _, "events"] | ["me", "calendar", "events"] | ["me", "events"]:
            return {"GET": "events.list", "POST": "events.create"}.get(method, "")
        case ["me", "calendars", _, "events", _] | ["me", "calendar", "events", _] | ["me", "events", _]:
            return {"GET": "events.get", "PATCH": "events.update", "DELETE": "events.delete"}.get(method, "")
        case (
            ["me", "calendars", _, "events", _, action]
            | ["me", "calendar", "events", _, action]
            | ["me", "events", _, action]
        ) if method == "POST" and action in RSVP_ACTIONS:
            # https://learn.microsoft.com/en-us/graph/api/event-accept (and tentativelyAccept, decline)
            return f"events.{action}"
        case ["me", "calendars", _, "calendarView", "delta"] | ["me", "calendarView", "delta"] if (
            method == "GET"
        ):
            return "events.delta"
    return ""


def authenticate(state: MicrosoftState, req: Request) -> AccessGrant:
    scheme, _, token = (req.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            headers=[("WWW-Authenticate", _WWW_AUTHENTICATE)],
        )
    grant = state.access_grants.get(token.strip())
    if grant is None or not grant.usable():
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired."
            if grant
            else "IDX14100: JWT is not well formed.",
            headers=[("WWW-Authenticate", _WWW_AUTHENTICATE)],
        )
    return grant


def _require(grant: AccessGrant, allowed: frozenset[str]) -> None:
    if not set(grant.scopes) & allowed:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _prefer(req: Request) -> dict[str, str]:
    """The Prefer header's preferences: name -> value (quotes removed)."""
    found: dict[str, str] = {}
    for part in (req.header("prefer") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.strip().lower()] = value.strip().strip('"')
    return found


def render_options(req: Request, *, expand: str | None = None) -> RenderOptions:
    prefer = _prefer(req)
    time_zone = prefer.get("outlook.timezone") or "UTC"
    extended: frozenset[str] | None = None
    if expand:
        match = _PROPERTY_EXPAND.fullmatch(expand)
        if match is None:
            raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: '{expand}'.")
        extended = frozenset({match[1].replace("''", "'").lower()} if match[1] is not None else {"*"})
    return RenderOptions(
        time_zone=time_zone, text_body=prefer.get("outlook.body-content-type") == "text", extended=extended
    )


def _page_size(req: Request, default: int) -> tuple[int, list[tuple[str, str]]]:
    raw = _prefer(req).get("odata.maxpagesize")
    if raw is None:
        return default, []
    try:
        size = max(1, min(int(raw), MAX_PAGE_SIZE))
    except ValueError:
        return default, []
    return size, [("Preference-Applied", f"odata.maxpagesize={size}")]


def _context(req: Request, what: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#{what}"


def handle_graph_request(state: MicrosoftState, req: Request, name: str) -> Response:
    """Serve one Graph call; `req.segments` start with 'v1.0'. Hold state.lock."""
    if not name:
        raise GraphError(
            400, "BadRequest", f"Resource not found for the segment '{'/'.join(req.segments[1:])}'."
        )
    grant = authenticate(state, req)
    user = state.user(grant.email)
    segments = req.segments[1:]
    if name == "me.get":
        _require(grant, frozenset({USER_READ}))
        return json_response(
            {
                "@odata.context": _context(req, "users/$entity"),
                "id": user.oid,
                "displayName": user.display_name,
                "mail": user.email,
                "userPrincipalName": user.email,
            }
        )
    writes = name in ("events.create", "events.update", "events.delete") or name in RSVP_ENDPOINTS
    _require(grant, WRITE_SCOPES if writes else READ_SCOPES)
    if name == "calendars.list":
        items = [_calendar_resource(calendar) for calendar in user.calendars.values()]
        return json_response({"@odata.context": _context(req, "users('me')/calendars"), "value": items})
    calendar_id = segments[2] if len(segments) > 2 and segments[1] == "calendars" else None
    calendar = state.calendar(user.email, calendar_id)
    if name == "calendars.get":
        return json_response(_calendar_resource(calendar))
    if name == "events.delta":
        return _delta(state, calendar, req)
    if name == "events.list":
        return _list_events(calendar, req)
    if name == "events.create":
        stored, _new = insert_event(state, calendar, req_json(req))
        body = render(stored, calendar, render_options(req, expand=req.arg("$expand")))
        return json_response(body, 201, [("ETag", stored.etag)])
    event_id = segments[-2] if name in RSVP_ENDPOINTS else segments[-1]
    if segments[1] == "events":  # /me/events/{id}: any of the user's calendars
        found = state.find_event(user.email, event_id)
        if found is not None:
            calendar = found[0]
    return _event_call(state, calendar, event_id, name, req)


def req_json(req: Request) -> JsonDict:
    if not req.body.strip():
        return {}
    try:
        data = json.loads(req.body)
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return data


def _calendar_resource(calendar: Calendar) -> JsonDict:
    return {
        "id": calendar.id,
        "name": calendar.name,
        "color": "auto",
        "isDefaultCalendar": calendar.is_default,
        "changeKey": f"{zlib.crc32(calendar.name.encode()):010d}",
        "canShare": calendar.is_default,
        "canViewPrivateItems": True,
        "canEdit": calendar.can_edit,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": calendar.owner, "address": calendar.owner},
    }


_ALWAYS_SELECTED = frozenset({"id", "@odata.etag", "singlevalueextendedproperties"})


def _selected(resource: JsonDict, req: Request) -> JsonDict:
    """`$select`: only the named properties (plus id, etag and what `$expand` asked for)."""
    raw = req.arg("$select")
    if not raw:
        return resource
    # Property names in $select are case-insensitive.
    keep = {name.strip().lower() for name in raw.split(",")} | _ALWAYS_SELECTED
    return {key: value for key, value in resource.items() if key.lower() in keep}


def _event_call(
    state: MicrosoftState, calendar: Calendar, event_id: str, name: str, req: Request
) -> Response:
    stored = calendar.events.get(event_id)
    if stored is None:
        occurrence = find_occurrence(calendar, event_id)
        if occurrence is None:
            raise item_not_found()
        series, found = occurrence
        if name != "events.get":
            # A refusal the operator injected for this one occurrence (e.g. 403 ErrorAccessDenied).
            state.take_event_fault(event_id)
        if name in RSVP_ENDPOINTS:
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "The emulator takes responses to a whole meeting, not to one occurrence.",
            )
        if name == "events.delete":
            check_if_match(series, req.header("if-match"))
            delete_occurrence(state, calendar, series, event_id)
            return empty_response(204)
        if name == "events.update":
            update_occurrence(state, calendar, series, found, req_json(req), req.header("if-match"))
        body = render(series, calendar, render_options(req, expand=req.arg("$expand")), found)
        return json_response(_selected(body, req), headers=[("ETag", series.etag)])
    stored = live_event(calendar, event_id)
    if name != "events.get":
        state.take_event_fault(event_id)
    if name == "events.get":
        body = _selected(render(stored, calendar, render_options(req, expand=req.arg("$expand"))), req)
        return json_response(body, headers=[("ETag", stored.etag)])
    if name == "events.delete":
        delete_event(state, calendar, stored, req.header("if-match"))
        return empty_response(204)
    if name in RSVP_ENDPOINTS:
        respond(state, calendar, stored, name.partition(".")[2], req_json(req))
        return empty_response(202)
    update_event(state, calendar, stored, req_json(req), req.header("if-match"))
    body = render(stored, calendar, render_options(req, expand=req.arg("$expand")))
    return json_response(body, headers=[("ETag", stored.etag)])


# -- listing ---------------------------------------------------------------------------------


def _int_arg(req: Request, name: str, default: int) -> int:
    try:
        return int(req.arg(name) or default)
    except ValueError:
        raise GraphError(400, "BadRequest", f"Invalid value for {name}.") from None


def _list_events(calendar: Calendar, req: Request) -> Response:
    """Single events and series masters (no occurrences), by start; `$filter` on an extended property."""
    options = render_options(req, expand=req.arg("$expand"))
    wanted: tuple[str, str] | None = None
    raw_filter = req.arg("$filter")
    if raw_filter:
        match = _PROPERTY_FILTER.fullmatch(raw_filter)
        if match is None:
            raise GraphError(
                400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."
            )
        wanted = (match[2].replace("''", "'").lower(), match[3].replace("''", "'"))
    top = max(1, min(_int_arg(req, "$top", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE))
    skip = max(0, _int_arg(req, "$skip", 0))
    rows = []
    for stored in sorted(calendar.events.values(), key=sort_key):
        if stored.deleted:
            continue
        if wanted is not None and not any(
            key.lower() == wanted[0] and value == wanted[1] for key, value in stored.extended.items()
        ):
            continue
        rows.append(stored)
    page = rows[skip : skip + top]
    body: JsonDict = {
        "@odata.context": _context(req, "users('me')/calendars('')/events"),
        "value": [render(stored, calendar, options) for stored in page],
    }
    if skip + top < len(rows):
        query = {key: values[0] for key, values in req.query.items() if key != "$skip"}
        query["$skip"] = str(skip + top)
        body["@odata.nextLink"] = f"{req.base_url}{req.path}?{urllib.parse.urlencode(query)}"
    return json_response(body)


# -- delta -------------------------------------------------------------------------------------


def _parse_window_bound(req: Request, name: str) -> dt.datetime:
    raw = req.arg(name) or req.arg(name.lower())
    if not raw:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    try:
        moment = dt.datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise GraphError(
            400, "ErrorInvalidParameter", f"The value '{raw}' of {name} is not a valid date and time."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _removed(item_id: str) -> JsonDict:
    return {"@odata.type": "#microsoft.graph.event", "id": item_id, "@removed": {"reason": "deleted"}}


def _delta(state: MicrosoftState, calendar: Calendar, req: Request) -> Response:
    """calendarView delta: the window is fixed by the round's first call and kept by its tokens."""
    refused = [name for name in ("$expand", "$filter", "$select", "$orderby", "$search") if req.arg(name)]
    if refused:
        raise GraphError(
            400,
            "ErrorInvalidUrlQuery",
            f"The query parameter '{refused[0]}' is not supported with change tracking over the 'CalendarView' resource.",
        )
    options = render_options(req)
    page_size, applied = _page_size(req, DEFAULT_PAGE_SIZE)
    skip_token, delta_token = req.arg("$skiptoken"), req.arg("$deltatoken")
    if skip_token:
        page = state.delta_pages.get(skip_token)
        if page is None or page.expired or (page.email, page.calendar_id) != (calendar.owner, calendar.id):
            raise sync_state_not_found()
        items, offset, final_token = page.items, page.offset, page.final_token
    else:
        items, final_token = _round_items(state, calendar, req, options, delta_token)
        offset = 0
    end = offset + page_size
    base = f"{req.base_url}{req.path}"
    body: JsonDict = {"@odata.context": _context(req, "Collection(event)"), "value": items[offset:end]}
    if end < len(items):
        token = secrets.token_urlsafe(24)
        state.delta_pages[token] = DeltaPage(calendar.owner, calendar.id, items, end, final_token)
        body["@odata.nextLink"] = f"{base}?{urllib.parse.urlencode({'$skiptoken': token})}"
    else:
        body["@odata.deltaLink"] = f"{base}?{urllib.parse.urlencode({'$deltatoken': final_token})}"
    return json_response(body, headers=applied)


def _round_items(
    state: MicrosoftState, calendar: Calendar, req: Request, options: RenderOptions, delta_token: str | None
) -> tuple[list[JsonDict], str]:
    """Every item of this delta call (all pages) and the token that ends the round."""
    if delta_token:
        record = state.delta_tokens.get(delta_token)
        # Unknown tokens (e.g. after an emulator restart) also ask for a full sync.
        if (
            record is None
            or record.expired
            or (record.email, record.calendar_id) != (calendar.owner, calendar.id)
        ):
            raise sync_state_not_found()
        window, since, visible = record.window, record.seq, dict(record.visible)
    else:
        window = Window(_parse_window_bound(req, "startDateTime"), _parse_window_bound(req, "endDateTime"))
        if window.end <= window.start:
            raise GraphError(
                400, "ErrorInvalidParameter", "The end of the time window is not after its start."
            )
        since, visible = 0, {}
    items: list[JsonDict] = []
    for stored in sorted(calendar.events.values(), key=lambda s: s.seq):
        if stored.seq <= since:
            continue
        views = views_in_window(stored, calendar, window, options)
        current = {view["id"] for view in views}
        if not views and not stored.deleted and stored.id not in visible.values() and since:
            # Graph reports a live event changed outside the round's window as removed,
            # even one it never listed (microsoft-graph-docs issues 6599 and 4258).
            items.append(_removed(stored.id))
        for item_id in [
            item_id for item_id, owner in visible.items() if owner == stored.id and item_id not in current
        ]:
            items.append(_removed(item_id))
            del visible[item_id]
        for view in views:
            items.append(view)
            visible[view["id"]] = stored.id
    return items, state.new_delta_token(calendar.owner, calendar.id, window, state.seq, visible)


# -- JSON batching -----------------------------------------------------------------------------


@dataclass
class BatchPart:
    id: str
    request: Request


def parse_batch(req: Request) -> list[BatchPart]:
    """The requests of a JSON batch, as requests under /v1.0 authorised like the batch itself."""
    payload = req_json(req)
    requests = payload.get("requests")
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise GraphError(400, "BadRequest", f"Limit of {MAX_BATCH_REQUESTS} requests per batch exceeded.")
    parts: list[BatchPart] = []
    seen: set[str] = set()
    for item in requests:
        if not isinstance(item, dict):
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        part_id, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(part_id, str) or not part_id or part_id in seen:
            raise GraphError(400, "BadRequest", "Batch request ids must be unique non-empty strings.")
        seen.add(part_id)
        if not isinstance(method, str) or not isinstance(url, str) or not url.startswith("/"):
            raise GraphError(400, "BadRequest", "Each batch request needs a method and a relative url.")
        raw_headers = item.get("headers") or {}
        if not isinstance(raw_headers, dict):
            raise GraphError(400, "BadRequest", "Batch request headers must be an object.")
        headers = {str(key).lower(): str(value) for key, value in raw_headers.items()}
        body = b""
        if item.get("body") is not None:
            if "content-type" not in headers:
                raise GraphError(
                    400, "BadRequest", "Content-Type header must be specified when a body is present."
                )
            body = json.dumps(item["body"]).encode()
        if req.header("authorization"):
            headers["authorization"] = str(req.header("authorization"))
        parts.append(
            BatchPart(part_id, Request.from_target(method, "/v1.0" + url, headers, body, req.base_url))
        )
    return parts


def batch_response(parts: list[tuple[str, Response]]) -> Response:
    """Graph answers the parts of a batch in any order: the emulator reverses them to keep clients honest."""
    responses = []
    for part_id, response in reversed(parts):
        entry: JsonDict = {
            "id": part_id,
            "status": response.status,
            "headers": {
                key: value for key, value in response.header_list() if key.lower() != "content-length"
            },
        }
        if response.body:
            try:
                entry["body"] = json.loads(response.body)
            except ValueError:
                entry["body"] = response.body.decode("utf-8", "replace")
        responses.append(entry)
    return json_response({"responses": responses})
