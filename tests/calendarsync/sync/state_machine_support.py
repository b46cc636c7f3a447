"""What the randomized sync test (``test_state_machine.py``) stands on: fresh emulators and
mailboxes for every example, the faults it arms behind the engine's back, and the model of
what each side must hold (SPEC R10-R16).

The model keeps, per item (one thing the user made: an activity, an event, or the pair the
sync made of them), what the user last left on each side and what both sides last agreed on.
It learns which activity and which event belong together only from the sync's links, and it
judges every observation by the rules: no duplicate, no lost edit, deletions propagated.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError, connections
from django.utils import timezone

from accounts.models import User
from activities.models import Activity
from activities.tracking import engine_is_writing
from calendarsync.models import CalendarAccount, EventLink, Provider
from calendarsync.providers.base import CalendarProvider, ChangePage, RemoteEvent
from calendarsync.sync.mapping import calendar_fields, crm_fields
from tests.calendarsync.sync.conftest import SYNC_SETUPS, CalendarControl, SyncSetup

BERLIN = ZoneInfo("Europe/Berlin")
# Compared literally on both sides of a link ("private" has its own rules for calendar-made items).
PLAIN_FIELDS = ("subject", "time", "location", "description", "attendees", "busy")
# An edit counts as "later" only when it is this much later than the other side's (providers
# stamp changes to the second; Exchange's stamps even run ahead on rapid edits).
LATER_MARGIN_SECONDS: dict[str, float] = {
    Provider.GOOGLE: 2.5,
    Provider.MICROSOFT: 2.5,
    Provider.EXCHANGE: 8.0,
}
COLLEAGUE: dict[str, str] = {
    Provider.GOOGLE: "bob@example.com",
    Provider.MICROSOFT: "bob@contoso.test",
    Provider.EXCHANGE: "bob@example.com",
}
COLLEAGUE_PASSWORD = "bob-password-1"


class Violation(AssertionError):
    """A rule of SPEC.md broken; ``rule`` names it (``R10-duplicate-event``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class WorkerKilled(BaseException):
    """The worker process dies: nothing after it runs, not even the runner's own bookkeeping."""


def moment(days: int, hour: int, minute: int = 0) -> dt.datetime:
    """A wall-clock time ``days`` from today in the owner's zone (Europe/Berlin)."""
    day = timezone.now().astimezone(BERLIN).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=BERLIN)


# --------------------------------------------------------------------------- emulators and mailboxes


def reset_emulator(request: pytest.FixtureRequest, provider: str) -> Any:
    """Forget every user, event, token and fault; add the owner's and the colleague's mailboxes.

    Does what the per-test emulator fixtures do, once per example; returns the running emulator.
    """
    if provider == Provider.GOOGLE:
        from tests.calendarsync.conftest import (
            GOOGLE_TEST_CLIENT_ID,
            GOOGLE_TEST_CLIENT_SECRET,
            GOOGLE_TEST_USER,
        )

        running = request.getfixturevalue("google_emulator")
        running.emulator.reset()
        running.emulator.register_client(GOOGLE_TEST_CLIENT_ID, GOOGLE_TEST_CLIENT_SECRET)
        running.emulator.add_user(GOOGLE_TEST_USER)
        running.emulator.add_user(COLLEAGUE[provider])
    elif provider == Provider.MICROSOFT:
        from tests.calendarsync.conftest_microsoft import (
            MICROSOFT_TEST_CLIENT_ID,
            MICROSOFT_TEST_CLIENT_SECRET,
            MICROSOFT_TEST_USER,
        )

        running = request.getfixturevalue("microsoft_emulator")
        running.emulator.reset()
        running.emulator.authorize_base_url = None
        running.emulator.register_client(MICROSOFT_TEST_CLIENT_ID, MICROSOFT_TEST_CLIENT_SECRET)
        running.emulator.add_user(MICROSOFT_TEST_USER, "Alice Smith")
        running.emulator.add_user(COLLEAGUE[provider], "Bob Jones")
    else:
        from tests.calendarsync.conftest_exchange import EXCHANGE_TEST_PASSWORD, EXCHANGE_TEST_USER

        running = request.getfixturevalue("exchange_emulator")
        running.emulator.reset()
        running.emulator.add_user(EXCHANGE_TEST_USER, EXCHANGE_TEST_PASSWORD)
        running.emulator.add_user(COLLEAGUE[provider], COLLEAGUE_PASSWORD)
    return running


def owner_setup(request: pytest.FixtureRequest, provider: str) -> SyncSetup:
    """The conftest's own setup for the provider (fresh tokens on the freshly reset emulator)."""
    return SYNC_SETUPS[str(provider)](request)


def fresh_credentials(running: Any, provider: str, email: str) -> dict[str, Any]:
    """What signing in again gives (reconnect, or the colleague's first sign-in)."""
    from django.conf import settings

    emulator = running.emulator
    if provider == Provider.EXCHANGE:
        with emulator.state.lock:
            password = emulator.state.mailbox(email).password
        return {"email": email, "password": password, "server_url": running.server_url}
    scopes = list(settings.GOOGLE_SCOPES if provider == Provider.GOOGLE else settings.MICROSOFT_SCOPES)
    client_id = settings.GOOGLE_CLIENT_ID if provider == Provider.GOOGLE else settings.MICROSOFT_CLIENT_ID
    issued = emulator.issue_tokens(email, scopes, client_id)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }


def colleague_setup(running: Any, owner: SyncSetup) -> SyncSetup:
    """The colleague's own mailbox on the same emulator, driven by the same adapter factory."""
    from tests.calendarsync.sync.conftest import GoogleCalendarControl
    from tests.calendarsync.sync.exchange_setup import ExchangeCalendarControl
    from tests.calendarsync.sync.microsoft_setup import MicrosoftCalendarControl

    provider = owner.provider
    email = COLLEAGUE[provider]
    controls: dict[str, Callable[[Any, str], CalendarControl]] = {
        Provider.GOOGLE: GoogleCalendarControl,
        Provider.MICROSOFT: MicrosoftCalendarControl,
        Provider.EXCHANGE: ExchangeCalendarControl,
    }
    control = controls[provider](running.emulator, email)
    return SyncSetup(
        email=email,
        calendar_id=control.calendar_id,
        credentials=fresh_credentials(running, provider, email),
        provider_factory=owner.provider_factory,
        control=control,
        provider=provider,
    )


def pending_event_faults(control: CalendarControl) -> set[str]:
    """Event ids whose armed per-event refusal has not fired yet."""
    state = control.emulator.state  # type: ignore[attr-defined]
    with state.lock:
        faults = getattr(state, "event_faults", None)
        if faults is None:
            faults = state.item_faults
        return set(faults)


# --------------------------------------------------------------------------- faults behind the engine


class CrashAfterWrite:
    """The provider does the write, then the worker dies before the engine records it (R10)."""

    WRITES = ("create_events", "create_event", "update_event", "delete_event")

    def __init__(self, inner: CalendarProvider, armed: list[bool]) -> None:
        self._inner = inner
        self._armed = armed

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in self.WRITES or not callable(attribute):
            return attribute

        def write_then_die(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self._armed and self._armed[0]:
                self._armed[0] = False
                raise WorkerKilled(f"killed right after {name}")
            return result

        return write_then_die

    def list_changes(self, *args: Any, **kwargs: Any) -> ChangePage:
        return self._inner.list_changes(*args, **kwargs)


@contextmanager
def database_error_once(target: str) -> Iterator[list[bool]]:
    """The next engine save of ``target`` ("activity" or "link") fails with a database error once."""
    model: Any = Activity if target == "activity" else EventLink
    real_save = model.save
    fired = [False]

    def failing_save(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired[0] and (engine_is_writing() or model is EventLink):
            fired[0] = True
            raise OperationalError("database is locked (injected by the randomized sync test)")
        return real_save(self, *args, **kwargs)

    model.save = failing_save
    try:
        yield fired
    finally:
        model.save = real_save


# --------------------------------------------------------------------------- the model


class Side(enum.StrEnum):
    CRM = "crm"
    CAL = "cal"


@dataclass
class Series:
    """An item the user turned into a daily series in the calendar (R14)."""

    first_start: dt.datetime
    count: int
    fields: dict[str, Any]  # subject / location of the series as the user set them
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)  # day index -> changes
    cancelled: set[int] = field(default_factory=set)

    def live_days(self, now: dt.datetime) -> list[int]:
        return [
            day
            for day in range(self.count)
            if day not in self.cancelled and self.first_start + dt.timedelta(days=day) > now
        ]

    def expected(self, day: int) -> dict[str, Any]:
        return {**self.fields, **self.overrides.get(day, {})}


@dataclass
class Item:
    """One thing the user made, on one or both sides."""

    key: int
    origin: Side
    owner_key: str  # "owner" or "colleague": whose CRM activity / calendar it is
    activity_id: int | None = None
    event_id: str | None = None
    event_owner: str = "owner"  # whose calendar holds ``event_id``
    # What each side holds as far as the model knows, and what both last agreed on.
    crm: dict[str, Any] = field(default_factory=dict)
    cal: dict[str, Any] = field(default_factory=dict)
    agreed: dict[str, Any] = field(default_factory=dict)
    edited_at: dict[tuple[Side, str], float] = field(default_factory=dict)
    crm_gone: bool = False  # deleted by the user in the CRM
    cal_gone: bool = False  # deleted by the user in the calendar
    trashed: bool = False  # removed from the CRM by the sync (to the trash)
    # The rules that decide what must happen to it, judged when the user acted.
    epoch: int = 0  # the model's preference epoch at the user's last edit
    dirty: Side | None = None  # the side the user changed since the engine last settled the item
    prestart: bool = False  # made before sync started and unchanged since (R2)
    past: str | None = None  # moved into the past (R15): "pending" until mirrored, then "ended"
    excused: bool = False  # may disagree until it changes again (refusal, reconnect, reselection)
    expect_gone: dict[Side, bool | None] = field(default_factory=dict)  # after a deletion
    may_leave_crm: bool = False  # a rule lets the sync remove the activity (R3, R14, R15)
    reassigned: bool = False  # its activity changed owner (R13)
    old_events: list[tuple[str, str, bool | None]] = field(
        default_factory=list
    )  # (calendar, id, must go): R13
    series: Series | None = None
    type_name: str = "Meeting"
    imported_type: str | None = None  # R5: the type it was imported with
    # O6 of the run that sees (or saw) the event become private: the option when the user made it
    # private, until an option change reaches it before any run has (O10).
    private_rule: str | None = None
    history: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"item {self.key} ({self.origin}-made, activity {self.activity_id}, event {self.event_id})"

    def edited(self, side: Side, name: str) -> bool:
        values = self.crm if side is Side.CRM else self.cal
        return name in values and values[name] != self.agreed.get(name, object())

    def note(self, text: str) -> None:
        self.history.append(text)


def crm_side(activity: Activity, account_email: str, owner_email: str) -> dict[str, Any]:
    excluded = frozenset({account_email.lower(), owner_email.lower()})
    return crm_fields(activity, [p.email for p in activity.participants.all() if p.email], excluded)


def cal_side(event: RemoteEvent, account_email: str, owner_email: str) -> dict[str, Any]:
    excluded = frozenset({account_email.lower(), owner_email.lower()})
    return calendar_fields(event, excluded)


def attendee_merge(agreed: list[str], crm: list[str], cal: list[str]) -> list[str]:
    """R11: attendees are a set; additions and removals from both sides combine."""
    base, ours, theirs = set(agreed), set(crm), set(cal)
    added = (ours - base) | (theirs - base)
    removed = (base - ours) | (base - theirs)
    return sorted((base | added) - removed)


def later_side(item: Item, name: str, margin: float) -> Side | None:
    """The side whose edit of ``name`` is clearly the later one (None when too close to call)."""
    crm_at = item.edited_at.get((Side.CRM, name))
    cal_at = item.edited_at.get((Side.CAL, name))
    if crm_at is None or cal_at is None or abs(crm_at - cal_at) < margin:
        return None
    return Side.CRM if crm_at > cal_at else Side.CAL


def now_seconds() -> float:
    return time.time()


def account_of(user: User) -> CalendarAccount | None:
    return CalendarAccount.objects.filter(user=user, stopped_at__isnull=True).first()


def run_at_once(work: Callable[[str], object], keys: Sequence[str]) -> None:
    """``work(key)`` for every key, each in its own thread (its own database connection), all
    released together like workers picking up tasks at one moment; the first error is re-raised."""
    start = threading.Barrier(len(keys))
    errors: list[BaseException] = []

    def worker(key: str) -> None:
        try:
            start.wait(timeout=30)
            work(key)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
