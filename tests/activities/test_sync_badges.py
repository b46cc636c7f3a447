"""What the list, calendar, detail page and export say about sync (A7, A8, R9) and type colours (A2).

Issue #10: after "Stop sync" items said "Synced / <old account>"; they now say "Not syncing" and
name no account. Colours and positions come from stylesheet classes, never inline styles (CSP).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activities.models import ActivityType, SyncStatus, Visibility
from activities.type_colours import DEFAULT_KEY, PALETTE, colour_key
from calendarsync.actions import do_stop_sync
from calendarsync.models import CalendarAccount, Provider
from tests.activities.calendar_html import calendar_items
from tests.activities.conftest import berlin, bulk_timed, make_account, timed

LIST = reverse("activities:list")
CALENDAR = reverse("activities:calendar")
EXPORT = reverse("activities:export")

pytestmark = pytest.mark.usefixtures("frozen_now")


def row_of(html: str, subject: str) -> str:
    rows: list[str] = re.findall(r'<tr id="activity-\d+".*?</tr>', html, flags=re.S)
    for row in rows:
        if subject in row:
            return row
    raise AssertionError(f"no row for {subject!r}")


WHY_POPOVER = re.compile(r'<button type="button" class="why-button".*?</div>', re.S)


def cells(row: str) -> list[str]:
    """Each cell's text, tags and the "Why?" popover (D1, its own tests) stripped."""
    return [
        " ".join(re.sub(r"<[^>]+>", " ", WHY_POPOVER.sub("", cell)).split())
        for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
    ]


@pytest.fixture
def stopped_sync(owner):
    """An item synced with an account whose sync the owner then stopped (C6)."""
    account = make_account(owner, "owner@gmail.test")
    activity = timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Pipeline review",
        sync_status=SyncStatus.SYNCED,
        calendar_account=account,
    )
    do_stop_sync(acting_user=owner, account=account)
    return activity


# --- Stop sync: "Not syncing", no account ------------------------------------------------------------


def test_r9_after_stop_sync_the_list_says_not_syncing_and_names_no_account(owner_client, stopped_sync):
    html = owner_client.get(LIST).content.decode()
    row = row_of(html, "Pipeline review")
    status, account = cells(row)[7:9]
    assert status == "\N{CIRCLED DIVISION SLASH} Not syncing"
    assert account == "—"
    assert 'class="badge stopped" title="Not syncing: the calendar sync was stopped"' in row
    assert "owner@gmail.test" not in html


def test_r9_after_stop_sync_the_calendar_says_not_syncing_and_names_no_account(owner_client, stopped_sync):
    for view in ("week", "month"):
        html = owner_client.get(CALENDAR, {"view": view, "date": "2025-01-14"}).content.decode()
        [item] = calendar_items(html)
        assert item.accessible_text.endswith("Pipeline review Not syncing")
        assert item.images == []
        assert "owner@gmail.test" not in html


def test_r9_after_stop_sync_the_detail_page_and_export_say_not_syncing(owner_client, stopped_sync):
    html = owner_client.get(reverse("activities:detail", args=[stopped_sync.pk])).content.decode()
    assert "Not syncing" in html
    assert "owner@gmail.test" not in html
    [row] = list(csv.DictReader(io.StringIO(b"".join(owner_client.get(EXPORT).streaming_content).decode())))
    assert (row["Sync status"], row["Calendar account"]) == ("Not syncing", "")


def test_r9_after_reconnecting_only_items_synced_since_name_the_new_account(
    owner_client, owner, stopped_sync
):
    account = CalendarAccount.objects.create(user=owner, provider=Provider.MICROSOFT, email="owner@m365.test")
    timed(
        owner,
        berlin(2025, 1, 14, 11, 0),
        subject="Synced again",
        sync_status=SyncStatus.SYNCED,
        calendar_account=account,
    )
    html = owner_client.get(LIST).content.decode()
    assert cells(row_of(html, "Pipeline review"))[7:9] == ["\N{CIRCLED DIVISION SLASH} Not syncing", "—"]
    assert cells(row_of(html, "Synced again"))[7:9] == [
        "\N{CHECK MARK} Synced",
        "Microsoft 365: owner@m365.test",
    ]
    assert 'src="/static/img/provider-microsoft.svg"' in row_of(html, "Synced again")


# --- A8: every item shows status and account ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "glyph", "word"),
    [
        (SyncStatus.SYNCED, "\N{CHECK MARK}", "Synced"),
        (SyncStatus.PENDING, "\N{CLOCKWISE OPEN CIRCLE ARROW}", "Pending"),
        (SyncStatus.ERROR, "!", "Error"),
        (SyncStatus.SKIPPED, "\N{RIGHTWARDS ARROW WITH HOOK}", "Skipped"),
    ],
)
def test_a8_calendar_items_show_status_and_the_accounts_provider_icon(
    owner_client, owner, status, glyph, word
):
    account = CalendarAccount.objects.create(user=owner, provider=Provider.EXCHANGE, email="owner@ex.test")
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Call", sync_status=status, calendar_account=account)
    for view in ("week", "month"):
        html = owner_client.get(CALENDAR, {"view": view}).content.decode()
        [item] = calendar_items(html)
        assert item.sync_text == f"{glyph} {word}"
        assert item.images == ["/static/img/provider-exchange.svg"]
        assert item.accessible_text.endswith(f"Call {word} Microsoft Exchange: owner@ex.test")
        # The key under the calendar explains the glyphs.
        assert (
            f'<span class="badge-glyph" aria-hidden="true">{glyph}</span><span class="badge-text">{word}</span>'
            in (html.split('class="cal-legend"', 1)[1])
        )


def test_a8_items_never_synced_show_no_badge_and_no_key(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Local only")
    html = owner_client.get(CALENDAR).content.decode()
    [item] = calendar_items(html)
    assert (item.sync_text, item.images) == ("", [])
    assert "cal-legend" not in html


@pytest.mark.parametrize(
    "status", [SyncStatus.SYNCED, SyncStatus.SKIPPED, SyncStatus.ERROR, SyncStatus.PENDING]
)
def test_a6_a7_a8_a_colleagues_private_item_shows_no_sync_status_or_account(colleague_client, owner, status):
    """Skipped or Synced would tell whether its type is one the owner sends; the account is the owner's."""
    timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Secret",
        visibility=Visibility.OWNER,
        sync_status=status,
        sync_error="Event 'Secret' refused",
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    html = colleague_client.get(LIST, {"owner": "all"}).content.decode()
    row = row_of(html, "Private")
    assert cells(row)[7:9] == ["—", "—"]
    assert 'title="Private: only its owner sees its sync status"' in row
    assert 'class="badge' not in row
    for leak in ("owner@gmail.test", "provider-google", "Google", status.label, "refused", "Secret"):
        assert leak not in row
    for view in ("week", "month"):
        html = colleague_client.get(
            CALENDAR, {"owner": "all", "view": view, "date": "2025-01-14"}
        ).content.decode()
        [item] = calendar_items(html)
        assert item.text == "03:00 Private"  # 09:00 in Berlin, in the New York viewer's zone
        assert (item.sync_text, item.images) == ("", [])
        assert item.accessible_text == "03:00 \N{EN DASH} 03:30 Private"
        assert item.title == "Private · Owner"
        assert "cal-legend" not in html  # no item shows a status to explain
        for leak in ("owner@gmail.test", "provider-google", status.label, "refused", "Secret"):
            assert leak not in html


def test_a6_the_owner_still_sees_the_sync_status_of_their_private_item(owner_client, owner):
    timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Secret",
        visibility=Visibility.OWNER,
        sync_status=SyncStatus.SKIPPED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    row = row_of(owner_client.get(LIST).content.decode(), "Secret")
    assert cells(row)[7:9] == ["\N{RIGHTWARDS ARROW WITH HOOK} Skipped", "Google: owner@gmail.test"]
    [item] = calendar_items(
        owner_client.get(CALENDAR, {"view": "month", "date": "2025-01-14"}).content.decode()
    )
    assert item.sync_text == "\N{RIGHTWARDS ARROW WITH HOOK} Skipped"


# --- A2: type colours ----------------------------------------------------------------------------------


def test_a2_items_carry_their_types_colour_in_list_and_calendar(owner_client, owner):
    call = ActivityType.objects.get(company=owner.company, name="Call")
    call.color = "#1e9e44"
    call.save()
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Green call", type=call)
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Default meeting")
    html = owner_client.get(LIST).content.decode()
    assert '<span class="type-dot tc-green" aria-hidden="true"></span>Call' in row_of(html, "Green call")
    assert '<span class="type-dot tc-blue" aria-hidden="true"></span>Meeting' in row_of(
        html, "Default meeting"
    )
    for view in ("week", "month"):
        items = calendar_items(owner_client.get(CALENDAR, {"view": view}).content.decode())
        assert [(item.text, item.classes) for item in items] == [
            ("09:00 Green call", ["cal-item", "tc-green"]),
            ("11:00 Default meeting", ["cal-item", "tc-blue"]),
        ]


def test_a6_private_items_of_others_carry_no_type_colour(colleague_client, owner):
    call = ActivityType.objects.get(company=owner.company, name="Call")
    call.color = "#e03e3e"
    call.save()
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Secret", type=call, visibility=Visibility.OWNER)
    html = colleague_client.get(LIST, {"owner": "all"}).content.decode()
    assert "tc-red" not in html
    assert "type-dot" not in row_of(html, "Private")
    [item] = calendar_items(colleague_client.get(CALENDAR, {"owner": "all"}).content.decode())
    assert item.classes == ["cal-item", "tc-private"]


@pytest.mark.parametrize(
    ("colour", "key"),
    [
        ("#4f6bed", "blue"),
        ("#4F6BED", "blue"),
        ("#118833", "green"),
        ("#d00", "red"),
        ("#ff8800", "orange"),
        ("#7c3aed", "purple"),
        ("#999999", "grey"),
        ("not a colour", DEFAULT_KEY),
        ("", DEFAULT_KEY),
    ],
)
def test_a2_any_hex_colour_maps_to_the_nearest_palette_class(colour, key):
    assert colour_key(colour) == key


def test_a2_palette_colours_map_to_themselves():
    assert {colour_key(value) for value in PALETTE.values()} == set(PALETTE)


# --- CSP: no inline styles or scripts; constant queries --------------------------------------------


@pytest.mark.parametrize(
    ("url", "params"),
    [(LIST, {}), (CALENDAR, {"view": "week"}), (CALENDAR, {"view": "month"})],
)
def test_pages_carry_no_inline_style_or_script(owner_client, owner, url, params):
    timed(
        owner,
        berlin(2025, 1, 14, 9, 0),
        subject="Call",
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner),
    )
    html = owner_client.get(url, params).content.decode()
    assert "style=" not in html
    assert "<style" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))


def _queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (LIST, {"owner": "all"}),
        (CALENDAR, {"view": "week", "date": "2025-01-14", "owner": "all"}),
        (CALENDAR, {"view": "month", "date": "2025-01-14", "owner": "all"}),
    ],
)
def test_a7_a8_badges_and_colours_cost_no_query_per_item(owner_client, owner, colleague, url, params):
    active = make_account(owner)
    stopped = CalendarAccount.objects.create(
        user=colleague, provider=Provider.MICROSOFT, email="c@m365.test", stopped_at=berlin(2025, 1, 10)
    )
    start = berlin(2025, 1, 14, 8, 0)
    bulk_timed(owner, [start], sync_status=SyncStatus.SYNCED, calendar_account=active)
    owner_client.get(url, params)  # warm up the session
    few = _queries(owner_client, url, params)
    bulk_timed(
        owner,
        [start + dt.timedelta(minutes=20 * index) for index in range(40)],
        sync_status=SyncStatus.PENDING,
        calendar_account=active,
    )
    bulk_timed(
        colleague,
        [start + dt.timedelta(minutes=25 * index) for index in range(40)],
        sync_status=SyncStatus.SYNCED,
        calendar_account=stopped,
        type=ActivityType.objects.get(company=owner.company, name="Lunch"),
    )
    assert _queries(owner_client, url, params) == few
