"""The engine tests' calendar controls act as the user in each provider's calendar app, the same way.

One test body per behaviour, run against Google, Microsoft 365 and Exchange: a single event becomes
a daily series, one occurrence changes or goes, an event turns private, a write to one event is
refused. The emulator tests check each step on the provider's wire; these check the controls.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.calendarsync.sync.conftest import CalendarControl, GoogleCalendarControl
from tests.calendarsync.sync.exchange_setup import ExchangeCalendarControl
from tests.calendarsync.sync.microsoft_setup import MicrosoftCalendarControl

BERLIN = ZoneInfo("Europe/Berlin")
PROVIDERS = ("google", "microsoft", "exchange")


@pytest.fixture(params=PROVIDERS)
def control(request: pytest.FixtureRequest) -> CalendarControl:
    running = request.getfixturevalue(f"{request.param}_emulator")
    controls: dict[str, Any] = {
        "google": GoogleCalendarControl,
        "microsoft": MicrosoftCalendarControl,
        "exchange": ExchangeCalendarControl,
    }
    made: CalendarControl = controls[request.param](running.emulator, running.user)
    return made


def day_after_tomorrow(hour: int = 10) -> dt.datetime:
    day = timezone.now().astimezone(BERLIN).date() + dt.timedelta(days=2)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN)


def event_faults(control: Any) -> dict[str, tuple[int | None, str]]:
    """What the control's emulator will refuse: event id -> (status, reason or code)."""
    state = control.emulator.state
    if isinstance(control, GoogleCalendarControl):
        return {key: (fault.status, fault.reason) for key, fault in state.event_faults.items()}
    if isinstance(control, MicrosoftCalendarControl):
        return {key: (fault.status, fault.code) for key, fault in state.event_faults.items()}
    return {key: (None, fault.code) for key, fault in state.item_faults.items()}


def test_make_recurring_turns_a_single_event_into_a_daily_series(control: CalendarControl) -> None:
    start = day_after_tomorrow()
    event_id = control.create_event("Kick-off", start, start + dt.timedelta(minutes=30))

    control.make_recurring(event_id, 3)
    second = control.update_instance(event_id, start.date() + dt.timedelta(days=1), subject="Second")
    third = control.update_instance(event_id, start + dt.timedelta(days=2), location="Room 7")

    assert [event.external_id for event in control.events()] == [event_id]  # the series counts once
    changed = control.event(second)
    assert changed is not None
    assert (changed.subject, changed.is_recurring_instance, changed.series_id) == ("Second", True, event_id)
    assert changed.start == start + dt.timedelta(days=1)
    located = control.event(third)
    assert located is not None
    assert (located.subject, located.location) == ("Kick-off", "Room 7")
    assert len({event_id, second, third}) == 3


def test_update_instance_moves_an_occurrence_within_its_day(control: CalendarControl) -> None:
    start = day_after_tomorrow()
    series_id = control.create_event("Stand-up", start, start + dt.timedelta(minutes=15), daily_count=3)
    later = start + dt.timedelta(days=1, hours=3)

    moved = control.update_instance(
        series_id, start + dt.timedelta(days=1), start=later, end=later + dt.timedelta(minutes=15)
    )

    event = control.event(moved)
    assert event is not None
    assert (event.start, event.end) == (later, later + dt.timedelta(minutes=15))
    # Still found by its original start, now as the changed occurrence it is.
    assert control.update_instance(series_id, start + dt.timedelta(days=1), subject="Later") == moved


def test_cancel_instance_removes_one_occurrence(control: CalendarControl) -> None:
    start = day_after_tomorrow()
    series_id = control.create_event("Stand-up", start, start + dt.timedelta(minutes=15), daily_count=3)
    kept = control.update_instance(series_id, start.date(), subject="First")

    cancelled = control.cancel_instance(series_id, start.date() + dt.timedelta(days=1))

    assert control.event(cancelled) is None
    assert control.event(kept) is not None
    assert control.event(series_id) is not None
    with pytest.raises(LookupError):
        control.cancel_instance(series_id, start.date() + dt.timedelta(days=1))
    with pytest.raises(LookupError):
        control.update_instance(series_id, start.date() + dt.timedelta(days=9), subject="Nope")


def test_set_private_turns_an_event_private_and_back(control: CalendarControl) -> None:
    start = day_after_tomorrow()
    event_id = control.create_event("Doctor", start, start + dt.timedelta(hours=1))

    control.set_private(event_id, True)
    private = control.event(event_id)
    control.set_private(event_id, False)
    public = control.event(event_id)

    assert private is not None
    assert private.private is True
    assert public is not None
    assert public.private is False


def test_inject_event_failure_arms_the_providers_own_refusal(control: CalendarControl) -> None:
    start = day_after_tomorrow()
    refused = control.create_event("Theirs", start, start + dt.timedelta(hours=1))
    missing = control.create_event("Gone", start, start + dt.timedelta(hours=1))

    control.inject_event_failure(refused, 403)
    control.inject_event_failure(missing, 404)
    armed = event_faults(control)
    control.clear_faults()

    expected = {
        GoogleCalendarControl: {refused: (403, "forbiddenForNonOrganizer"), missing: (404, "notFound")},
        MicrosoftCalendarControl: {refused: (403, "ErrorAccessDenied"), missing: (404, "ErrorItemNotFound")},
        ExchangeCalendarControl: {refused: (None, "ErrorAccessDenied"), missing: (None, "ErrorItemNotFound")},
    }[type(control)]
    assert armed == expected
    assert event_faults(control) == {}
