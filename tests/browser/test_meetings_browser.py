"""Meetings shared with colleagues, in a real browser (M1, M2, M4): both colleagues see the
meeting as theirs, each guest's answer shows, and a video call is asked for and joined."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from activities.models import Activity
from calendarsync.models import EventLink, Provider
from tests.browser.conftest import log_in
from tests.calendarsync.sync.conftest import SYNC_SETUPS, SyncEnv, soon
from tests.calendarsync.sync.second_account import second_env
from tests.conftest import make_activity, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True, scope="module")
def _allow_orm_beside_playwright() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def log_out(page: Page, base_url: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/accounts/login/")


def test_m1_m2_a_shared_meeting_is_under_me_for_both_colleagues_with_each_answer(
    live_server: Any, owner: User, page: Page, request: pytest.FixtureRequest
) -> None:
    bob = make_user(owner.company, "bob@acme.test", time_zone="Europe/Berlin", last_name="Jones")
    alice = SyncEnv(SYNC_SETUPS[Provider.GOOGLE](request), owner)
    bob_env = second_env(alice, request, bob)
    for env in (alice, bob_env):
        env.start()
        env.sync()
    meeting = make_activity(
        owner,
        subject="Pricing call",
        start_at=soon(2, 10),
        guests=[bob_env.setup.email, "buyer@partner.test"],
    )
    alice.sync()
    bob_env.sync()
    copy = EventLink.objects.get(account=bob_env.account)
    bob_env.control.respond(copy.external_id, "accepted")
    alice.sync()
    assert Activity.objects.filter(subject="Pricing call").count() == 1

    # Bob: his list ("Me", the default) and his week show Alice's meeting.
    log_in(page, live_server.url, bob)
    expect(page.get_by_role("link", name="Pricing call", exact=True)).to_be_visible()
    day = meeting.start_at.astimezone(bob.tzinfo).date() if meeting.start_at else timezone.now().date()
    page.goto(f"{live_server.url}/activities/calendar/?view=week&date={day.isoformat()}")
    expect(page.locator("#calendar").get_by_role("link", name=re.compile("Pricing call"))).to_be_visible()
    page.locator("#calendar").get_by_role("link", name=re.compile("Pricing call")).click()
    expect(page.get_by_role("heading", name="Pricing call")).to_be_visible()
    expect(page.locator("#attending-users")).to_have_text(re.compile("Bob"))
    answers = page.locator("#guest-answers")
    expect(answers.get_by_role("listitem").filter(has_text=bob_env.setup.email)).to_contain_text("Accepted")
    expect(answers.get_by_role("listitem").filter(has_text="buyer@partner.test")).to_contain_text(
        "No answer yet"
    )
    # Only the owner edits it.
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)

    # Alice sees it as hers too.
    log_out(page, live_server.url)
    log_in(page, live_server.url, owner)
    expect(page.get_by_role("link", name="Pricing call", exact=True)).to_be_visible()


def test_m4_add_a_video_call_on_the_form_and_join_it_from_the_activity(
    live_server: Any, owner: User, page: Page, request: pytest.FixtureRequest
) -> None:
    alice = SyncEnv(SYNC_SETUPS[Provider.GOOGLE](request), owner)
    alice.start()
    alice.sync()
    day = timezone.now().astimezone(owner.tzinfo).date() + dt.timedelta(days=2)

    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/new/")
    page.get_by_label("Subject").fill("Demo for Initech")
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    page.get_by_label("Start time").fill("11:00")
    video = page.get_by_label("Add a video call")
    expect(video).to_be_visible()
    expect(page.get_by_text("Google Meet: the join link appears here")).to_be_visible()
    video.focus()
    page.keyboard.press("Space")
    expect(video).to_be_checked()
    page.get_by_role("button", name=re.compile("Save|Create")).click()
    page.wait_for_url(re.compile(r"/activities/"))
    activity = Activity.objects.get(subject="Demo for Initech")
    assert activity.video_call

    for _ in range(3):  # Google makes the conference a moment after the create
        alice.sync()
        activity.refresh_from_db()
        if activity.join_url:
            break
    assert activity.join_url.startswith("https://meet.google.com/")

    page.goto(f"{live_server.url}/activities/{activity.pk}/")
    join = page.get_by_role("link", name="Join the video call")
    expect(join).to_have_attribute("href", activity.join_url)
    page.goto(f"{live_server.url}/activities/")
    expect(
        page.get_by_role("link", name=re.compile("Join the video call of Demo for Initech"))
    ).to_have_attribute("href", activity.join_url)
    page.goto(f"{live_server.url}/activities/calendar/?view=week&date={day.isoformat()}")
    expect(
        page.locator("#calendar").get_by_role("link", name=re.compile("Demo for Initech.*Video call"))
    ).to_be_visible()


def test_m4_exchange_hides_the_video_call_and_says_why(
    live_server: Any, owner: User, page: Page, request: pytest.FixtureRequest
) -> None:
    SyncEnv(SYNC_SETUPS[Provider.EXCHANGE](request), owner)
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/activities/new/")
    expect(page.locator("#video-call-note")).to_have_text(
        "Your Microsoft Exchange calendar cannot add video calls to events."
    )
    expect(page.get_by_label("Add a video call")).to_have_count(0)
