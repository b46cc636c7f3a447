"""The sync engine's end-to-end fixtures: one entry per provider, each against its emulator.

``sync_env`` is parametrized over ``SYNC_SETUPS``; adding Microsoft 365 or Exchange is one
entry there: a function that returns a ``SyncSetup`` with the account's credentials, a provider
factory (the real adapter over its real client library) and a ``CalendarControl`` that acts as
the user inside the calendar app and as the provider's operator (faults, revocation).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, ActivityType
from calendarsync.crypto import Secret
from calendarsync.models import (
    CalendarAccount,
    EventLink,
    ExternalVisibility,
    PrivateEvents,
    Provider,
    RemoteCalendar,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import CalendarProvider, RemoteEvent
from calendarsync.sync import runner
from calendarsync.sync.accounts import provider_for
from tests.conftest import make_activity

ProviderFactory = Callable[[CalendarAccount], CalendarProvider]


class CalendarControl(Protocol):
    """The user in their calendar app, and the provider's operator, behind the adapter's back."""

    calendar_id: str

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
    ) -> str: ...

    def update_event(self, external_id: str, **changes: Any) -> None:
        """Change fields as the user would: subject, start, end, location, description, attendees, private."""
        ...

    def delete_event(self, external_id: str) -> None: ...

    def event(self, external_id: str) -> RemoteEvent | None:
        """The live event (None if it does not exist or was deleted)."""
        ...

    def events(self) -> list[RemoteEvent]:
        """Every live event of the calendar (a recurring series counts once)."""
        ...

    def expire_cursor(self) -> None: ...

    def revoke(self) -> None: ...

    def inject_failure(
        self, kind: str, count: int, *, retry_after: int = 0, method: str | None = None
    ) -> None:
        """The next ``count`` API calls fail: "server_error", "rate_limit", "timeout" or "reset"."""
        ...

    def api_requests(self) -> int:
        """HTTP requests the calendar API (single and batch endpoints) received since the last reset."""
        ...

    def bulk_requests(self) -> int: ...

    def reset_counts(self) -> None: ...

    def clear_faults(self) -> None:
        """Drop every fault still waiting to be injected."""
        ...

    def add_calendar(self, name: str) -> str:
        """A second writable calendar in the same account (O1); returns its external id."""
        ...

    def deny_calendar_access(self) -> None:
        """From now on the provider answers "forbidden" to calendar calls (C4)."""
        ...

    def make_recurring(self, external_id: str, daily_count: int) -> None:
        """The user turns a single event into a daily series of ``daily_count`` occurrences (R14).

        The event keeps its id, now the series' id; sync then sees the series' occurrences.
        """
        ...

    def update_instance(
        self, series_external_id: str, occurrence: dt.date | dt.datetime, **changes: Any
    ) -> str:
        """The user changes one occurrence of a series ("this event only"); returns its external id.

        ``occurrence``: a datetime picks the occurrence originally starting then, a date the one
        originally on that day (in the series' zone). ``changes`` as for ``update_event``. Graph and
        Exchange refuse to move an occurrence onto the day of a neighbour (ErrorOccurrenceCrossingBoundary).
        """
        ...

    def cancel_instance(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        """The user deletes one occurrence of a series; returns the occurrence's external id."""
        ...

    def set_private(self, external_id: str, private: bool) -> None:
        """The user marks the event private (or not) in the calendar app."""
        ...

    def inject_event_failure(self, external_id: str, status: int = 403, reason: str | None = None) -> None:
        """The provider refuses the next write (update or delete) to this one event (R16).

        ``reason`` is the provider's own: Google's error reason, Graph's error code, EWS's
        response code. Left out, 403 is Google's forbiddenForNonOrganizer and ErrorAccessDenied on
        Graph and EWS; 404 is notFound / ErrorItemNotFound.
        """
        ...

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
        """This mailbox's owner organizes a meeting in their calendar app and sends the
        invitations: every attendee with a mailbox on the same emulator gets a copy (same
        iCalendar UID). Returns the organizer's event id."""
        ...

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
        """An invitation from an organizer elsewhere (another provider, or outside the company)
        lands in this mailbox: a copy with that UID, this mailbox's owner among the attendees
        with no answer yet. Returns the copy's event id."""
        ...

    def respond(self, external_id: str, response: str) -> None:
        """This mailbox's owner answers an invitation ("accepted", "tentative", "declined") in
        their calendar app, on their copy; the organizer's copy (same emulator) shows the answer."""
        ...

    def invitations(self) -> list[tuple[str, str, str]]:
        """What the calendar mailed on this mailbox's behalf, oldest first: (kind, recipient,
        iCalendar UID), kind "invitation", "update" or "cancellation"."""
        ...

    def event_by_uid(self, ical_uid: str) -> RemoteEvent | None:
        """This mailbox's live copy of the meeting with that UID, if any."""
        ...


def occurrence_matches(
    original_start: dt.datetime | dt.date, zone: dt.tzinfo, wanted: dt.date | dt.datetime
) -> bool:
    """Whether an occurrence originally starting at ``original_start`` is the one ``wanted`` names.

    ``original_start``: an aware datetime, or a date for all-day series; ``zone``: the series' zone.
    """
    if isinstance(wanted, dt.datetime):
        return isinstance(original_start, dt.datetime) and original_start == wanted
    if isinstance(original_start, dt.datetime):
        return original_start.astimezone(zone).date() == wanted
    return original_start == wanted


@dataclass
class SyncSetup:
    email: str
    calendar_id: str
    credentials: dict[str, Any]
    provider_factory: ProviderFactory
    control: CalendarControl
    sleeps: list[float] = field(default_factory=list)
    provider: str = Provider.GOOGLE  # the CalendarAccount.provider the registry builds the adapter for
    # How many creates the adapter sends per bulk request.
    bulk_batch_size: int = 50
    # Environment a Celery worker subprocess needs to reach this provider's emulator.
    worker_env: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- Google


class GoogleCalendarControl:
    def __init__(self, emulator: Any, email: str) -> None:
        self.emulator = emulator
        self.email = email
        self.calendar_id = email

    @staticmethod
    def _when(moment: dt.datetime | dt.date) -> dict[str, str]:
        if isinstance(moment, dt.datetime):
            return {"dateTime": moment.isoformat(), "timeZone": str(moment.tzinfo)}
        return {"date": moment.isoformat()}

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
            "summary": subject,
            "start": self._when(start),
            "end": self._when(end),
            "location": location,
            "description": description,
            "attendees": [{"email": email} for email in attendees],
            "visibility": "private" if private else "default",
            "transparency": "opaque" if busy else "transparent",
        }
        if daily_count is not None:
            body["recurrence"] = [f"RRULE:FREQ=DAILY;COUNT={daily_count}"]
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def update_event(self, external_id: str, **changes: Any) -> None:
        self.emulator.user_update_event(self.email, external_id, self._changes_body(changes))

    def _changes_body(self, changes: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "subject":
                body["summary"] = value
            elif name in ("start", "end"):
                body[name] = self._when(value)
            elif name == "attendees":
                body["attendees"] = [{"email": email} for email in value]
            elif name == "private":
                body["visibility"] = "private" if value else "default"
            elif name == "busy":
                body["transparency"] = "opaque" if value else "transparent"
            else:
                body[name] = value
        return body

    def make_recurring(self, external_id: str, daily_count: int) -> None:
        # Google Calendar gives the series the event's own time zone (the API needs one).
        self.emulator.user_update_event(
            self.email, external_id, {"recurrence": [f"RRULE:FREQ=DAILY;COUNT={daily_count}"]}
        )

    def _instance_id(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        from zoneinfo import ZoneInfo

        for instance in self.emulator.user_list_instances(self.email, series_external_id):
            original = instance["originalStartTime"]
            if "date" in original:
                start: dt.date = dt.date.fromisoformat(original["date"])
                zone: dt.tzinfo = dt.UTC
            else:
                start = dt.datetime.fromisoformat(original["dateTime"])
                zone = ZoneInfo(original["timeZone"]) if original.get("timeZone") else dt.UTC
            if occurrence_matches(start, zone, occurrence):
                return str(instance["id"])
        raise LookupError(f"series {series_external_id!r} has no occurrence at {occurrence}")

    def update_instance(
        self, series_external_id: str, occurrence: dt.date | dt.datetime, **changes: Any
    ) -> str:
        instance_id = self._instance_id(series_external_id, occurrence)
        self.emulator.user_update_event(self.email, instance_id, self._changes_body(changes))
        return instance_id

    def cancel_instance(self, series_external_id: str, occurrence: dt.date | dt.datetime) -> str:
        instance_id = self._instance_id(series_external_id, occurrence)
        self.emulator.user_delete_event(self.email, instance_id)
        return instance_id

    def set_private(self, external_id: str, private: bool) -> None:
        self.update_event(external_id, private=private)

    def inject_event_failure(self, external_id: str, status: int = 403, reason: str | None = None) -> None:
        self.emulator.inject_event_fault(external_id, status, reason)

    def delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def _parse(self, raw: dict[str, Any]) -> RemoteEvent:
        # Imported inside, like the adapter imports elsewhere in this module.
        from calendarsync.providers.google.mapping import parse_event

        return parse_event(raw, self.calendar_id)

    def event(self, external_id: str) -> RemoteEvent | None:
        raw = self.emulator.user_get_event(self.email, external_id)
        if raw is None or raw.get("status") == "cancelled":
            return None
        return self._parse(raw)

    def events(self) -> list[RemoteEvent]:
        return [self._parse(raw) for raw in self.emulator.user_list_events(self.email)]

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
        body: dict[str, Any] = {
            "summary": subject,
            "start": self._when(start),
            "end": self._when(end),
            "location": location,
            "attendees": [{"email": email} for email in attendees],
        }
        # Google Calendar's "Send" on saving a meeting: sendUpdates=all.
        return str(self.emulator.user_create_event(self.email, body, send_updates="all")["id"])

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
        body: dict[str, Any] = {
            "iCalUID": ical_uid,
            "organizer": {"email": organizer},
            "summary": subject,
            "start": self._when(start),
            "end": self._when(end),
            "attendees": [{"email": email} for email in attendees],
        }
        # The emulator adds this mailbox to the attendees if missing and derives the id from the UID.
        return str(self.emulator.user_receive_invitation(self.email, body)["id"])

    def respond(self, external_id: str, response: str) -> None:
        self.emulator.user_respond(self.email, external_id, response)

    def invitations(self) -> list[tuple[str, str, str]]:
        return list(self.emulator.sent_mail(self.email))

    def event_by_uid(self, ical_uid: str) -> RemoteEvent | None:
        raw = self.emulator.user_event_by_uid(self.email, ical_uid)
        return None if raw is None else self._parse(raw)

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        # The refresh token dies and so does the access token in hand (it would work for an hour).
        self.emulator.revoke_tokens(self.email)
        self.emulator.expire_access_tokens(self.email)

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def add_calendar(self, name: str) -> str:
        calendar_id = f"{name.lower().replace(' ', '-')}@group.calendar.google.com"
        self.emulator.add_calendar(self.email, calendar_id, name)
        return calendar_id

    def deny_calendar_access(self) -> None:
        # The grant loses its calendar scope (partial consent, or an admin policy): 403 forbidden.
        from calendarsync.emulators.google_state import CALENDAR_SCOPE

        with self.emulator.state.lock:
            for grant in self.emulator.state.access_grants.values():
                if grant.email == self.email:
                    grant.scopes = [scope for scope in grant.scopes if scope != CALENDAR_SCOPE]

    def inject_failure(
        self, kind: str, count: int, *, retry_after: int = 0, method: str | None = None
    ) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the client's timeout, so the client gives up first.
            self.emulator.timeout_seconds = float(settings.CALSYNC_HTTP_TIMEOUT_SECONDS) + 1
        fault = {"server_error": "500", "rate_limit": "429", "timeout": "timeout", "reset": "reset"}[kind]
        self.emulator.inject_faults(fault, count=count, retry_after=retry_after, method=method)

    def api_requests(self) -> int:
        counts = self.emulator.request_counts()
        return sum(
            n for name, n in counts.items() if name.startswith(("events.", "calendar")) or name == "batch"
        )

    def bulk_requests(self) -> int:
        return int(self.emulator.request_counts().get("batch", 0))

    def reset_counts(self) -> None:
        self.emulator.reset_counts()


def google_setup(request: pytest.FixtureRequest) -> SyncSetup:
    from django.conf import settings

    from calendarsync.providers.google.adapter import GoogleProvider

    running = request.getfixturevalue("google_emulator")
    # Short client timeout keeps the timeout tests quick (read when a client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    scopes = list(settings.GOOGLE_SCOPES)
    issued = running.emulator.issue_tokens(running.user, scopes, settings.GOOGLE_CLIENT_ID)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    credentials = {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }
    setup = SyncSetup(
        email=running.user,
        calendar_id=running.user,
        credentials=credentials,
        provider_factory=lambda account: account_provider(account),
        control=GoogleCalendarControl(running.emulator, running.user),
        worker_env={
            "GOOGLE_CLIENT_ID": settings.GOOGLE_CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": settings.GOOGLE_CLIENT_SECRET,
            "GOOGLE_TOKEN_URI": settings.GOOGLE_TOKEN_URI,
            "GOOGLE_API_BASE_URL": settings.GOOGLE_API_BASE_URL,
            "GOOGLE_BATCH_URI": settings.GOOGLE_BATCH_URI,
        },
    )

    def account_provider(account: CalendarAccount) -> CalendarProvider:
        # The registry's factory, with the adapter's retry sleeps recorded instead of slept.
        provider = provider_for(account)
        assert isinstance(provider, GoogleProvider)
        provider._sleep = setup.sleeps.append
        return provider

    return setup


# --------------------------------------------------------------------------- registry of setups

from tests.calendarsync.sync.exchange_setup import exchange_setup  # noqa: E402  (it needs SyncSetup)
from tests.calendarsync.sync.microsoft_setup import microsoft_setup  # noqa: E402  (it needs SyncSetup)

SYNC_SETUPS: dict[str, Callable[[pytest.FixtureRequest], SyncSetup]] = {
    "exchange": exchange_setup,
    "google": google_setup,
    "microsoft": microsoft_setup,
}


class SyncEnv:
    """An owner with a connected account of the provider under test, and helpers to drive syncs."""

    def __init__(self, setup: SyncSetup, owner: User) -> None:
        self.setup = setup
        self.control = setup.control
        self.owner = owner
        self.account = self.connect()

    @property
    def company(self) -> Any:
        return self.owner.company

    def activity_type(self, name: str) -> ActivityType:
        return ActivityType.objects.get(company=self.owner.company, name=name)

    def connect(self) -> CalendarAccount:
        account = CalendarAccount.objects.create(
            user=self.owner,
            provider=self.setup.provider,
            email=self.setup.email,
            credentials=Secret(self.setup.credentials),
        )
        calendar = RemoteCalendar.objects.create(
            account=account, external_id=self.setup.calendar_id, name="Primary", is_primary=True
        )
        preferences = SyncPreferences.objects.create(
            account=account,
            calendar=calendar,
            sync_type=SyncType.TWO_WAY,
            incoming_type=self.activity_type("Meeting"),
            external_visibility=ExternalVisibility.EVERYONE,
            private_events=PrivateEvents.ONLY_ME,
            include_details=True,
        )
        preferences.outgoing_types.set([self.activity_type("Meeting"), self.activity_type("Call")])
        return account

    @property
    def preferences(self) -> SyncPreferences:
        return SyncPreferences.objects.get(account=self.account)

    def set_preferences(self, **changes: Any) -> None:
        preferences = self.preferences
        outgoing = changes.pop("outgoing_types", None)
        for name, value in changes.items():
            setattr(preferences, name, value)
        preferences.save()
        if outgoing is not None:
            preferences.outgoing_types.set([self.activity_type(name) for name in outgoing])

    def start(self, settle: float = 0.005) -> None:
        """O9: start sync now; what exists before is the baseline (R2).

        ``settle``: seconds between what was made before and the start (providers that stamp
        changes to the second need more than one).
        """
        time.sleep(settle)
        SyncPreferences.objects.filter(account=self.account).update(sync_started_at=timezone.now())
        time.sleep(0.005)

    def sync(self, expect: str = "ok") -> runner.RunOutcome:
        outcome = runner.run_account_sync(self.account.pk, provider_factory=self.setup.provider_factory)
        assert outcome.status == expect, outcome
        self.account.refresh_from_db()
        return outcome

    def activity(self, **fields: Any) -> Activity:
        return make_activity(self.owner, **fields)

    def link_of(self, activity: Activity) -> EventLink:
        return EventLink.objects.get(account=self.account, activity=activity)

    def event_of(self, activity: Activity) -> RemoteEvent | None:
        return self.control.event(self.link_of(activity).external_id)

    def imported(self, external_id: str) -> Activity:
        return Activity.objects.get(event_links__account=self.account, event_links__external_id=external_id)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Users are made for every test here; their passwords never matter (keeps the suite fast)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(params=sorted(SYNC_SETUPS))
def sync_setup(request: pytest.FixtureRequest) -> SyncSetup:
    return SYNC_SETUPS[request.param](request)


@pytest.fixture
def sync_env(sync_setup: SyncSetup, owner: User) -> SyncEnv:
    return SyncEnv(sync_setup, owner)


def company_of(user: User) -> Company:
    assert user.company is not None
    return user.company


def soon(days: int = 1, hour: int = 10, tz: str = "Europe/Berlin") -> dt.datetime:
    """A whole hour ``days`` from today in ``tz`` (the owner's zone by default)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    day = timezone.now().astimezone(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)


def assert_in_step(sync_env: SyncEnv) -> None:
    """Both sides hold the same items: no duplicate, no orphan, every linked pair equal."""
    from calendarsync.models import LinkState
    from calendarsync.sync.mapping import FIELD_NAMES, calendar_fields, crm_fields

    events = [e for e in sync_env.control.events()]
    ids = [e.external_id for e in events]
    assert len(ids) == len(set(ids))
    tags = [e.tag for e in events if e.tag]
    assert len(tags) == len(set(tags)), f"two events for one activity: {tags}"
    links = list(
        EventLink.objects.filter(account=sync_env.account, state=LinkState.ACTIVE).select_related("activity")
    )
    assert sorted(link.external_id for link in links) == sorted(ids)
    excluded = frozenset({sync_env.account.email.lower(), sync_env.owner.email.lower()})
    for link in links:
        event = sync_env.control.event(link.external_id)
        assert event is not None
        activity = link.activity
        assert activity is not None
        crm = crm_fields(activity, [p.email for p in activity.participants.all() if p.email], excluded)
        cal = calendar_fields(event, excluded)
        for name in FIELD_NAMES:
            if name != "private":
                assert crm[name] == cal[name], (name, crm[name], cal[name])
    activities = Activity.objects.filter(owner=sync_env.owner, event_links__account=sync_env.account)
    assert activities.count() == len(links)
