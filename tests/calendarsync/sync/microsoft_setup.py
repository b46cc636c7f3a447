"""The sync engine's Microsoft 365 entry: the real adapter (msal + requests) against the Graph emulator."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import CalendarProvider, RemoteEvent
from calendarsync.sync.accounts import provider_for

if TYPE_CHECKING:
    from tests.calendarsync.sync.conftest import SyncSetup

# The zone the emulated Outlook user makes all-day events in (they float: the dates are what count).
ALL_DAY_ZONE = "Europe/Berlin"
FAULTS = {"server_error": "500", "rate_limit": "429", "timeout": "timeout", "reset": "reset"}
# Our answers (base.RESPONSES) -> the Graph action that gives them (event-accept & co.).
RSVP_ACTIONS = {"accepted": "accept", "tentative": "tentativelyAccept", "declined": "decline"}
GRAPH_COUNTS = ("me.", "calendars.", "events.")


def _when(moment: dt.datetime | dt.date) -> dict[str, str]:
    if isinstance(moment, dt.datetime):
        zone = getattr(moment.tzinfo, "key", None)
        if zone is None:
            moment, zone = moment.astimezone(dt.UTC), "UTC"
        return {"dateTime": moment.replace(tzinfo=None).isoformat(), "timeZone": zone}
    return {"dateTime": f"{moment.isoformat()}T00:00:00", "timeZone": ALL_DAY_ZONE}


def _parse(raw: dict[str, Any]) -> RemoteEvent:
    from calendarsync.providers.microsoft.mapping import parse_event

    return parse_event(raw)


def _live(raw: dict[str, Any] | None) -> RemoteEvent | None:
    """The event as the user has it; a meeting its organizer cancelled counts as gone (Outlook
    keeps it, marked cancelled, until the user removes it; the adapter reports it deleted)."""
    return None if raw is None or raw.get("isCancelled") else _parse(raw)


def _attendees(emails: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": email}, "type": "required"} for email in emails]


class MicrosoftCalendarControl:
    """The user in Outlook and the Microsoft 365 admin, behind the adapter's back."""

    def __init__(self, emulator: Any, email: str) -> None:
        self.emulator = emulator
        self.email = email
        self.calendar_id = emulator.default_calendar_id(email)

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
        body: dict[str, Any] = {
            "subject": subject,
            "start": _when(start),
            "end": _when(end),
            "isAllDay": not isinstance(start, dt.datetime),
            "location": {"displayName": location},
            "body": {"contentType": "text", "content": description},
            "attendees": _attendees(attendees),
            "sensitivity": "private" if private else "normal",
            "showAs": "busy" if busy else "free",
        }
        if daily_count is not None:
            start_day = start.date() if isinstance(start, dt.datetime) else start
            body["recurrence"] = {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": start_day.isoformat(),
                    "numberOfOccurrences": daily_count,
                },
            }
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def update_event(self, external_id: str, **changes: Any) -> None:
        self.emulator.user_update_event(self.email, external_id, self._changes_body(changes))

    @staticmethod
    def _changes_body(changes: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("start", "end"):
                body[name] = _when(value)
                body["isAllDay"] = not isinstance(value, dt.datetime)
            elif name == "location":
                body["location"] = {"displayName": value}
            elif name == "description":
                body["body"] = {"contentType": "text", "content": value}
            elif name == "attendees":
                body["attendees"] = _attendees(value)
            elif name == "private":
                body["sensitivity"] = "private" if value else "normal"
            elif name == "busy":
                body["showAs"] = "busy" if value else "free"
            else:
                body[name] = value
        return body

    def make_recurring(self, external_id: str, daily_count: int) -> None:
        from calendarsync.emulators.microsoft_events import zone

        event = self.emulator.user_get_event(self.email, external_id)
        if event is None:
            raise LookupError(f"no event {external_id!r}")
        start = event["start"]["dateTime"][:19]
        if event["isAllDay"]:
            first_day = dt.date.fromisoformat(start[:10])  # all-day events float: the date is what counts
        else:
            moment = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)  # the user view reads in UTC
            first_day = moment.astimezone(zone(event["originalStartTimeZone"])).date()
        recurrence = {
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": first_day.isoformat(),
                "numberOfOccurrences": daily_count,
            },
        }
        self.emulator.user_update_event(self.email, external_id, {"recurrence": recurrence})

    def _occurrence_id(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        from calendarsync.emulators.microsoft_events import zone
        from tests.calendarsync.sync.conftest import occurrence_matches

        for instance in self.emulator.user_list_instances(self.email, series_external_id):
            original = dt.datetime.fromisoformat(instance["originalStart"][:19]).replace(tzinfo=dt.UTC)
            start: dt.date = original.date() if instance["isAllDay"] else original
            if occurrence_matches(start, zone(instance["originalStartTimeZone"]), occurrence):
                return str(instance["id"])
        raise LookupError(f"series {series_external_id!r} has no occurrence at {occurrence}")

    def update_instance(
        self, series_external_id: str, occurrence: dt.date | dt.datetime, **changes: Any
    ) -> str:
        occurrence_id = self._occurrence_id(series_external_id, occurrence)
        self.emulator.user_update_event(self.email, occurrence_id, self._changes_body(changes))
        return occurrence_id

    def cancel_instance(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        occurrence_id = self._occurrence_id(series_external_id, occurrence)
        self.emulator.user_delete_event(self.email, occurrence_id)
        return occurrence_id

    def set_private(self, external_id: str, private: bool) -> None:
        self.update_event(external_id, private=private)

    def inject_event_failure(self, external_id: str, status: int = 403, reason: str | None = None) -> None:
        self.emulator.inject_event_fault(external_id, status, reason)

    def delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def event(self, external_id: str) -> RemoteEvent | None:
        return _live(self.emulator.user_get_event(self.email, external_id))

    def events(self) -> list[RemoteEvent]:
        listed = [_live(raw) for raw in self.emulator.user_list_events(self.email)]
        return [event for event in listed if event is not None]

    # -- meetings -----------------------------------------------------------------------------

    def create_meeting(
        self,
        subject: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        attendees: tuple[str, ...],
        location: str = "",
    ) -> str:
        # Outlook sends the invitations on save; the emulator delivers them to its own mailboxes.
        return self.create_event(subject, start, end, location=location, attendees=attendees)

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
        body = {
            "subject": subject,
            "start": _when(start),
            "end": _when(end),
            "attendees": _attendees(attendees),
        }
        return str(self.emulator.deliver_invitation(self.email, ical_uid, organizer, body)["id"])

    def respond(self, external_id: str, response: str) -> None:
        if response not in RSVP_ACTIONS:
            raise ValueError(f"unknown response {response!r}; expected one of {sorted(RSVP_ACTIONS)}")
        self.emulator.user_respond(self.email, external_id, RSVP_ACTIONS[response])

    def invitations(self) -> list[tuple[str, str, str]]:
        return list(self.emulator.sent_invitations(self.email))

    def event_by_uid(self, ical_uid: str) -> RemoteEvent | None:
        return _live(self.emulator.user_event_by_uid(self.email, ical_uid))

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        # Revoking the sessions kills the refresh token and the access token in hand.
        self.emulator.revoke_tokens(self.email)

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def add_calendar(self, name: str) -> str:
        return str(self.emulator.add_calendar(self.email, None, name))

    def deny_calendar_access(self) -> None:
        # The grant loses its calendar permissions (partial consent, or an admin policy): 403.
        calendar_scopes = {"Calendars.Read", "Calendars.ReadWrite"}
        with self.emulator.state.lock:
            state = self.emulator.state
            for grant in [*state.access_grants.values(), *state.refresh_grants.values()]:
                if grant.email == self.email:
                    grant.scopes = [scope for scope in grant.scopes if scope not in calendar_scopes]

    def inject_failure(
        self, kind: str, count: int, *, retry_after: int = 0, method: str | None = None
    ) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the client's timeout, so the client gives up first.
            self.emulator.timeout_seconds = float(settings.CALSYNC_HTTP_TIMEOUT_SECONDS) + 1
        self.emulator.inject_faults(
            FAULTS[kind], count=count, path_contains="/v1.0/", retry_after=retry_after, method=method
        )

    def api_requests(self) -> int:
        counts = self.emulator.request_counts()
        return sum(n for name, n in counts.items() if name.startswith(GRAPH_COUNTS) or name == "batch")

    def bulk_requests(self) -> int:
        return int(self.emulator.request_counts().get("batch", 0))

    def reset_counts(self) -> None:
        self.emulator.reset_counts()


def microsoft_setup(request: pytest.FixtureRequest) -> SyncSetup:
    from django.conf import settings

    from calendarsync.providers.microsoft import adapter as microsoft_adapter
    from calendarsync.providers.microsoft.adapter import MicrosoftProvider
    from tests.calendarsync.sync.conftest import SyncSetup

    running = request.getfixturevalue("microsoft_emulator")
    # Short client timeout keeps the timeout tests quick (read when a client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    scopes = list(settings.MICROSOFT_SCOPES)
    issued = running.emulator.issue_tokens(running.user, scopes, settings.MICROSOFT_CLIENT_ID)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    control = MicrosoftCalendarControl(running.emulator, running.user)
    setup = SyncSetup(
        email=running.user,
        calendar_id=control.calendar_id,
        credentials={
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expiry": expiry.isoformat(),
            "scopes": scopes,
        },
        provider_factory=lambda account: account_provider(account),
        control=control,
        provider=Provider.MICROSOFT,
        bulk_batch_size=microsoft_adapter.BATCH_SIZE,
        worker_env={
            name: str(getattr(settings, name))
            for name in (
                "MICROSOFT_CLIENT_ID",
                "MICROSOFT_CLIENT_SECRET",
                "MICROSOFT_AUTHORITY",
                "MICROSOFT_GRAPH_BASE_URL",
                "MICROSOFT_CA_BUNDLE",
            )
        },
    )

    def account_provider(account: CalendarAccount) -> CalendarProvider:
        # The registry's factory, with the adapter's retry sleeps recorded instead of slept.
        provider = provider_for(account)
        assert isinstance(provider, MicrosoftProvider)
        provider._sleep = setup.sleeps.append
        return provider

    return setup
