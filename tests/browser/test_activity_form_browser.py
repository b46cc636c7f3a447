"""A real browser fills in the activity form by keyboard alone, under a CSP without 'unsafe-inline' (A3, A5)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Route, expect

from accounts.models import User
from activities.models import Activity, Visibility
from tests.activities.conftest import make_deal, make_person
from tests.browser.conftest import log_in
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the coming Content-Security-Policy allows: our own files only, nothing inline, no eval.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"
)


@pytest.fixture(autouse=True, scope="module")
def _allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's session-wide event loop runs in this thread during the database set-up."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def serve_form_with_strict_csp(page: Page, path: str = r"/activities/new/") -> list[str]:
    """Add the strict CSP to the form page; collect console errors (CSP violations are logged there)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def with_csp(route: Route) -> None:
        response = route.fetch(max_redirects=0)  # after saving, the list page is not ours to judge
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(re.compile(path), with_csp)
    return errors


def test_a3_a5_create_an_activity_by_keyboard_and_see_it_on_the_detail_page(
    live_server: Any, owner: User, colleague: User, page: Page
) -> None:
    buyer = make_person(owner, "Pat Buyer")
    buyer.email = "pat@buyer.test"
    buyer.save()
    make_person(owner, "Patricia Other")
    make_deal(owner, "Initech renewal")
    make_deal(owner, "Umbrella expansion")
    make_deal(colleague, "Hush-hush renewal", visibility=Visibility.OWNER)  # A6: never offered
    day = timezone.now().astimezone(owner.tzinfo).date() + dt.timedelta(days=3)
    errors = serve_form_with_strict_csp(page)

    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/new/")
    # The policy is in force: an inline script is refused (and says so on the console).
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1'; document.head.append(s); }"
    )
    assert page.evaluate("() => window.inlineRan === undefined")
    assert any("Content Security Policy" in error for error in errors)
    errors.clear()
    keyboard = page.keyboard

    page.get_by_label("Subject").focus()
    keyboard.type("Kick-off with Initech")

    # Date and time: the native pickers, typed segment by segment (en-US: mm dd yyyy, hh mm AM/PM).
    page.get_by_label("Date", exact=True).focus()
    keyboard.type(day.strftime("%m%d%Y"))
    expect(page.get_by_label("Date", exact=True)).to_have_value(day.isoformat())
    expect(page.get_by_label("Last day")).to_be_hidden()  # not all day: the timed fields show
    page.get_by_label("Start time").focus()
    keyboard.type("0930AM")
    expect(page.get_by_label("Start time")).to_have_value("09:30")

    # Duration presets are a radio group: Tab leaves the time field (Chromium first tabs through
    # its hour, minute and AM/PM parts) and lands on the checked preset; arrows move on.
    expect(page.get_by_label("End time")).to_be_hidden()
    for _ in range(4):
        keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "duration_preset":
            break
    expect(page.get_by_role("radio", name="30 min")).to_be_focused()
    keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="1 h")).to_be_checked()

    # Participant: search, arrow down, Enter.
    participants = page.get_by_role("combobox", name="Participants")
    participants.focus()
    keyboard.type("pat")
    listbox = page.locator("#participants-listbox")
    expect(listbox.get_by_role("option")).to_have_count(2)
    expect(participants).to_have_attribute("aria-expanded", "true")
    keyboard.press("ArrowDown")
    expect(participants).to_have_attribute("aria-activedescendant", re.compile(r"participants-option-\d+"))
    expect(listbox.get_by_role("option", name=re.compile("Pat Buyer"))).to_have_attribute(
        "aria-selected", "true"
    )
    keyboard.press("Enter")
    chips = page.locator("#participants-chips")
    expect(chips.locator(".chip")).to_have_count(1)
    expect(chips).to_contain_text("Pat Buyer")
    expect(participants).to_have_value("")
    expect(participants).to_have_attribute("aria-expanded", "false")
    expect(participants).to_be_focused()

    # Deal: a colleague's private deal is not offered (A6); pick ours.
    deal = page.get_by_role("combobox", name="Deal")
    deal.focus()
    keyboard.type("renewal")
    deal_options = page.locator("#deal-listbox").get_by_role("option")
    expect(deal_options).to_have_count(1)
    expect(deal_options).to_have_text("Initech renewal")
    keyboard.press("ArrowDown")
    keyboard.press("Enter")
    expect(page.locator("#deal-chips")).to_contain_text("Initech renewal")

    # Guests: two addresses become chips, an invalid one is refused with a message.
    guests = page.get_by_role("textbox", name="Guests")
    guests.focus()
    keyboard.type("ann@example.com")
    keyboard.press("Enter")
    keyboard.type("bob@example.com,")
    keyboard.type("ANN@example.com")
    keyboard.press("Enter")
    expect(page.locator("#id_guests_message")).to_have_text("ANN@example.com is already a guest.")
    keyboard.type("not-an-address")
    keyboard.press("Enter")
    expect(page.locator("#id_guests_message")).to_have_text("“not-an-address” is not a valid e-mail address.")
    expect(guests).to_have_attribute("aria-invalid", "true")
    expect(guests).to_have_value("not-an-address")
    guest_chips = page.locator("[data-guests] .chip")
    expect(guest_chips).to_have_count(2)
    keyboard.press("Escape")
    expect(guests).to_have_value("")

    page.get_by_role("button", name="Save activity").focus()
    keyboard.press("Enter")
    expect(page.get_by_text("Activity saved.")).to_be_visible()

    activity = Activity.objects.get(subject="Kick-off with Initech")
    assert activity.start_at == dt.datetime.combine(day, dt.time(9, 30), tzinfo=owner.tzinfo)
    assert activity.duration == dt.timedelta(hours=1)
    assert activity.guests == ["ann@example.com", "bob@example.com"]

    page.get_by_role("link", name="Kick-off with Initech", exact=True).click()
    details = page.locator(".activity-detail")
    expect(details.get_by_role("heading", name="Kick-off with Initech")).to_be_visible()
    expect(details).to_contain_text(f"{day:%A} {day.day} {day:%B %Y}, 09:30")
    expect(details).to_contain_text("(1 h)")
    expect(details).to_contain_text("Initech renewal")
    expect(details).to_contain_text("Pat Buyer")
    expect(details.locator("#guest-answers li")).to_have_text(["ann@example.com", "bob@example.com"])
    assert errors == []


def test_a3_edit_a_multi_day_all_day_activity_and_remove_a_participant_by_keyboard(
    live_server: Any, owner: User, page: Page
) -> None:
    first_day = timezone.now().astimezone(owner.tzinfo).date() + dt.timedelta(days=7)
    pat, sam = make_person(owner, "Pat Buyer"), make_person(owner, "Sam Seller")
    activity = make_activity(
        owner, subject="Trade fair", start_at=None, due_date=first_day, duration=dt.timedelta(days=3)
    )
    activity.participants.set([pat, sam])
    errors = serve_form_with_strict_csp(page, path=rf"/activities/{activity.pk}/edit/")

    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/{activity.pk}/edit/")
    expect(page.get_by_label("All day")).to_be_checked()
    expect(page.get_by_label("Start time")).to_be_hidden()
    expect(page.get_by_label("Last day")).to_have_value((first_day + dt.timedelta(days=2)).isoformat())

    chips = page.locator("#participants-chips .chip")
    expect(chips).to_have_count(2)
    expect(chips.locator("input[type=hidden]")).to_have_count(2)  # chips, no longer checkboxes
    page.get_by_role("combobox", name="Participants").focus()
    page.keyboard.press("Backspace")
    expect(chips).to_have_count(1)
    expect(page.locator("#participants-chips")).to_contain_text("Pat Buyer")
    # The remove button of a chip works by keyboard too.
    page.get_by_role("button", name="Remove Pat Buyer").focus()
    page.keyboard.press("Enter")
    expect(chips).to_have_count(0)
    expect(page.get_by_role("combobox", name="Participants")).to_be_focused()

    # Unticking "All day" shows the time fields; ticking it again hides them.
    page.get_by_label("All day").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Start time")).to_be_visible()
    expect(page.get_by_label("Last day")).to_be_hidden()
    page.keyboard.press("Space")
    expect(page.get_by_label("Last day")).to_be_visible()

    page.get_by_role("button", name="Save activity").click()
    expect(page.get_by_text("Activity saved.")).to_be_visible()
    activity.refresh_from_db()
    assert (activity.start_at, activity.due_date) == (None, first_day)
    assert activity.duration == dt.timedelta(days=3)
    assert list(activity.participants.all()) == []
    assert errors == []


def test_a3_guests_the_server_refuses_come_back_as_invalid_chips(
    live_server: Any, owner: User, page: Page
) -> None:
    errors = serve_form_with_strict_csp(page)
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/new/")
    page.get_by_label("Subject").fill("Guests check")
    day = timezone.now().astimezone(owner.tzinfo).date() + dt.timedelta(days=3)
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    guests = page.get_by_role("textbox", name="Guests")
    guests.focus()
    keyboard = page.keyboard

    # The browser now applies Django's rules for the common cases: a doubled dot is refused at once.
    keyboard.type("a..b@example.com")
    keyboard.press("Enter")
    expect(page.locator("#id_guests_message")).to_have_text(
        "“a..b@example.com” is not a valid e-mail address."
    )
    for address in (".ab@example.com", "ab.@example.com"):
        guests.fill(address)
        keyboard.press("Enter")
        expect(page.locator("#id_guests_message")).to_have_text(f"“{address}” is not a valid e-mail address.")
    guests.fill("")

    # An address literal looks right to the browser; only the server checks the IP address.
    keyboard.type("ann@example.com")
    keyboard.press("Enter")
    keyboard.type("x@[999.1.1.1]")
    keyboard.press("Enter")
    chips = page.locator("[data-guests] .chip")
    expect(chips).to_have_count(2)
    expect(page.locator("[data-guests] .chip.is-invalid")).to_have_count(0)
    page.get_by_role("button", name="Save activity").click()

    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("[data-guests]")).to_contain_text("“x@[999.1.1.1]” is not a valid e-mail address.")
    expect(chips).to_have_count(2)
    refused = page.locator("[data-guests] .chip.is-invalid")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("x@[999.1.1.1]")
    expect(refused).to_contain_text("not a valid address")
    expect(refused.get_by_role("button", name="Remove x@[999.1.1.1]")).to_be_visible()
    expect(page.locator("[data-guests] .chip:not(.is-invalid)")).to_have_text(re.compile("ann@example.com"))

    # Removing the refused chip is enough to save.
    refused.get_by_role("button", name="Remove x@[999.1.1.1]").click()
    page.get_by_role("button", name="Save activity").click()
    expect(page.get_by_text("Activity saved.")).to_be_visible()
    assert Activity.objects.get(subject="Guests check").guests == ["ann@example.com"]
    assert errors == []
