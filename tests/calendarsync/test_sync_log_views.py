"""D2: Personal Preferences > Calendar Sync > Sync log, the account's recent runs in plain words.

Every line reads "<title>: <explanation>", the words coming from ``explain`` (never from the page);
the owner alone sees it; it searches by title, pages by 20 runs, keeps its query count constant.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.actions import do_start_sync, do_stop_sync
from calendarsync.models import CalendarAccount, SyncRun, SyncRunEntry
from calendarsync.sync.explain import explain
from calendarsync.sync.reasons import Reason
from calendarsync.views_log import ENTRIES_PER_RUN, RUNS_PER_PAGE
from tests.calendarsync.support import HTMX, connect_account
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
IN, OUT = SyncRunEntry.Direction.IN, SyncRunEntry.Direction.OUT
Action = SyncRunEntry.Action


def text(html: str) -> str:
    """The page's words, as a reader sees them (tags dropped, whitespace collapsed)."""
    inline = re.sub(r"</?(?:mark|a)\b[^>]*>", "", html)  # a marked or linked title reads as one word
    return " ".join(re.sub(r"<[^>]+>", " ", inline).replace("&#x27;", "'").split()).replace(" :", ":")


def log_url(account: CalendarAccount) -> str:
    return reverse("calendarsync:sync_log", args=[account.pk])


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    account.refresh_from_db()
    return account


def make_run(
    account: CalendarAccount,
    started_at: dt.datetime = NOW,
    *,
    outcome: SyncRun.Outcome = SyncRun.Outcome.OK,
    counts: dict[str, Any] | None = None,
    entries: Sequence[dict[str, Any]] = (),
    full_sync: bool = False,
    error: str = "",
) -> SyncRun:
    run = SyncRun.objects.create(
        account=account,
        started_at=started_at,
        finished_at=started_at + dt.timedelta(seconds=4),
        outcome=outcome,
        full_sync=full_sync,
        counts=counts or {},
        error=error,
    )
    SyncRunEntry.objects.bulk_create(SyncRunEntry(run=run, **entry) for entry in entries)
    return run


def entry(direction: str, action: str, code: Reason, title: str, **extra: Any) -> dict[str, Any]:
    return {"direction": direction, "action": action, "code": code.value, "title": title, **extra}


def said(entry_fields: dict[str, Any], account: CalendarAccount) -> str:
    """What the log must say for an entry: its title and ``explain``'s message, nothing of our own."""
    explanation = explain(SyncRunEntry(**entry_fields), account, None, None, NOW)
    assert explanation is not None
    return f"{entry_fields['title']}: {explanation.message}"


def groups(html: str) -> dict[str, str]:
    """Each group of a run's lines by its class (came-in, went-out, not-synced), as text."""
    found = re.findall(r'<section class="run-group ([\w-]+)">(.*?)</section>', html, flags=re.S)
    return {name: text(body) for name, body in found}


def test_d2_the_owner_sees_what_came_in_went_out_and_was_skipped_or_failed_with_why(
    owner_client: Client, account: CalendarAccount, owner: User
) -> None:
    lunch = make_activity(owner, subject="Lunch with Ann")
    came_in = entry(IN, Action.CREATED, Reason.IMPORTED, "Lunch with Ann", activity=lunch)
    went_out = entry(OUT, Action.UPDATED, Reason.SENT_UPDATE, "Pricing call")
    skipped = entry(IN, Action.SKIPPED, Reason.PRIVATE_EVENT, "Doctor")
    failed = entry(
        OUT,
        Action.FAILED,
        Reason.REFUSED,
        "Board meeting",
        detail="Google refused the change (forbiddenForNonOrganizer)",
    )
    make_run(
        account,
        counts={"pulled": {"created": 1, "skipped": 1}, "pushed": {"updated": 1, "errors": [{"item": "x"}]}},
        entries=[came_in, went_out, skipped, failed],
    )

    response = owner_client.get(log_url(account))

    assert response.status_code == 200
    html = response.content.decode()
    by_group = groups(html)
    assert said(came_in, account) in by_group["came-in"]
    assert said(went_out, account) in by_group["went-out"]
    assert said(skipped, account) in by_group["not-synced"]
    assert said(failed, account) in by_group["not-synced"]
    # The issue's own example, word for word.
    assert "Doctor: private event, your setting is Don't sync" in by_group["not-synced"]
    # The failure's hint (what the calendar said, when it is sent again) shows under it.
    refused = explain(SyncRunEntry(**failed), account, None, None, NOW)
    assert refused is not None
    assert refused.hint
    assert text(refused.hint) in by_group["not-synced"]
    # A line whose activity still exists links to it; the counts sum the run up.
    assert f'href="{reverse("activities:detail", args=[lunch.pk])}"' in html
    assert "Came in: 1 created · Went out: 1 updated · 1 skipped · 1 failed" in text(html)


def test_d2_runs_show_newest_first_with_start_time_in_the_users_zone_outcome_and_full_sync(
    owner_client: Client, account: CalendarAccount
) -> None:
    make_run(
        account, NOW - dt.timedelta(hours=2), entries=[entry(IN, Action.CREATED, Reason.IMPORTED, "Older")]
    )
    make_run(
        account,
        NOW,
        outcome=SyncRun.Outcome.RETRY,
        full_sync=True,
        error="Google did not answer",
        entries=[entry(OUT, Action.CREATED, Reason.SENT, "Newer")],
    )

    page = text(owner_client.get(log_url(account)).content.decode())

    assert page.index("Newer") < page.index("Older")
    # 09:00 UTC is 10:00 in Berlin (the owner's zone); 07:00 UTC is 08:00.
    assert "Mon, Mar 10, 2025 10:00:00 CET Failed, will retry Full sync: the whole calendar was read" in page
    assert "Mon, Mar 10, 2025 08:00:00 CET Completed Changes since the sync before" in page
    assert "Google did not answer" in page
    assert "Times are in your time zone (Europe/Berlin)" in page


def test_d2_a_run_from_before_the_log_had_entries_still_shows_its_counts(
    owner_client: Client, account: CalendarAccount
) -> None:
    make_run(
        account,
        counts={
            "pulled": {"created": 2, "updated": 0, "deleted": 1, "skipped": 0, "errors": []},
            "pushed": {"created": 0, "updated": 3, "deleted": 0, "skipped": 4, "errors": []},
        },
    )

    page = text(owner_client.get(log_url(account)).content.decode())

    assert "Came in: 2 created, 1 deleted · Went out: 3 updated · 4 skipped" in page
    assert "items were not recorded one by one" in page


@pytest.mark.parametrize("who", ["colleague_client", "outsider_client"])
def test_d2_another_users_log_is_not_found(
    request: pytest.FixtureRequest, who: str, account: CalendarAccount
) -> None:
    make_run(account, entries=[entry(IN, Action.SKIPPED, Reason.PRIVATE_EVENT, "Doctor")])
    client: Client = request.getfixturevalue(who)

    response = client.get(log_url(account))

    assert response.status_code == 404
    assert b"Doctor" not in response.content


def test_d2_signed_out_visitors_are_sent_to_log_in(account: CalendarAccount) -> None:
    response = Client().get(log_url(account))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_d2_a_disconnected_accounts_log_is_not_found(
    owner_client: Client, account: CalendarAccount, owner: User
) -> None:
    do_stop_sync(acting_user=owner, account=account)

    assert owner_client.get(log_url(account)).status_code == 404


def test_d2_search_keeps_runs_with_a_matching_title_and_only_those_lines_marked(
    owner_client: Client, account: CalendarAccount
) -> None:
    make_run(
        account,
        NOW,
        entries=[
            entry(IN, Action.SKIPPED, Reason.PRIVATE_EVENT, "Doctor"),
            entry(OUT, Action.CREATED, Reason.SENT, "Pricing call"),
        ],
    )
    make_run(
        account, NOW - dt.timedelta(hours=1), entries=[entry(OUT, Action.CREATED, Reason.SENT, "Budget")]
    )

    response = owner_client.get(log_url(account), {"q": "DOC"})

    html = response.content.decode()
    page = text(html)
    assert "1 run with items matching “DOC”" in page
    assert "<mark>Doc</mark>tor" in html
    assert "Doctor: private event" in page
    assert "Pricing call" not in page  # the matching run shows its matching lines only
    assert "Budget" not in page  # a run without a match is left out
    assert 'value="DOC"' in html


def test_d2_a_search_that_matches_nothing_says_so(owner_client: Client, account: CalendarAccount) -> None:
    make_run(account, entries=[entry(OUT, Action.CREATED, Reason.SENT, "Budget")])

    page = text(owner_client.get(log_url(account), {"q": "dentist"}).content.decode())

    assert "No runs match “dentist”." in page
    assert "Show all runs" in page


def test_d2_without_runs_the_page_says_none_yet_and_how_runs_come(
    owner_client: Client, account: CalendarAccount
) -> None:
    page = text(owner_client.get(log_url(account)).content.decode())

    assert "No sync runs yet." in page
    assert "Syncs that find nothing to change are not listed" in page


def test_d2_the_page_says_how_long_runs_are_kept(
    owner_client: Client, account: CalendarAccount, settings: Settings
) -> None:
    settings.CALSYNC_SYNC_RUN_RETENTION_DAYS = 7

    assert "Runs are kept for 7 days." in text(owner_client.get(log_url(account)).content.decode())


def test_d2_pages_of_20_runs_with_links_that_keep_the_search(
    owner_client: Client, account: CalendarAccount
) -> None:
    for n in range(RUNS_PER_PAGE + 5):
        make_run(
            account,
            NOW - dt.timedelta(minutes=n),
            entries=[entry(IN, Action.CREATED, Reason.IMPORTED, f"Demo {n}")],
        )

    first = owner_client.get(log_url(account), {"q": "demo"}).content.decode()
    second = owner_client.get(log_url(account), {"q": "demo", "page": "2"}).content.decode()

    assert first.count('class="sync-run"') == RUNS_PER_PAGE
    assert "Page 1 of 2" in text(first)
    assert f'href="{log_url(account)}?q=demo&amp;page=2"' in first
    assert second.count('class="sync-run"') == 5
    assert f'href="{log_url(account)}?q=demo&amp;page=1"' in second
    assert "Demo 24:" in text(second)


@pytest.mark.parametrize(
    "params",
    [{"page": "abc"}, {"page": "-1"}, {"page": "99999999999999999999"}, {"q": "a\x00b"}, {"q": "x" * 5000}],
)
def test_d2_garbage_pages_and_searches_never_give_an_error(
    owner_client: Client, account: CalendarAccount, params: dict[str, str]
) -> None:
    make_run(account, entries=[entry(OUT, Action.CREATED, Reason.SENT, "Budget")])

    assert owner_client.get(log_url(account), params).status_code == 200


def test_d2_a_run_lists_at_most_its_first_entries_and_says_how_many_more(
    owner_client: Client, account: CalendarAccount
) -> None:
    make_run(
        account,
        entries=[
            entry(IN, Action.CREATED, Reason.IMPORTED, f"Event {n}") for n in range(ENTRIES_PER_RUN + 3)
        ],
    )

    page = text(owner_client.get(log_url(account)).content.decode())

    assert page.count("imported as an activity") == ENTRIES_PER_RUN
    assert "3 more items not listed here: search by title to find one." in page


@pytest.mark.parametrize("query", ["", "event"])
def test_d2_the_log_costs_the_same_queries_for_many_runs_and_entries_as_for_few(
    owner_client: Client, account: CalendarAccount, django_assert_max_num_queries: Any, query: str
) -> None:
    def add_runs(count: int, entries_each: int) -> None:
        for n in range(count):
            make_run(
                account,
                NOW - dt.timedelta(minutes=n),
                entries=[
                    entry(IN if i % 2 else OUT, Action.CREATED, Reason.SENT, f"Event {n}.{i}")
                    for i in range(entries_each)
                ],
            )

    add_runs(2, 2)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get(log_url(account), {"q": query}).status_code == 200
    SyncRun.objects.all().delete()
    add_runs(RUNS_PER_PAGE + 10, 8)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = owner_client.get(log_url(account), {"q": query})

    assert response.content.decode().count('class="sync-run"') == RUNS_PER_PAGE


def test_d2_htmx_gets_the_runs_fragment_alone(owner_client: Client, account: CalendarAccount) -> None:
    make_run(account, entries=[entry(IN, Action.SKIPPED, Reason.PRIVATE_EVENT, "Doctor")])

    response = owner_client.get(log_url(account), {"q": "doc"}, headers=HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="sync-log-runs"')
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]
    assert 'data-announce="1 run with items matching “doc”."' in html


def test_d2_the_calendar_sync_page_and_the_preferences_menu_lead_to_the_log(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(reverse("calendarsync:page")).content.decode()

    assert f'href="{log_url(account)}" id="sync-log-link"' in html
    assert f'href="{log_url(account)}" id="nav-sync-log"' in html
    log = owner_client.get(log_url(account)).content.decode()
    assert re.search(r'id="nav-sync-log"\s+aria-current="page"', log)


def test_d1_the_calendar_sync_page_says_what_to_do_when_something_did_not_sync(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(reverse("calendarsync:page")).content.decode()
    helped = re.search(r'<details class="sync-help" id="sync-help">(.*?)</details>', html, flags=re.S)

    assert helped is not None
    help_text = text(helped[1])
    assert "Something didn't sync?" in help_text
    assert "Open the activity." in help_text
    assert f'href="{log_url(account)}"' in helped[1]
    for cause in (
        "One-way sync",
        "Created before you started the sync",
        "In the past",
        "Type not selected",
        "Private events",
        "Needs reconnect",
    ):
        assert cause in help_text
    for option in ("#option-sync_type", "#option-outgoing_types", "#option-private_events"):
        assert f'href="{option}"' in helped[1]
        assert f'id="{option[1:]}"' in html  # the link leads to the option on the same page


def test_d2_times_follow_the_users_own_zone(
    owner_client: Client, account: CalendarAccount, owner: User
) -> None:
    owner.time_zone = "America/Los_Angeles"
    owner.save(update_fields=["time_zone"])
    make_run(account, NOW, entries=[entry(OUT, Action.CREATED, Reason.SENT, "Call")])

    page = text(owner_client.get(log_url(account)).content.decode())

    assert "Mon, Mar 10, 2025 02:00:00 PDT" in page
