"""A real browser filters the activity list (A7) and browses the calendar week by week (A8)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from activities.models import Activity, ActivityType
from tests.browser.conftest import log_in
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True, scope="module")
def _allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's session-wide event loop runs in this thread from before the test's database
    set-up until after its teardown flush; the function-scoped ``browser_env`` starts too late."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def at_berlin(day: dt.date, hour: int, user: User) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=user.tzinfo)


def test_a7_a8_filter_list_by_type_then_browse_calendar_to_next_week(
    live_server, owner: User, page: Page
) -> None:
    today = timezone.now().astimezone(owner.tzinfo).date()
    monday = today - dt.timedelta(days=today.weekday())
    next_wednesday = monday + dt.timedelta(days=9)
    call = ActivityType.objects.get(company=owner.company, name="Call")
    make_activity(owner, subject="Call the supplier", type=call, start_at=at_berlin(today, 23, owner))
    make_activity(owner, subject="Team meeting", start_at=at_berlin(today, 22, owner))
    make_activity(owner, subject="Follow-up call", type=call, start_at=at_berlin(next_wednesday, 10, owner))

    log_in(page, live_server.url, owner)
    table = page.locator("#activity-results")
    expect(table.get_by_role("link", name="Team meeting", exact=True)).to_be_visible()

    # The done checkbox saves at once and swaps its row.
    page.get_by_role("checkbox", name="Done: Team meeting").check()
    expect(page.locator("tr", has=page.get_by_role("link", name="Team meeting", exact=True))).to_have_class(
        "is-done"
    )
    assert Activity.objects.get(subject="Team meeting").done is True

    # Ticking a type swaps only the table (htmx) and records the filter in the address bar.
    page.get_by_role("group", name=re.compile("Types")).get_by_role(
        "checkbox", name="Call", exact=True
    ).check()
    expect(table.get_by_role("link", name="Team meeting", exact=True)).to_have_count(0)
    expect(table.get_by_role("link", name="Call the supplier", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="Follow-up call", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(rf"types={call.pk}"))

    # The calendar keeps the filters; switch to month and back to week, then go to next week.
    table.get_by_role("link", name="Show in calendar").click()
    expect(page).to_have_url(re.compile(r"/activities/calendar/\?.*types="))
    calendar = page.locator("#calendar")
    page.get_by_role("link", name="Month").click()
    expect(page).to_have_url(re.compile(r"view=month"))
    page.get_by_role("link", name="Week", exact=True).click()
    expect(page).to_have_url(re.compile(r"view=week"))
    expect(calendar.get_by_role("link", name=re.compile("Call the supplier"))).to_be_visible()
    expect(calendar.get_by_text("Team meeting")).to_have_count(0)
    expect(calendar.get_by_text("Follow-up call")).to_have_count(0)

    page.get_by_role("link", name=re.compile(r"^Next")).click()
    expect(page).to_have_url(re.compile(rf"date={(monday + dt.timedelta(days=7)).isoformat()}"))
    item = calendar.get_by_role("link", name=re.compile("Follow-up call"))
    expect(item).to_be_visible()
    expect(item).to_contain_text("10:00")
    expect(calendar.get_by_text("Call the supplier")).to_have_count(0)
    # Only the fragment was swapped: the filter form still has the type ticked, and it now
    # filters the week shown (the fragment's hidden view/date inputs belong to the form).
    types = page.get_by_role("group", name=re.compile("Types"))
    expect(types.get_by_role("checkbox", name="Call", exact=True)).to_be_checked()
    types.get_by_role("checkbox", name="Meeting", exact=True).check()
    expect(page).to_have_url(re.compile(rf"date={(monday + dt.timedelta(days=7)).isoformat()}"))
    expect(page).to_have_url(re.compile(r"types=.*types="))
    expect(calendar.get_by_role("link", name=re.compile("Follow-up call"))).to_be_visible()
