"""What the R11 tests need beyond ``SyncEnv``: the writes the emulators received, rich attendees
set as the calendar user would, and each provider's raw privacy value.

Field names are the merge's (``calendarsync.sync.mapping.FIELD_NAMES``), plus ``tag``.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from calendarsync.emulators.microsoft_state import now as graph_now
from calendarsync.models import Provider
from tests.calendarsync.sync.conftest import SyncEnv

_T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
_GOOGLE_FIELDS = {
    "summary": "subject",
    "start": "time",
    "end": "time",
    "location": "location",
    "description": "description",
    "attendees": "attendees",
    "visibility": "private",
    "transparency": "busy",
    "extendedProperties": "tag",
}
_GRAPH_FIELDS = {
    "subject": "subject",
    "start": "time",
    "end": "time",
    "isAllDay": "time",
    "location": "location",
    "body": "description",
    "attendees": "attendees",
    "sensitivity": "private",
    "showAs": "busy",
    "singleValueExtendedProperties": "tag",
}
_EWS_FIELDS = {
    "item:Subject": "subject",
    "calendar:Start": "time",
    "calendar:End": "time",
    "calendar:IsAllDayEvent": "time",
    "calendar:StartTimeZone": "time",
    "calendar:EndTimeZone": "time",
    "calendar:Location": "location",
    "item:Body": "description",
    "calendar:RequiredAttendees": "attendees",
    "calendar:OptionalAttendees": "attendees",
    "item:Sensitivity": "private",
    "calendar:LegacyFreeBusyStatus": "busy",
}
# A value of the provider's privacy setting that is neither the default nor private.
NOT_DEFAULT_NOT_PRIVATE = {
    Provider.GOOGLE: "public",
    Provider.MICROSOFT: "personal",
    Provider.EXCHANGE: "Personal",
}


def settle(sync_env: SyncEnv) -> None:
    """Let the clock move on between two edits: Exchange stamps changes to the second."""
    time.sleep(1.05 if sync_env.setup.provider == Provider.EXCHANGE else 0.02)


def _log(sync_env: SyncEnv) -> list[Any]:
    return list(sync_env.control.emulator.request_log())  # type: ignore[attr-defined]


def sent_updates(sync_env: SyncEnv) -> list[dict[str, Any]]:
    """Each event update the calendar received since the last ``reset_counts``: the provider's own
    field names -> what was sent (JSON values; EWS: the field's element, None when deleted)."""
    provider = sync_env.setup.provider
    updates: list[dict[str, Any]] = []
    for entry in _log(sync_env):
        if (provider == Provider.GOOGLE and entry.name in ("events.patch", "events.update")) or (
            provider == Provider.MICROSOFT and entry.name == "events.update"
        ):
            updates.append(json.loads(entry.body))
        elif provider == Provider.EXCHANGE and entry.name == "UpdateItem":
            updates.extend(_ews_changes(entry.body))
    return updates


def _ews_changes(body: bytes) -> list[dict[str, Any]]:
    root = ET.fromstring(body)  # noqa: S314  (our own client's request)
    changes = []
    for change in root.iter(f"{_T}ItemChange"):
        fields: dict[str, Any] = {}
        for update in change.iter():
            kind = update.tag.removeprefix(_T)
            if kind not in ("SetItemField", "DeleteItemField", "AppendToItemField"):
                continue
            uri = update.find(f"{_T}FieldURI")
            name = uri.attrib["FieldURI"] if uri is not None else "extended"
            value = update.find(f"{_T}CalendarItem")
            fields[name] = None if kind == "DeleteItemField" or value is None else next(iter(value))
        changes.append(fields)
    return changes


def written_fields(sync_env: SyncEnv) -> list[set[str]]:
    """The merge fields each update wrote (provider-neutral names)."""
    names = {
        Provider.GOOGLE: _GOOGLE_FIELDS,
        Provider.MICROSOFT: _GRAPH_FIELDS,
        Provider.EXCHANGE: _EWS_FIELDS,
    }[Provider(sync_env.setup.provider)]
    return [{names.get(key, "tag") for key in update} for update in sent_updates(sync_env)]


@dataclass(frozen=True)
class RichAttendee:
    email: str
    name: str = ""
    response: str = "needsAction"  # accepted, declined, tentative, needsAction
    optional: bool = False


_EWS_RESPONSES = {
    "accepted": "Accept",
    "declined": "Decline",
    "tentative": "Tentative",
    "needsAction": "Unknown",
}
_GRAPH_RESPONSES = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentativelyAccepted",
    "needsAction": "none",
}


def set_attendees(sync_env: SyncEnv, external_id: str, attendees: list[RichAttendee]) -> None:
    """The event's guests with names, answers and the optional flag, as the calendar holds them
    once the guests answered (Graph: the answers arrive by themselves, not through a PATCH)."""
    control: Any = sync_env.control
    provider = sync_env.setup.provider
    if provider == Provider.GOOGLE:
        body = [
            {"email": a.email, "displayName": a.name, "responseStatus": a.response, "optional": a.optional}
            for a in attendees
        ]
        control.emulator.user_update_event(control.email, external_id, {"attendees": body})
    elif provider == Provider.MICROSOFT:
        body = [
            {
                "emailAddress": {"address": a.email, "name": a.name},
                "type": "optional" if a.optional else "required",
            }
            for a in attendees
        ]
        control.emulator.user_update_event(control.email, external_id, {"attendees": body})
        _graph_answers(control, external_id, {a.email: _GRAPH_RESPONSES[a.response] for a in attendees})
    else:
        entries = [
            {"email": a.email, "name": a.name, "response": _EWS_RESPONSES[a.response], "optional": a.optional}
            for a in attendees
        ]
        control.emulator.user_update_event(control.email, external_id, {"attendees": entries})


def _graph_answers(control: Any, external_id: str, answers: dict[str, str]) -> None:
    emulator = control.emulator
    with emulator.state.lock:
        stored = emulator.state.calendar(control.email, None).events[external_id]
        for attendee in stored.fields["attendees"]:
            attendee["status"] = {
                "response": answers[attendee["emailAddress"]["address"]],
                "time": "2025-01-01T00:00:00Z",
            }
        stored.modified = graph_now()
        stored.seq = emulator.state.next_seq()


def raw_privacy(sync_env: SyncEnv, external_id: str) -> str:
    """The provider's own privacy value of the event (Google visibility, Graph/EWS sensitivity)."""
    control: Any = sync_env.control
    raw = control.emulator.user_get_event(control.email, external_id)
    return str(raw["visibility"] if sync_env.setup.provider == Provider.GOOGLE else raw["sensitivity"])


def set_raw_privacy(sync_env: SyncEnv, external_id: str, value: str) -> None:
    control: Any = sync_env.control
    key = "visibility" if sync_env.setup.provider == Provider.GOOGLE else "sensitivity"
    control.emulator.user_update_event(control.email, external_id, {key: value})
