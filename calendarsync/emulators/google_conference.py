"""Google Meet video calls of the emulated Google Calendar (`conferenceData`, `hangoutLink`).

A client that sends `conferenceDataVersion=1` may ask for a conference with
`conferenceData.createRequest` (`requestId`, `conferenceSolutionKey.type` "hangoutsMeet"). The
write's answer shows the request "pending" and no entry points; Google makes the conference
shortly after, so the next read shows `statusCode` "success", the video entry point and
`hangoutLink`, with a new etag (the event changed). A repeated `requestId` is ignored. Without
`conferenceDataVersion=1` the body's `conferenceData` is ignored. Sources:
https://developers.google.com/calendar/api/v3/reference/events (conferenceData, hangoutLink),
https://developers.google.com/calendar/api/v3/reference/events/insert (conferenceDataVersion),
https://developers.google.com/calendar/api/guides/create-events#conferencing.

Callers hold `EmulatorState.lock`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from calendarsync.emulators.google_events import ordered, stamp
from calendarsync.emulators.google_http import ApiError, JsonDict
from calendarsync.emulators.google_state import Calendar, EmulatorState, PendingConference, StoredEvent

MEET = "hangoutsMeet"
MEET_SOLUTION: JsonDict = {
    "key": {"type": MEET},
    "name": "Google Meet",
    "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

# Makes the copies of an event show what its organizer's event now holds (google_meetings.py).
Mirror = Callable[[EmulatorState, Calendar, str], None]


def conference_version(raw: str | None) -> int:
    """The `conferenceDataVersion` query parameter: 0 (default) or 1."""
    if raw is None or raw == "":
        return 0
    if raw not in ("0", "1"):
        raise ApiError(400, "invalid", "Invalid value for: conferenceDataVersion")
    return int(raw)


def has_conference(resource: JsonDict) -> bool:
    return isinstance(resource.get("conferenceData"), dict)


def apply_conference(
    state: EmulatorState,
    calendar: Calendar,
    top_id: str,
    stored: StoredEvent,
    body: JsonDict,
    *,
    replace: bool,
) -> None:
    """Apply the body's `conferenceData` to a just-written event (conferenceDataVersion=1 only).

    `replace` (events.update): a body without conferenceData removes the conference; a patch keeps it.
    A createRequest with a new requestId starts a conference; the same requestId again is ignored.
    """
    if "conferenceData" not in body:
        if replace:
            _drop(stored.resource)
        return
    data = body["conferenceData"]
    if data is None:
        _drop(stored.resource)
        return
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "Invalid conference data.")
    create = data.get("createRequest")
    if create is None:
        # Copying conference data the client read (version 1 "copying of ConferenceData").
        if data.get("entryPoints") or data.get("conferenceId"):
            stored.resource["conferenceData"] = data
            _link_from_entry_points(stored.resource)
            stored.resource = ordered(stored.resource)
        return
    request_id = _request_id(create)
    current = stored.resource.get("conferenceData")
    if isinstance(current, dict) and current.get("createRequest", {}).get("requestId") == request_id:
        return  # Google: "If an ID provided is the same as for the previous request, the request is ignored."
    stored.resource.pop("hangoutLink", None)
    stored.resource["conferenceData"] = {
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": MEET},
            "status": {"statusCode": "pending"},
        }
    }
    stored.resource = ordered(stored.resource)
    state.pending_conferences.append(PendingConference(calendar, top_id, stored, request_id))


def _request_id(create: object) -> str:
    if not isinstance(create, dict):
        raise ApiError(400, "invalid", "Invalid conference create request.")
    request_id = create.get("requestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise ApiError(400, "invalid", "Invalid conference create request id.")
    key = create.get("conferenceSolutionKey")
    kind = key.get("type") if isinstance(key, dict) else None
    if kind != MEET:
        raise ApiError(400, "invalid", "Invalid conference type value.")
    return request_id


def _drop(resource: JsonDict) -> None:
    resource.pop("conferenceData", None)
    resource.pop("hangoutLink", None)


def _link_from_entry_points(resource: JsonDict) -> None:
    for entry in resource["conferenceData"].get("entryPoints") or ():
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            resource["hangoutLink"] = str(entry["uri"])
            return
    resource.pop("hangoutLink", None)


def meet_code(seed: str) -> str:
    """A Meet code as Google shows them (xxx-xxxx-xxx), stable for one seed."""
    digest = hashlib.sha256(seed.encode()).digest()
    letters = "".join(_LETTERS[byte % len(_LETTERS)] for byte in digest[:10])
    return f"{letters[:3]}-{letters[3:7]}-{letters[7:]}"


def made_conference(request_id: str, code: str) -> JsonDict:
    uri = f"https://meet.google.com/{code}"
    return {
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{code}"}],
        "conferenceSolution": dict(MEET_SOLUTION),
        "conferenceId": code,
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": MEET},
            "status": {"statusCode": "success"},
        },
    }


def complete_conferences(state: EmulatorState, mirror: Mirror) -> None:
    """Google makes the conferences asked for: each event changes (new etag) and shows its link."""
    pending, state.pending_conferences = state.pending_conferences, []
    for item in pending:
        resource = item.stored.resource
        data = resource.get("conferenceData")
        if item.stored.deleted or not isinstance(data, dict):
            continue
        create = data.get("createRequest") or {}
        if (
            create.get("requestId") != item.request_id
            or create.get("status", {}).get("statusCode") != "pending"
        ):
            continue
        code = meet_code(f"{item.calendar.id}|{item.stored.id}|{item.request_id}")
        resource["conferenceData"] = made_conference(item.request_id, code)
        resource["hangoutLink"] = f"https://meet.google.com/{code}"
        item.stored.changed_seq = stamp(state, resource)
        item.stored.resource = ordered(resource)
        mirror(state, item.calendar, item.top_id)
