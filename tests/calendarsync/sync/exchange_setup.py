"""The sync engine's Exchange entry: the real adapter (exchangelib over HTTP) against the EWS emulator."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import Attendee, CalendarProvider, RemoteEvent
from calendarsync.sync.accounts import provider_for

if TYPE_CHECKING:
    from tests.calendarsync.sync.conftest import SyncSetup

# The zone the emulated Outlook user makes all-day events in (west of UTC would shift them, east too).
ALL_DAY_ZONE = "Europe/Berlin"
RESPONSES = {"Accept": "accepted", "Decline": "declined", "Tentative": "tentative", "Organizer": "accepted"}
# An invitee's own answer (MyResponseType) -> base.RESPONSES, and what the user answers -> EWS.
MY_RESPONSES = {"Accept": "accepted", "Decline": "declined", "Tentative": "tentative"}
ANSWERS = {"accepted": "Accept", "tentative": "Tentative", "declined": "Decline"}
# How the Google-flavoured tests name the request to fail -> the EWS operation doing that.
METHOD_OPERATIONS = {"POST": "CreateItem", "PATCH": "UpdateItem", "PUT": "UpdateItem", "DELETE": "DeleteItem"}
# An HTTP-flavoured refusal -> the response code EWS gives the one item (inside a 200 response).
ITEM_REFUSALS = {403: "ErrorAccessDenied", 404: "ErrorItemNotFound", 400: "ErrorInvalidPropertySet"}


def remote_event(raw: dict[str, Any], owner: str | None = None) -> RemoteEvent:
    """An emulator item summary -> RemoteEvent, as the adapter would read it (``owner``: the
    mailbox, organizer of its own items)."""
    from calendarsync.emulators.exchange_state import zone_of
    from calendarsync.providers.exchange.client import CALSYNC_PROPERTY_SET

    start, end = dt.datetime.fromisoformat(raw["start"]), dt.datetime.fromisoformat(raw["end"])
    times: dict[str, Any]
    if raw["all_day"]:
        zone = zone_of(raw["time_zone"])
        times = {"start_date": start.astimezone(zone).date(), "end_date": end.astimezone(zone).date()}
    else:
        times = {"start": start.astimezone(dt.UTC), "end": end.astimezone(dt.UTC)}
    tag_key = f"{CALSYNC_PROPERTY_SET}|calsync_activity_id|String"
    # As the adapter reads it: a copy names its organizer and carries its owner's answer (and no tag).
    mine = bool(raw.get("is_organizer", True))
    return RemoteEvent(
        external_id=raw["id"],
        etag=raw["change_key"],
        subject=raw["subject"],
        location=raw["location"],
        description=raw["body"],
        attendees=tuple(
            Attendee(
                email=a["email"],
                name=a["name"],
                response=RESPONSES.get(a["response"], "needsAction"),
                optional=a["optional"],
            )
            for a in raw["attendees"]
        ),
        busy=raw["free_busy"] != "Free",
        private=raw["sensitivity"] in ("Private", "Confidential"),
        tag=raw["extended_properties"].get(tag_key) if mine else None,
        updated=dt.datetime.fromisoformat(raw["last_modified"]),
        is_recurring_instance="series_id" in raw,
        series_id=raw.get("series_id"),
        ical_uid=raw["uid"],
        organizer=raw.get("organizer") or owner,
        is_organizer=mine,
        my_response=None if mine else MY_RESPONSES.get(str(raw.get("my_response")), "needsAction"),
        **times,
    )


class ExchangeCalendarControl:
    """The user in Outlook and the Exchange admin, behind the adapter's back."""

    def __init__(self, emulator: Any, email: str) -> None:
        self.emulator = emulator
        self.email = email
        self.calendar_id = emulator.calendar_folder_id(email)

    @staticmethod
    def _times(start: dt.datetime | dt.date, end: dt.datetime | dt.date) -> dict[str, Any]:
        if isinstance(start, dt.datetime):
            zone = getattr(start.tzinfo, "key", None) or "UTC"
            return {"start": start, "end": end, "time_zone": zone}
        return {"start": start, "end": end, "time_zone": ALL_DAY_ZONE}

    def create_event(
        self,
        subject: str,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        *,
        location: str = "",
        description: str = "",
        attendees: tuple[str, ...] = (),
        private: bool = False,
        busy: bool = True,
        daily_count: int | None = None,
    ) -> str:
        fields: dict[str, Any] = {
            "subject": subject,
            "location": location,
            "body": description,
            "attendees": list(attendees),
            "private": private,
            "busy": busy,
            **self._times(start, end),
        }
        if daily_count is not None:
            fields["recurrence"] = {"pattern": "daily", "count": daily_count}
        return str(self.emulator.user_create_event(self.email, fields)["id"])

    def update_event(self, external_id: str, **changes: Any) -> None:
        current = self.event(external_id)
        if current is not None and current.is_organizer and current.attendees:
            # Outlook asks "Send update?" for a meeting you organize; the user sends it.
            self.emulator.user_send_meeting_update(self.email, external_id, self._changes_fields(changes))
            return
        self.emulator.user_update_event(self.email, external_id, self._changes_fields(changes))

    def _changes_fields(self, changes: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "description":
                fields["body"] = value
            elif name == "attendees":
                fields["attendees"] = list(value)
            elif name in ("start", "end"):
                fields[name] = value
                fields["time_zone"] = self._times(value, value)["time_zone"]
            else:
                fields[name] = value
        return fields

    def make_recurring(self, external_id: str, daily_count: int) -> None:
        self.emulator.user_update_event(
            self.email, external_id, {"recurrence": {"pattern": "daily", "count": daily_count}}
        )

    def _occurrence_id(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        from calendarsync.emulators.exchange_state import zone_of
        from tests.calendarsync.sync.conftest import occurrence_matches

        for instance in self.emulator.user_list_occurrences(self.email, series_external_id):
            zone = zone_of(instance["time_zone"])
            original = dt.datetime.fromisoformat(instance["original_start"])
            start: dt.date = original.astimezone(zone).date() if instance["all_day"] else original
            if occurrence_matches(start, zone, occurrence):
                return str(instance["id"])
        raise LookupError(f"series {series_external_id!r} has no occurrence at {occurrence}")

    def update_instance(
        self, series_external_id: str, occurrence: dt.date | dt.datetime, **changes: Any
    ) -> str:
        occurrence_id = self._occurrence_id(series_external_id, occurrence)
        self.emulator.user_update_event(self.email, occurrence_id, self._changes_fields(changes))
        return occurrence_id

    def cancel_instance(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        occurrence_id = self._occurrence_id(series_external_id, occurrence)
        self.emulator.user_delete_event(self.email, occurrence_id)
        return occurrence_id

    def set_private(self, external_id: str, private: bool) -> None:
        self.update_event(external_id, private=private)

    def inject_event_failure(self, external_id: str, status: int = 403, reason: str | None = None) -> None:
        code = reason or ITEM_REFUSALS.get(status)
        if code is None:
            raise ValueError(f"give an EWS response code for status {status}")
        self.emulator.inject_item_fault(external_id, code)

    def delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def event(self, external_id: str) -> RemoteEvent | None:
        raw = self.emulator.user_get_event(self.email, external_id)
        # A copy whose meeting the organizer cancelled is gone for the adapter too.
        if raw is None or raw.get("is_cancelled"):
            return None
        return remote_event(raw, self.email)

    def events(self) -> list[RemoteEvent]:
        return [
            remote_event(raw, self.email)
            for raw in self.emulator.user_list_events(self.email)
            if not raw.get("is_cancelled")
        ]

    # ----------------------------------------------------------------- meetings (issue #15)

    def create_meeting(
        self,
        subject: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        attendees: tuple[str, ...],
        location: str = "",
    ) -> str:
        """Organize in Outlook and press Send: the attendees with a mailbox here get a copy."""
        fields = {
            "subject": subject,
            "location": location,
            "attendees": list(attendees),
            **self._times(start, end),
        }
        return str(self.emulator.user_create_meeting(self.email, fields)["id"])

    def deliver_invitation(
        self,
        ical_uid: str,
        *,
        organizer: str,
        subject: str,
        start: dt.datetime,
        end: dt.datetime,
        attendees: tuple[str, ...],
    ) -> str:
        invited = list(attendees)
        if self.email.lower() not in {email.lower() for email in invited}:
            invited.append(self.email)
        fields = {"subject": subject, "attendees": invited, **self._times(start, end)}
        raw = self.emulator.user_receive_invitation(self.email, ical_uid, organizer=organizer, fields=fields)
        return str(raw["id"])

    def respond(self, external_id: str, response: str) -> None:
        """Accept, tentatively accept or decline in Outlook, sending the answer to the organizer."""
        self.emulator.user_respond(self.email, external_id, ANSWERS[response])

    def invitations(self) -> list[tuple[str, str, str]]:
        return [tuple(message) for message in self.emulator.meeting_messages(self.email)]

    def event_by_uid(self, ical_uid: str) -> RemoteEvent | None:
        raw = self.emulator.user_find_by_uid(self.email, ical_uid)
        if raw is None or raw.get("is_cancelled"):
            return None
        return remote_event(raw, self.email)

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        self.emulator.revoke(self.email)  # the user changes their password

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def add_calendar(self, name: str) -> str:
        """A second calendar folder the user made in Outlook (O1); Exchange ids are opaque."""
        calendar_id = f"AAMkAG-{secrets.token_hex(8)}-calendar"
        self.emulator.add_calendar(self.email, calendar_id, name)
        return calendar_id

    def deny_calendar_access(self) -> None:
        """An admin takes the calendar folder away from the mailbox (C4: ErrorAccessDenied)."""
        self.emulator.set_calendar_access(self.email, False)

    def inject_failure(
        self, kind: str, count: int, *, retry_after: int = 0, method: str | None = None
    ) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the client's timeout, so the client gives up first.
            self.emulator.timeout_seconds = float(settings.CALSYNC_HTTP_TIMEOUT_SECONDS) + 1
        fault = {"server_error": "500", "rate_limit": "busy", "timeout": "timeout", "reset": "reset"}[kind]
        operation = METHOD_OPERATIONS.get(method.upper()) if method else None
        self.emulator.inject_faults(fault, count=count, operation=operation, back_off_ms=retry_after * 1000)

    def api_requests(self) -> int:
        return sum(n for name, n in self.emulator.request_counts().items() if name != "401")

    def bulk_requests(self) -> int:
        return int(self.emulator.request_counts().get("CreateItem", 0))

    def reset_counts(self) -> None:
        self.emulator.reset_counts()


def exchange_setup(request: pytest.FixtureRequest) -> SyncSetup:
    from calendarsync.providers.exchange import adapter
    from calendarsync.providers.exchange.adapter import ExchangeProvider
    from tests.calendarsync.sync.conftest import SyncSetup

    running = request.getfixturevalue("exchange_emulator")
    # Short client timeout keeps the timeout tests quick (read when a client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    control = ExchangeCalendarControl(running.emulator, running.user)
    setup = SyncSetup(
        email=running.user,
        calendar_id=control.calendar_id,
        credentials=running.credentials(),
        provider_factory=lambda account: account_provider(account),
        control=control,
        provider=Provider.EXCHANGE,
        bulk_batch_size=adapter.BATCH_SIZE,
        # The stored credentials carry the server URL: a worker needs no emulator settings, only
        # a short timeout like the tests' own.
        worker_env={"CALSYNC_HTTP_TIMEOUT_SECONDS": "5"},
    )

    def account_provider(account: CalendarAccount) -> CalendarProvider:
        # The registry's factory, with the adapter's retry sleeps recorded instead of slept.
        provider = provider_for(account)
        assert isinstance(provider, ExchangeProvider)
        provider._sleep = setup.sleeps.append
        return provider

    return setup
