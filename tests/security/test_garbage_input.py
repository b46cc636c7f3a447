"""Finding 12 of issue #13: garbage input is a 400, a 404 or a form error, never a 500.

Every view that reads ids or dates from a request gets huge integers (past the 64-bit range the
database stores), digits ``int()`` reads but a browser never sends, and the ends of
``datetime``'s range (years 1 and 9999). Each test is one view; it fires every value at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.models import Company, User
from activities.models import Activity, ActivityType, Visibility
from tests.activities.conftest import berlin, make_person, timed
from tests.calendarsync.support import HTMX, connect_account
from tests.conftest import make_user

HUGE = "9" * 30
GARBAGE_IDS = (HUGE, str(2**63), "-" + HUGE, "\N{SUPERSCRIPT TWO}", "\N{ARABIC-INDIC DIGIT ONE}", "1e999")
EXTREME_DATES = ("0001-01-01", "9999-12-31", "0000-00-00", "99999-01-01")
HANDLED = frozenset({200, 302, 400, 404, 422})

pytestmark = pytest.mark.usefixtures("frozen_now")

Fire = Callable[[Client, User], Iterator[Any]]


def _read(response: Any) -> Any:
    """The response, read to the end: a streamed CSV fails while it is read, not when the view returns."""
    if response.streaming:
        b"".join(response.streaming_content)
    return response


def _filter_queries() -> Iterator[dict[str, Any]]:
    for junk in GARBAGE_IDS:
        yield from ({"types": junk}, {"types": ["1", junk]}, {"owner": junk}, {"page": junk})
    for day in EXTREME_DATES:
        yield from (
            {"time": "range", "from": "0001-01-01", "to": day},
            {"time": "range", "from": day, "to": "9999-12-31"},
            {"from": day},
            {"date": day},
        )


def _listing(name: str, **fixed: str) -> Fire:
    def fire(client: Client, user: User) -> Iterator[Any]:
        for query in _filter_queries():
            for headers in ({}, HTMX):
                yield _read(client.get(reverse(name), {**fixed, **query}, headers=headers))

    return fire


def _form_data(user: User, **changes: Any) -> dict[str, Any]:
    meeting = ActivityType.objects.get(company=user.company, name="Meeting")
    data: dict[str, Any] = {
        "subject": "Garbage in",
        "type": str(meeting.pk),
        "due_date": "2025-01-15",
        "due_time": "10:00",
        "duration_preset": "30",
        "busy": "True",
        "visibility": Visibility.EVERYONE,
    }
    data.update(changes)
    return data


def _form_changes() -> Iterator[dict[str, Any]]:
    for junk in GARBAGE_IDS:
        for field in ("type", "participants", "participants_pick", "deal", "deal_pick", "person"):
            yield {field: ["1", junk] if field.startswith("participants") else junk}
        yield {"duration_preset": junk}
    for day in EXTREME_DATES:
        yield from (
            {"due_date": day, "due_time": "10:00"},
            {"due_date": day, "due_time": "00:00"},
            {"due_date": day, "due_time": "23:59", "duration_preset": "custom", "end_time": "00:30"},
            {"due_date": day, "due_time": "", "all_day": "on"},
            {"due_date": "2025-01-15", "due_time": "", "all_day": "on", "end_date": day},
        )


def _activity_form(edit: bool) -> Fire:
    def fire(client: Client, user: User) -> Iterator[Any]:
        activity = timed(user, berlin(2025, 1, 14, 9, 0), subject="Garbage proof")
        url = reverse("activities:edit", args=[activity.pk]) if edit else reverse("activities:create")
        for day in EXTREME_DATES:
            yield client.get(url, {"date": day})
        for changes in _form_changes():
            before = Activity.objects.count()
            response = client.post(url, _form_data(user, **changes))
            if response.status_code != 302:
                assert Activity.objects.count() == before, changes
            yield response

    return fire


def _pickers(client: Client, user: User) -> Iterator[Any]:
    make_person(user, "Ann Alpha")
    for field in ("participants", "deal", "person", "organization"):
        url = reverse("activities:picker_options", args=[field])
        for junk in GARBAGE_IDS:
            yield client.get(url, {f"{field}_query": "a", field: [junk, "1"]})


def _preference_options(client: Client, user: User) -> Iterator[Any]:
    account = connect_account(user)
    for option in ("outgoing_types", "incoming_type", "calendar"):
        url = reverse("calendarsync:update_preferences", args=[account.pk, option])
        for junk in GARBAGE_IDS:
            yield client.post(url, {option: [junk]})
            response = client.post(url, {option: [junk]}, headers=HTMX)
            assert response.status_code == 422, (option, junk)
            yield response


VIEWS: dict[str, Fire] = {
    "list": _listing("activities:list"),
    "calendar-week": _listing("activities:calendar", view="week"),
    "calendar-month": _listing("activities:calendar", view="month"),
    "csv-export": _listing("activities:export"),
    "create-form": _activity_form(edit=False),
    "edit-form": _activity_form(edit=True),
    "pickers": _pickers,
    "preference-options": _preference_options,
}


@pytest.mark.parametrize("view", VIEWS)
def test_12_garbage_ids_and_extreme_dates_never_give_a_500(
    owner_client: Client, owner: User, view: str
) -> None:
    owner_client.raise_request_exception = False
    statuses = {response.status_code for response in VIEWS[view](owner_client, owner)}
    assert statuses <= HANDLED


ADMIN_CHANGELISTS = (
    ("activities", "activity", "due_date"),
    ("calendarsync", "calendaraccount", "connected_at"),
    ("calendarsync", "syncrun", "started_at"),
)


@pytest.mark.parametrize("superuser", [True, False], ids=["superuser", "company-admin"])
@pytest.mark.parametrize(("app", "model", "field"), ADMIN_CHANGELISTS)
def test_12_admin_date_hierarchy_at_the_end_of_time_is_refused_not_a_500(
    company: Company, app: str, model: str, field: str, superuser: bool
) -> None:
    staff = make_user(company, "staff@acme.test", is_staff=True, is_superuser=superuser)
    staff.user_permissions.add(*Permission.objects.filter(codename=f"view_{model}"))
    client = Client(raise_request_exception=False)
    client.force_login(staff)
    url = reverse(f"admin:{app}_{model}_changelist")
    for query in (
        {f"{field}__year": "9999", f"{field}__month": "12", f"{field}__day": "31"},
        {f"{field}__year": "9999", f"{field}__month": "12"},
        {f"{field}__year": "9999"},
        {f"{field}__year": "0"},
        {f"{field}__year": HUGE},
    ):
        response = client.get(url, query)
        assert response.status_code in HANDLED, (query, response.status_code)
