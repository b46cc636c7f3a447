"""The calendar provider contract: every adapter, against its emulator, behaves the same (R7, R9, R10, C4)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from calendarsync.models import VIDEO_CALL_SERVICES
from calendarsync.providers.base import (
    NEEDS_ACTION,
    Attendee,
    AuthRevoked,
    CalendarProvider,
    ChangePage,
    Conflict,
    CursorExpired,
    EventData,
    InsufficientPermissions,
    NotFound,
    RemoteEvent,
    TransientError,
)
from calendarsync.providers.web_links import safe_web_url
from tests.calendarsync.contract.conftest import ContractSetup, ProviderControl

pytestmark = pytest.mark.contract

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TOMORROW_NINE = (NOW + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)


def window() -> dict[str, dt.datetime]:
    return {"window_start": NOW - dt.timedelta(days=1), "window_end": NOW + dt.timedelta(days=90)}


def meeting(subject: str = "Quarterly review", *, day: int = 0, tag: str | None = None) -> EventData:
    start = TOMORROW_NINE + dt.timedelta(days=day)
    return EventData(subject=subject, start=start, end=start + dt.timedelta(minutes=30), tag=tag)


def full_listing(provider: CalendarProvider, calendar_id: str) -> ChangePage:
    page = provider.list_changes(calendar_id, None, **window())
    assert page.cursor
    return page


def test_list_calendars_includes_a_writable_primary(provider: CalendarProvider) -> None:
    calendars = provider.list_calendars()
    primaries = [c for c in calendars if c.is_primary]
    assert len(primaries) == 1
    assert primaries[0].can_write
    assert primaries[0].external_id


def test_r10_create_twice_with_one_key_gives_one_event(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    first = provider.create_event(control.calendar_id, meeting(tag="act-1"), idempotency_key="act-1")
    again = provider.create_event(control.calendar_id, meeting(tag="act-1"), idempotency_key="act-1")
    assert again.external_id == first.external_id
    assert first.tag == "act-1"
    assert first.subject == "Quarterly review"
    assert first.start == TOMORROW_NINE
    assert first.updated is not None
    assert first.updated.tzinfo is not None
    listed = [
        c for c in full_listing(provider, control.calendar_id).changes if c.event and c.event.tag == "act-1"
    ]
    assert len(listed) == 1
    found = provider.find_by_tag(control.calendar_id, "act-1")
    assert found is not None
    assert found.external_id == first.external_id
    assert provider.find_by_tag(control.calendar_id, "act-unknown") is None


def test_r10_recreating_an_event_deleted_in_the_calendar_needs_a_new_key(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-6"), idempotency_key="act-6")
    control.user_delete_event(created.external_id)
    with pytest.raises(Conflict):
        provider.create_event(control.calendar_id, meeting(tag="act-6"), idempotency_key="act-6")
    [result] = provider.create_events(control.calendar_id, [(meeting(tag="act-6"), "act-6")])
    assert isinstance(result, Conflict)
    fresh = provider.create_event(control.calendar_id, meeting(tag="act-6"), idempotency_key="act-6:2")
    assert fresh.external_id != created.external_id


def test_round_trip_of_all_day_private_free_event(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    day = TOMORROW_NINE.date()
    wanted = EventData(
        subject="Offsite",
        start_date=day,
        end_date=day + dt.timedelta(days=2),
        location="Lake house",
        description="Bring boots",
        private=True,
        busy=False,
        tag="act-offsite",
    )
    created = provider.create_event(control.calendar_id, wanted, idempotency_key="act-offsite")
    assert created.content() == wanted
    assert provider.get_event(control.calendar_id, created.external_id).content() == wanted


def test_update_with_current_etag_then_stale_etag_conflicts(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-2"), idempotency_key="act-2")
    updated = provider.update_event(
        control.calendar_id, created.external_id, meeting("Moved", day=1, tag="act-2"), etag=created.etag
    )
    assert updated.subject == "Moved"
    assert updated.start == TOMORROW_NINE + dt.timedelta(days=1)
    assert updated.etag != created.etag
    with pytest.raises(Conflict):
        provider.update_event(
            control.calendar_id, created.external_id, meeting("Stale", tag="act-2"), etag=created.etag
        )
    # The user edits in the calendar: our last etag is stale now too.
    control.user_update_event(created.external_id, subject="Edited by the user")
    with pytest.raises(Conflict):
        provider.update_event(
            control.calendar_id, created.external_id, meeting("Ours", tag="act-2"), etag=updated.etag
        )
    assert provider.get_event(control.calendar_id, created.external_id).subject == "Edited by the user"


def test_r10_repeating_an_update_that_already_landed_is_not_a_conflict(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-5"), idempotency_key="act-5")
    wanted = meeting("Moved", day=2, tag="act-5")
    first = provider.update_event(control.calendar_id, created.external_id, wanted, etag=created.etag)
    # A retry whose first attempt landed (its answer was lost) sends the old etag again.
    repeated = provider.update_event(control.calendar_id, created.external_id, wanted, etag=created.etag)
    assert repeated.external_id == first.external_id
    assert repeated.content() == wanted


def test_update_can_switch_between_timed_and_all_day(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-3"), idempotency_key="act-3")
    day = TOMORROW_NINE.date()
    all_day = EventData(
        subject="All day now", start_date=day, end_date=day + dt.timedelta(days=1), tag="act-3"
    )
    changed = provider.update_event(control.calendar_id, created.external_id, all_day, etag=created.etag)
    assert changed.all_day
    assert changed.start is None
    assert changed.start_date == day
    back = provider.update_event(control.calendar_id, created.external_id, meeting(tag="act-3"), etag=None)
    assert back.start == TOMORROW_NINE
    assert back.start_date is None


def test_delete_then_get_raises_not_found(provider: CalendarProvider, control: ProviderControl) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-4"), idempotency_key="act-4")
    provider.delete_event(control.calendar_id, created.external_id, etag=created.etag)
    with pytest.raises(NotFound):
        provider.get_event(control.calendar_id, created.external_id)
    provider.delete_event(control.calendar_id, created.external_id)  # already gone: no error
    with pytest.raises(NotFound):
        provider.update_event(control.calendar_id, created.external_id, meeting(), etag=None)
    assert provider.find_by_tag(control.calendar_id, "act-4") is None


def test_r10_changes_since_cursor_are_reported_exactly_once(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    to_edit = control.user_create_event("Edit me", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(hours=1))
    to_delete = control.user_create_event("Delete me", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(hours=1))
    first = full_listing(provider, control.calendar_id)
    assert {to_edit, to_delete} <= {c.external_id for c in first.changes}
    assert first.full_listing

    created = control.user_create_event("New", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(hours=1))
    control.user_update_event(to_edit, subject="Edited")
    control.user_update_event(to_edit, subject="Edited twice")
    control.user_delete_event(to_delete)

    page = provider.list_changes(control.calendar_id, first.cursor, **window())
    assert not page.full_listing
    by_id = {c.external_id: c for c in page.changes}
    assert len(by_id) == len(page.changes), "an event was reported twice"
    assert set(by_id) == {created, to_edit, to_delete}
    assert by_id[created].kind == "upserted"
    assert by_id[to_edit].kind == "upserted"
    edited = by_id[to_edit].event
    assert edited is not None
    assert edited.subject == "Edited twice"
    assert by_id[to_delete].kind == "deleted"

    quiet = provider.list_changes(control.calendar_id, page.cursor, **window())
    assert quiet.changes == ()


def test_r10_our_own_writes_show_up_once_with_our_tag(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    cursor = full_listing(provider, control.calendar_id).cursor
    created = provider.create_event(control.calendar_id, meeting(tag="act-echo"), idempotency_key="act-echo")
    page = provider.list_changes(control.calendar_id, cursor, **window())
    ours = [c for c in page.changes if c.external_id == created.external_id]
    assert len(ours) == 1
    assert ours[0].event is not None
    assert ours[0].event.tag == "act-echo"  # lets the engine recognise its own echo
    assert ours[0].event.etag == created.etag


def test_r3_reports_unlisted_deletions_flag_matches_the_change_feed(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    """The engine skips its second listing only where the feed reports such deletions itself."""
    cursor = full_listing(provider, control.calendar_id).cursor
    created = provider.create_event(control.calendar_id, meeting(tag="act-gone"), idempotency_key="act-gone")
    control.user_delete_event(created.external_id)
    page = provider.list_changes(control.calendar_id, cursor, **window())
    deleted = {c.external_id for c in page.changes if c.kind == "deleted"}
    assert (created.external_id in deleted) is provider.reports_unlisted_deletions


def test_r10_expired_cursor_raises_cursor_expired(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    control.user_create_event("Existing", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(hours=1))
    cursor = full_listing(provider, control.calendar_id).cursor
    control.expire_cursor()
    with pytest.raises(CursorExpired):
        provider.list_changes(control.calendar_id, cursor, **window())
    again = full_listing(provider, control.calendar_id)
    assert [c.event.subject for c in again.changes if c.event] == ["Existing"]


def test_rate_limit_raises_transient_error_with_retry_after(contract: ContractSetup) -> None:
    provider, control = contract.provider, contract.control
    control.inject_rate_limit(count=contract.retry_attempts + 1, retry_after=7)
    with pytest.raises(TransientError) as caught:
        provider.list_calendars()
    assert caught.value.retry_after == 7
    assert not caught.value.permanent
    # The adapter honoured Retry-After between its own attempts (sleep is injected).
    assert contract.sleeps == [7] * (contract.retry_attempts - 1)


def test_rate_limit_within_the_retry_budget_is_absorbed(contract: ContractSetup) -> None:
    contract.control.inject_rate_limit(count=contract.retry_attempts - 1, retry_after=2)
    assert contract.provider.list_calendars()
    assert contract.sleeps == [2] * (contract.retry_attempts - 1)


@pytest.mark.parametrize("kind", ["server_error", "reset", "timeout"])
def test_r10_transient_failures_within_the_retry_budget_are_absorbed(
    contract: ContractSetup, kind: str
) -> None:
    contract.control.inject_failure(kind, count=contract.retry_attempts - 1)
    assert contract.provider.list_calendars()
    assert len(contract.sleeps) == contract.retry_attempts - 1


@pytest.mark.parametrize("kind", ["server_error", "timeout"])
def test_r10_persistent_failures_raise_transient_error(contract: ContractSetup, kind: str) -> None:
    contract.control.inject_failure(kind, count=contract.retry_attempts)
    with pytest.raises(TransientError):
        contract.provider.list_calendars()


def test_r10_create_retried_after_a_lost_connection_makes_one_event(contract: ContractSetup) -> None:
    provider, control = contract.provider, contract.control
    control.inject_failure("reset", count=contract.retry_attempts - 1)
    created = provider.create_event(
        control.calendar_id, meeting(tag="act-reset"), idempotency_key="act-reset"
    )
    listed = [c for c in full_listing(provider, control.calendar_id).changes if c.event and c.event.tag]
    assert [c.external_id for c in listed] == [created.external_id]


def test_r10_bulk_create_retries_throttled_items_only(contract: ContractSetup) -> None:
    provider, control = contract.provider, contract.control
    items = [(meeting(f"Call {n}", tag=f"thr-{n}"), f"thr-{n}") for n in range(10)]
    control.inject_bulk_item_rate_limit(count=3)
    control.reset_request_counts()
    results = provider.create_events(control.calendar_id, items)
    assert all(not isinstance(r, Exception) for r in results), results
    assert control.bulk_requests_made() == 2  # the first batch, then one with the 3 throttled items
    assert len(contract.sleeps) == 1
    assert len({r.external_id for r in results if not isinstance(r, Exception)}) == 10


def test_r9_revoked_grant_raises_auth_revoked(provider: CalendarProvider, control: ProviderControl) -> None:
    control.revoke()
    with pytest.raises(AuthRevoked):
        provider.list_calendars()


def test_r9_revoked_grant_stops_bulk_create(provider: CalendarProvider, control: ProviderControl) -> None:
    control.revoke()
    with pytest.raises(AuthRevoked):
        provider.create_events(control.calendar_id, [(meeting(tag="rev-1"), "rev-1")])


def test_c4_missing_calendar_scope_raises_insufficient_permissions(control: ProviderControl) -> None:
    limited = control.provider_without_calendar_access()
    with pytest.raises(InsufficientPermissions):
        limited.list_calendars()


def test_r7_recurring_series_comes_back_as_instances(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    series_id = control.create_recurring_series(
        "Daily stand-up", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(minutes=15), count=5
    )
    page = full_listing(provider, control.calendar_id)
    instances = [c.event for c in page.changes if c.event and c.event.series_id == series_id]
    assert len(instances) == 5
    assert all(e.is_recurring_instance for e in instances)
    assert len({e.external_id for e in instances}) == 5
    starts = sorted(e.start for e in instances if e.start)
    assert starts == [TOMORROW_NINE + dt.timedelta(days=n) for n in range(5)]
    assert series_id not in {c.external_id for c in page.changes}  # the series itself is not an item


# --------------------------------------------------------------------------- web calendar links


def test_events_carry_the_link_that_opens_them_in_the_web_calendar(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    created = provider.create_event(control.calendar_id, meeting(tag="act-web"), idempotency_key="act-web")
    link = control.web_link(created.external_id)
    assert link is not None
    assert safe_web_url(link) == link
    assert created.web_url == link
    assert provider.get_event(control.calendar_id, created.external_id).web_url == link
    updated = provider.update_event(
        control.calendar_id, created.external_id, meeting("Moved", day=1, tag="act-web"), etag=created.etag
    )
    assert updated.web_url == control.web_link(updated.external_id)
    [bulk] = provider.create_events(control.calendar_id, [(meeting("Bulk", tag="act-web-2"), "act-web-2")])
    assert isinstance(bulk, RemoteEvent)
    assert bulk.web_url == control.web_link(bulk.external_id)
    assert bulk.web_url != link

    page = full_listing(provider, control.calendar_id)
    listed = {c.external_id: c.event for c in page.changes if c.event}
    assert listed[created.external_id].web_url == link
    # What changed since the cursor: the user's new event and the user's edit of ours.
    walk_in = control.user_create_event(
        "Walk-in", TOMORROW_NINE + dt.timedelta(days=3), TOMORROW_NINE + dt.timedelta(days=3, hours=1)
    )
    control.user_update_event(created.external_id, subject="Edited by the user")
    changed = {
        c.external_id: c.event
        for c in provider.list_changes(control.calendar_id, page.cursor, **window()).changes
        if c.event
    }
    assert changed[walk_in].web_url == control.web_link(walk_in)
    assert changed[walk_in].web_url is not None
    assert changed[created.external_id].web_url == control.web_link(created.external_id)


def test_r7_each_instance_of_a_series_carries_its_own_web_link(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    series_id = control.create_recurring_series(
        "Daily stand-up", TOMORROW_NINE, TOMORROW_NINE + dt.timedelta(minutes=15), count=3
    )
    page = full_listing(provider, control.calendar_id)
    instances = [c.event for c in page.changes if c.event and c.event.series_id == series_id]
    assert len(instances) == 3
    assert [e.web_url for e in instances] == [control.web_link(e.external_id) for e in instances]
    assert len({e.web_url for e in instances if e.web_url}) == 3


def test_r10_bulk_create_batches_and_is_idempotent(contract: ContractSetup) -> None:
    provider, control = contract.provider, contract.control
    items = [(meeting(f"Call {n}", day=n % 30, tag=f"bulk-{n}"), f"bulk-{n}") for n in range(120)]
    control.reset_request_counts()
    results = provider.create_events(control.calendar_id, items)
    assert control.bulk_requests_made() == math.ceil(120 / contract.bulk_batch_size)
    assert all(not isinstance(r, Exception) for r in results), [
        r for r in results if isinstance(r, Exception)
    ]
    ids = [r.external_id for r in results if not isinstance(r, Exception)]
    assert len(set(ids)) == 120
    assert [r.subject for r in results if not isinstance(r, Exception)] == [f"Call {n}" for n in range(120)]

    # Re-sending the same keys (a retried task) adopts the same events, creating nothing.
    again = provider.create_events(control.calendar_id, items)
    assert [r.external_id for r in again if not isinstance(r, Exception)] == ids
    listed = [c for c in full_listing(provider, control.calendar_id).changes if c.event and c.event.tag]
    assert len(listed) == 120


def test_bulk_create_reports_invalid_items_alone(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    bad = EventData(subject="Backwards", start=TOMORROW_NINE, end=TOMORROW_NINE - dt.timedelta(hours=1))
    results = provider.create_events(
        control.calendar_id, [(meeting(tag="ok-1"), "ok-1"), (bad, "bad-1"), (meeting(tag="ok-2"), "ok-2")]
    )
    assert [type(r).__name__ for r in results] == ["RemoteEvent", "InvalidEvent", "RemoteEvent"]


def test_r9_expired_access_token_is_refreshed_and_persisted(contract: ContractSetup) -> None:
    provider, control = contract.provider, contract.control
    if contract.initial_access_token is None:
        pytest.skip("this provider has no access tokens to refresh")
    assert provider.list_calendars()
    assert contract.refreshed_tokens == []
    control.expire_access_token()
    assert provider.list_calendars()
    assert len(contract.refreshed_tokens) == 1
    fresh = contract.refreshed_tokens[0]
    assert fresh["access_token"]
    assert fresh["access_token"] != contract.initial_access_token
    assert fresh["refresh_token"]
    assert fresh["expiry"]


# --------------------------------------------------------------------------- meetings (M1, M4, O11)

ADAPTER_SERVICES = {"GoogleProvider": "Google Meet", "MicrosoftProvider": "Microsoft Teams"}


def test_m4_video_call_service_matches_what_the_account_page_offers(provider: CalendarProvider) -> None:
    """The activity form offers a video call from ``VIDEO_CALL_SERVICES`` without building an
    adapter: the adapter must say the same."""
    assert provider.video_call_service == ADAPTER_SERVICES.get(type(provider).__name__)
    assert provider.video_call_service in (None, *VIDEO_CALL_SERVICES.values())
    assert isinstance(provider.always_notifies_guests, bool)


def test_m1_our_own_meeting_is_organized_here_and_carries_its_uid(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    data = EventData(
        subject="Pricing call",
        start=TOMORROW_NINE,
        end=TOMORROW_NINE + dt.timedelta(minutes=30),
        attendees=(Attendee(email="ann@partner.test"),),
        tag="act-m1",
    )
    created = provider.create_event(control.calendar_id, data, idempotency_key="act-m1")
    assert created.is_organizer
    assert created.my_response is None
    assert created.ical_uid
    [listed] = [
        c.event
        for c in full_listing(provider, control.calendar_id).changes
        if c.event and c.event.tag == "act-m1"
    ]
    assert listed.ical_uid == created.ical_uid
    assert listed.is_organizer
    assert [(a.email, a.response) for a in listed.attendees] == [("ann@partner.test", NEEDS_ACTION)]
    fetched = provider.get_event(control.calendar_id, created.external_id)
    assert fetched.ical_uid == created.ical_uid


def test_m4_a_video_call_is_made_where_the_calendar_can(
    provider: CalendarProvider, control: ProviderControl
) -> None:
    start = TOMORROW_NINE + dt.timedelta(days=2)
    data = EventData(
        subject="Demo", start=start, end=start + dt.timedelta(minutes=30), tag="act-m4", video_call=True
    )
    created = provider.create_event(control.calendar_id, data, idempotency_key="act-m4")
    later = provider.get_event(control.calendar_id, created.external_id)
    if provider.video_call_service is None:
        assert later.join_url is None
        assert not later.video_call_pending
    else:
        assert created.join_url or created.video_call_pending
        assert later.join_url
        assert later.join_url.startswith("https://")
