"""A real browser filters the activity list (A7) and browses the calendar week by week (A8)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import FloatRect, Locator, Page, Route, expect

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus
from calendarsync.actions import do_stop_sync
from calendarsync.models import CalendarAccount, Provider
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


# --- A8 week grid, type colours and sync badges (issue #10) -------------------------------------------

# What the coming Content-Security-Policy allows: no inline style or script anywhere.
STRICT_CSP = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'"


def _with_strict_csp(page: Page, base_url: str) -> None:
    """Serve every page of the app with ``STRICT_CSP`` and record what the browser refuses."""

    def add_policy(route: Route) -> None:
        if route.request.resource_type != "document" or route.request.method != "GET":
            route.fallback()
            return
        response = route.fetch(max_redirects=0)
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    page.route(f"{base_url}/**", add_policy)
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', function (e) {"
        "  window.__cspViolations.push({directive: e.violatedDirective, source: e.sourceFile || '',"
        "                                sample: e.sample || '', blocked: e.blockedURI || ''});"
        "});"
    )


def _violations(page: Page) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.evaluate("window.__cspViolations")
    # htmx injects its own indicator <style>; that is the base template's business, not the calendar's.
    return [v for v in found if "htmx" not in v["source"]]


def _box(locator: Locator) -> FloatRect:
    box = locator.bounding_box()
    assert box is not None
    return box


def test_a8_week_grid_places_items_by_time_with_type_colours_and_sync_badges(
    live_server, owner: User, page: Page
) -> None:
    today = timezone.now().astimezone(owner.tzinfo).date()
    monday = today - dt.timedelta(days=today.weekday())
    wednesday, thursday = monday + dt.timedelta(days=2), monday + dt.timedelta(days=3)
    lunch_type = ActivityType.objects.get(company=owner.company, name="Lunch")
    lunch_type.color = "#e03e3e"
    lunch_type.save()
    old_account = CalendarAccount.objects.create(
        user=owner, provider=Provider.MICROSOFT, email="owner@old.test", stopped_at=timezone.now()
    )
    account = CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")

    def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=owner.tzinfo)

    synced = {"sync_status": SyncStatus.SYNCED, "calendar_account": account}
    make_activity(owner, subject="Standup", start_at=at(wednesday, 9), **synced)
    make_activity(
        owner,
        subject="Design review",
        start_at=at(wednesday, 9, 15),
        duration=dt.timedelta(hours=1),
        **synced,
    )
    make_activity(
        owner,
        subject="Lunch with client",
        type=lunch_type,
        start_at=at(wednesday, 12),
        duration=dt.timedelta(minutes=90),
        sync_status=SyncStatus.PENDING,
        calendar_account=account,
    )
    make_activity(owner, subject="Late call", start_at=at(wednesday, 23), duration=dt.timedelta(minutes=45))
    make_activity(owner, subject="Trade fair", start_at=None, due_date=wednesday, duration=None, **synced)
    make_activity(
        owner,
        subject="Old sync",
        start_at=at(thursday, 10),
        sync_status=SyncStatus.SYNCED,
        calendar_account=old_account,
    )

    _with_strict_csp(page, live_server.url)
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/calendar/?view=week&date={monday.isoformat()}")
    calendar = page.locator("#calendar")
    day = page.locator("ol.wk-day").nth(2)
    expect(day).to_have_attribute("aria-label", re.compile(wednesday.strftime("%A")))

    # Placed by start time and sized by duration, on quarter-hour rows of the Wednesday column.
    standup = calendar.get_by_role("link", name=re.compile("^09:00 .*Standup"))
    review = calendar.get_by_role("link", name=re.compile("^09:15 .*Design review"))
    lunch = calendar.get_by_role("link", name=re.compile("^12:00 .*Lunch with client"))
    expect(standup).to_be_visible()
    column = _box(day)
    slot = column["height"] / 96
    assert slot > 10
    standup_box, review_box, lunch_box = _box(standup), _box(review), _box(lunch)
    assert abs(standup_box["y"] - (column["y"] + 36 * slot)) < 2
    assert abs(review_box["y"] - (column["y"] + 37 * slot)) < 2
    assert abs(lunch_box["y"] - (column["y"] + 48 * slot)) < 2
    assert abs(standup_box["height"] - 2 * slot) < 3
    assert abs(review_box["height"] - 4 * slot) < 3
    assert abs(lunch_box["height"] - 6 * slot) < 3
    # Overlapping items sit side by side, each half the column wide.
    assert review_box["x"] >= standup_box["x"] + standup_box["width"]
    assert standup_box["width"] < column["width"] / 2
    assert review_box["width"] < column["width"] / 2
    assert standup_box["width"] > column["width"] / 2 - 8
    assert abs(lunch_box["width"] - column["width"]) < 8

    # The grid opens at 07:00, right under the sticky day headers and all-day row.
    page.wait_for_function("() => document.querySelector('.wk-scroll').scrollTop > 0")
    column, top = _box(day), _box(page.locator(".wk-top"))
    assert 0 < (column["y"] + 28 * slot) - (top["y"] + top["height"]) < 14
    trade_fair = calendar.get_by_role("link", name=re.compile("All day Trade fair"))
    assert _box(trade_fair)["y"] < top["y"] + top["height"]
    # Every hour stays reachable: midnight at the top, the 23:00 call at the bottom.
    scroller = page.locator(".wk-scroll")
    scroller.evaluate("element => { element.scrollTop = 0; }")
    midnight = page.locator('.wk-hour[data-hour="0"]')
    expect(midnight).to_be_in_viewport()
    late = calendar.get_by_role("link", name=re.compile("^23:00 .*Late call"))
    late.scroll_into_view_if_needed()
    expect(late).to_be_in_viewport()
    assert abs(_box(late)["y"] - (_box(day)["y"] + 92 * slot)) < 2

    # Type colours (A2) from the stylesheet's classes (the page runs under STRICT_CSP).
    assert standup.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(79, 107, 237)"
    assert lunch.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(224, 62, 62)"

    # Sync status and account on every item without hovering: words, and the provider's icon
    # with the address for screen readers.
    expect(standup).to_have_accessible_name(re.compile(r"Synced Google: owner@gmail\.test$"))
    expect(standup.locator(".badge")).to_be_visible()
    icon = standup.locator("img.provider-icon")
    expect(icon).to_be_visible()
    assert icon.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(lunch).to_have_accessible_name(re.compile(r"Pending Google: owner@gmail\.test$"))
    expect(trade_fair).to_have_accessible_name(re.compile(r"Synced Google: owner@gmail\.test$"))
    # After "Stop sync" the item says so and names no account.
    old = calendar.get_by_role("link", name=re.compile("Old sync"))
    expect(old).to_have_accessible_name(re.compile(r"Old sync Not syncing$"))
    expect(old.locator("img")).to_have_count(0)
    expect(calendar).not_to_contain_text("owner@old.test")

    # htmx to next week and back: the grid is swapped and opens at 07:00 again.
    page.get_by_role("link", name=re.compile(r"^Next")).click()
    expect(page).to_have_url(re.compile(rf"date={(monday + dt.timedelta(days=7)).isoformat()}"))
    expect(standup).to_have_count(0)
    page.get_by_role("link", name=re.compile(r"Previous")).click()
    expect(standup).to_be_visible()
    # The scroll happens on htmx:afterSettle, a moment after the swapped grid is visible.
    page.wait_for_function("() => document.querySelector('.wk-scroll').scrollTop > 0")
    column, top = _box(page.locator("ol.wk-day").nth(2)), _box(page.locator(".wk-top"))
    assert 0 < (column["y"] + 28 * slot) - (top["y"] + top["height"]) < 14

    # The month view keeps a list per day, with the same colours and badges.
    page.get_by_role("link", name="Month").click()
    expect(page.locator("table.cal-month")).to_be_visible()
    month_lunch = calendar.get_by_role("link", name=re.compile("Lunch with client"))
    expect(month_lunch).to_have_accessible_name(re.compile(r"Pending Google: owner@gmail\.test$"))
    assert month_lunch.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(224, 62, 62)"
    assert _violations(page) == []


def test_a7_list_shows_type_colour_and_not_syncing_after_stop_sync(
    live_server, owner: User, page: Page
) -> None:
    tomorrow = timezone.now().astimezone(owner.tzinfo) + dt.timedelta(days=1)
    account = CalendarAccount.objects.create(
        user=owner, provider=Provider.EXCHANGE, email="owner@exchange.test"
    )
    make_activity(
        owner,
        subject="Quarterly call",
        start_at=tomorrow,
        sync_status=SyncStatus.SYNCED,
        calendar_account=account,
    )
    _with_strict_csp(page, live_server.url)
    log_in(page, live_server.url, owner)
    row = page.locator("tr", has=page.get_by_role("link", name="Quarterly call", exact=True))
    expect(row).to_contain_text("Synced")
    expect(row).to_contain_text("owner@exchange.test")
    expect(row.locator("img.provider-icon")).to_be_visible()
    assert (
        row.locator(".type-dot").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(79, 107, 237)"
    )

    do_stop_sync(acting_user=owner, account=account)
    page.reload()
    expect(row).to_contain_text("Not syncing")
    expect(row).not_to_contain_text("Synced")
    expect(row).not_to_contain_text("owner@exchange.test")
    assert _violations(page) == []


def test_favicon_is_linked_and_served(live_server, owner: User, page: Page) -> None:
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    log_in(page, live_server.url, owner)
    icons = page.locator("link[rel=icon]")
    expect(icons).to_have_count(2)
    for href in icons.evaluate_all("links => links.map(link => link.href)"):
        assert page.request.get(href).status == 200
    favicon = page.request.get(f"{live_server.url}/favicon.ico")
    assert favicon.status == 200
    assert favicon.headers["content-type"].startswith("image/")
    assert favicon.body().startswith(b"\x00\x00\x01\x00")  # an ICO file
    assert missing == []


# --- A8: the status in words, not only a glyph (review item 10) ----------------------------------------

# Where the word of an item's badge is, and whether a reader can see it: not clipped to a pixel
# (the screen-reader-only style) and not cut off by the item's edge.
WORD_SHOWN = """badge => {
  const word = badge.querySelector(".badge-text").getBoundingClientRect();
  const item = badge.closest(".cal-item").getBoundingClientRect();
  return word.width > 12 && word.height > 6 && word.right <= item.right + 0.5 && word.bottom <= item.bottom + 0.5;
}"""


def test_a8_month_and_wide_week_items_show_their_status_as_a_word(
    live_server, owner: User, page: Page
) -> None:
    today = timezone.now().astimezone(owner.tzinfo).date()
    monday = today - dt.timedelta(days=today.weekday())
    account = CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")
    stopped = CalendarAccount.objects.create(
        user=owner, provider=Provider.MICROSOFT, email="owner@old.test", stopped_at=timezone.now()
    )
    words = {
        SyncStatus.SYNCED: "Synced",
        SyncStatus.PENDING: "Pending",
        SyncStatus.SKIPPED: "Skipped",
        SyncStatus.ERROR: "Error",
    }
    for index, status in enumerate(words):
        make_activity(
            owner,
            subject=f"Item {words[status]}",
            start_at=at_berlin(monday + dt.timedelta(days=index), 9, owner),
            duration=dt.timedelta(hours=1),
            sync_status=status,
            calendar_account=account,
        )
    make_activity(
        owner,
        subject="Item stopped",
        start_at=at_berlin(monday + dt.timedelta(days=4), 11, owner),
        sync_status=SyncStatus.SYNCED,
        calendar_account=stopped,
    )
    # Two at once on Saturday: side by side, each too narrow for the word (the glyph stays).
    for minute in (0, 15):
        make_activity(
            owner,
            subject=f"Squeezed {minute}",
            start_at=at_berlin(monday + dt.timedelta(days=5), 14, owner) + dt.timedelta(minutes=minute),
            duration=dt.timedelta(hours=1),
            sync_status=SyncStatus.SKIPPED,
            calendar_account=account,
        )
    all_words = {**{f"Item {word}": word for word in words.values()}, "Item stopped": "Not syncing"}

    log_in(page, live_server.url, owner)
    for view in ("month", "week"):
        page.goto(f"{live_server.url}/activities/calendar/?view={view}&date={monday.isoformat()}")
        calendar = page.locator("#calendar")
        for subject, word in all_words.items():
            item = calendar.get_by_role("link", name=re.compile(subject))
            item.scroll_into_view_if_needed()
            badge = item.locator(".badge")
            expect(badge).to_contain_text(word)
            assert badge.evaluate(WORD_SHOWN), f"{view}: {subject} does not show {word!r}"
            # No dash after the start time that could read as a range ("09:00 -").
            assert "\N{EN DASH}" not in badge.inner_text()
        squeezed = calendar.get_by_role("link", name=re.compile("Squeezed 0"))
        if view == "month":
            assert squeezed.locator(".badge").evaluate(WORD_SHOWN)
        else:
            assert not squeezed.locator(".badge").evaluate(WORD_SHOWN)
            glyph = squeezed.locator(".badge-glyph")
            expect(glyph).to_have_text("\N{RIGHTWARDS ARROW WITH HOOK}")
            assert _box(glyph)["width"] > 4
            expect(squeezed).to_have_accessible_name(
                re.compile(r"Squeezed 0 Skipped Google: owner@gmail\.test$")
            )
