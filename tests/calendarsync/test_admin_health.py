"""The admin's sync health: the health page, the index counts, "Sync now" (R9, R16, A1) and a run's
log entries on its admin page (D1, D2) with other users' private items hidden (A5, A6)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, Deal, Visibility
from calendarsync.admin_health import short_age
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    ItemFailure,
    Provider,
    RemoteCalendar,
    SyncPreferences,
    SyncRun,
    SyncRunEntry,
)
from tests.activities.test_admin import grant_admin_permissions, logged_in
from tests.conftest import PASSWORD, make_activity, make_user

pytestmark = pytest.mark.django_db

HEALTH = "admin:calendarsync_calendaraccount_health"
CHANGELIST = "admin:calendarsync_calendaraccount_changelist"
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def superuser_client() -> Client:
    return logged_in(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))


@pytest.fixture
def company_admin(company: Company) -> User:
    return grant_admin_permissions(make_user(company, "boss@acme.test"))


@pytest.fixture
def company_admin_client(company_admin: User) -> Client:
    return logged_in(company_admin)


def connect(
    company: Company,
    name: str,
    provider: str = Provider.GOOGLE,
    *,
    state: str = AccountState.ACTIVE,
    started: bool = True,
    stopped: bool = False,
    synced_ago: dt.timedelta | None = HOUR,
    started_ago: dt.timedelta = 10 * DAY,
) -> CalendarAccount:
    """A user of ``company`` with a connected account: started (with a calendar) or not, maybe stopped."""
    now = timezone.now()
    user = make_user(company, f"{name}@{company.name.split()[0].lower()}.test")
    account = CalendarAccount.objects.create(
        user=user,
        provider=provider,
        email=f"{name}@{provider}.test",
        state=state,
        credentials={"refresh_token": "x"},
        last_synced_at=now - synced_ago if synced_ago is not None else None,
        stopped_at=now if stopped else None,
    )
    calendar = RemoteCalendar.objects.create(
        account=account, external_id="primary", name="Main", is_primary=True
    )
    if started:
        SyncPreferences.objects.create(
            account=account,
            calendar=calendar,
            sync_started_at=now - started_ago,
            sync_stopped_at=now if stopped else None,
        )
    return account


def refuse(account: CalendarAccount, external_id: str, failing_for: dt.timedelta) -> ItemFailure:
    now = timezone.now()
    return ItemFailure.objects.create(
        account=account,
        external_id=external_id,
        reason="The calendar refused the change (HTTP 403)",
        first_failed_at=now - failing_for,
        failed_at=now,
        retry_at=now + HOUR,
    )


def html_of(client: Client, url: str, **params: str) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def health_rows(client: Client) -> dict[str, Any]:
    """The health page's account rows by e-mail address."""
    response = client.get(reverse(HEALTH))
    assert response.status_code == 200
    return {row.account.email: row for row in response.context["rows"]}


def grid_of(client: Client) -> dict[str, list[int]]:
    """The health page's state-by-provider counts: state label -> [Google, Microsoft 365, Exchange, total]."""
    grid = client.get(reverse(HEALTH)).context["grid"]
    assert grid.providers == ("Google", "Microsoft 365", "Microsoft Exchange")
    return {row.label: [cell.count for cell in row.cells] for row in grid.rows}


def changelist_emails(client: Client, url: str) -> set[str]:
    html = html_of(client, url)
    return set(re.findall(r"[\w.]+@(?:google|microsoft|exchange)\.test", html))


# --- The health page ---------------------------------------------------------------------------


def test_r9_health_page_counts_accounts_by_state_and_provider(
    superuser_client: Client, company: Company
) -> None:
    connect(company, "ann")
    connect(company, "ben")
    connect(company, "cat", Provider.MICROSOFT, state=AccountState.NEEDS_RECONNECT)
    connect(company, "dan", Provider.EXCHANGE, state=AccountState.ERROR)
    connect(company, "eve", Provider.MICROSOFT, state=AccountState.INSUFFICIENT_PERMISSIONS)
    connect(company, "fay", stopped=True)

    grid = grid_of(superuser_client)

    assert grid["Active"] == [2, 0, 0, 2]
    assert grid["Needs reconnect"] == [0, 1, 0, 1]
    assert grid["Insufficient permissions"] == [0, 1, 0, 1]
    assert grid["Error"] == [0, 0, 1, 1]
    assert grid["Syncing"] == [0, 0, 0, 0]
    assert grid["Disconnected"] == [1, 0, 0, 1]
    html = html_of(superuser_client, reverse(HEALTH))
    assert "ann@google.test" in html
    assert "dan@exchange.test" in html
    assert "fay@google.test" not in html  # disconnected accounts are counted, not listed


def test_r9_health_grid_cells_link_to_the_matching_accounts(
    superuser_client: Client, company: Company
) -> None:
    connect(company, "ann")
    connect(company, "cat", Provider.MICROSOFT, state=AccountState.NEEDS_RECONNECT)
    connect(company, "fay", Provider.MICROSOFT, state=AccountState.NEEDS_RECONNECT, stopped=True)
    grid = superuser_client.get(reverse(HEALTH)).context["grid"]
    reconnect = next(row for row in grid.rows if row.label == "Needs reconnect")

    assert changelist_emails(superuser_client, reconnect.cells[1].url) == {"cat@microsoft.test"}
    assert changelist_emails(superuser_client, reconnect.cells[-1].url) == {"cat@microsoft.test"}


def test_r16_health_page_shows_each_accounts_refused_items_and_the_oldest(
    superuser_client: Client, company: Company
) -> None:
    refusing = connect(company, "ann")
    connect(company, "ben")
    refuse(refusing, "evt-1", 3 * HOUR)
    refuse(refusing, "evt-2", 2 * DAY + HOUR)
    refuse(refusing, "evt-3", HOUR)

    rows = health_rows(superuser_client)
    html = html_of(superuser_client, reverse(HEALTH))

    assert rows["ann@google.test"].refused == 3
    assert rows["ann@google.test"].oldest_refusal_age == "2 d ago"
    assert rows["ben@google.test"].refused == 0
    assert "3, failing since" in html
    # Accounts with refused items come before those without.
    assert list(rows) == ["ann@google.test", "ben@google.test"]


def test_r9_health_page_shows_the_last_good_syncs_age_and_flags_it_after_a_day(
    superuser_client: Client, company: Company
) -> None:
    connect(company, "ann", synced_ago=3 * HOUR + dt.timedelta(minutes=5))
    connect(company, "ben", synced_ago=2 * DAY)
    connect(company, "cat", synced_ago=None)  # started ten days ago, never synced
    connect(company, "dan", synced_ago=None, started_ago=HOUR)  # just started
    connect(company, "eve", started=False, synced_ago=5 * DAY)  # not syncing: nothing is late

    rows = health_rows(superuser_client)
    html = html_of(superuser_client, reverse(HEALTH))

    assert rows["ann@google.test"].last_sync_age == "3 h ago"
    assert not rows["ann@google.test"].stale
    assert rows["ben@google.test"].last_sync_age == "2 d ago"
    assert rows["ben@google.test"].stale
    assert rows["cat@google.test"].stale
    assert not rows["dan@google.test"].stale
    assert not rows["eve@google.test"].stale
    assert not rows["eve@google.test"].started
    assert "3 h ago" in html
    assert html.count("No good sync for over a day.") == 2
    # The late ones come first.
    assert set(list(rows)[:2]) == {"ben@google.test", "cat@google.test"}


@pytest.mark.parametrize(
    ("ago", "words"),
    [
        (dt.timedelta(seconds=30), "just now"),
        (dt.timedelta(minutes=12), "12 min ago"),
        (3 * HOUR, "3 h ago"),
        (47 * HOUR, "47 h ago"),
        (5 * DAY, "5 d ago"),
    ],
)
def test_r9_short_age(ago: dt.timedelta, words: str) -> None:
    now = timezone.now()
    assert short_age(now - ago, now) == words


def test_health_page_shows_no_push_channels_the_product_does_not_have(
    superuser_client: Client, company: Company
) -> None:
    connect(company, "ann")
    html = html_of(superuser_client, reverse(HEALTH)).lower()
    assert "channel" not in html
    assert "subscription" not in html


def test_r9_health_page_query_count_does_not_grow_with_accounts(
    superuser_client: Client, company: Company
) -> None:
    def queries_with_more(accounts: int) -> int:
        """Connect ``accounts`` more accounts (each refusing an item, some late), then load both pages."""
        first = CalendarAccount.objects.count()
        for number in range(first, first + accounts):
            account = connect(company, f"user{number}", synced_ago=DAY * (number % 3))
            refuse(account, "evt", DAY)
        with CaptureQueriesContext(connection) as health:
            assert superuser_client.get(reverse(HEALTH)).status_code == 200
        with CaptureQueriesContext(connection) as index:
            assert superuser_client.get(reverse("admin:index")).status_code == 200
        return len(health.captured_queries) + len(index.captured_queries)

    two = queries_with_more(2)
    ten = queries_with_more(8)

    assert CalendarAccount.objects.count() == 10
    assert ten == two


# --- The admin index -----------------------------------------------------------------------------


def index_links(client: Client) -> dict[str, str]:
    """The index's calendar sync panel: link text -> URL."""
    html = html_of(client, reverse("admin:index"))
    panel = re.search(r'<div class="module" id="calendar-sync-health">(.*?)</div>', html, re.S)
    assert panel is not None
    return {
        text: url.replace("&amp;", "&")
        for url, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', panel[1])
    }


def test_r9_index_counts_accounts_and_links_each_count_to_its_accounts(
    superuser_client: Client, company: Company
) -> None:
    for name in ("ann", "ben", "cat"):
        connect(company, name)
    connect(company, "dan", Provider.MICROSOFT, state=AccountState.NEEDS_RECONNECT)
    connect(company, "eve", Provider.MICROSOFT, state=AccountState.NEEDS_RECONNECT)
    connect(company, "fay", Provider.EXCHANGE, state=AccountState.ERROR)
    refuse(CalendarAccount.objects.get(email="ann@google.test"), "evt", HOUR)
    connect(company, "gus", stopped=True, state=AccountState.ERROR)  # disconnected: not counted

    links = index_links(superuser_client)

    assert links["Calendar sync"] == reverse(HEALTH)
    assert set(links) == {"Calendar sync", "3 active", "2 need reconnect", "1 error", "1 with refused items"}
    assert changelist_emails(superuser_client, links["3 active"]) == {
        "ann@google.test",
        "ben@google.test",
        "cat@google.test",
    }
    assert changelist_emails(superuser_client, links["2 need reconnect"]) == {
        "dan@microsoft.test",
        "eve@microsoft.test",
    }
    assert changelist_emails(superuser_client, links["1 error"]) == {"fay@exchange.test"}
    assert changelist_emails(superuser_client, links["1 with refused items"]) == {"ann@google.test"}


def test_r9_index_counts_late_and_not_started_accounts(superuser_client: Client, company: Company) -> None:
    connect(company, "ann", synced_ago=3 * DAY)
    connect(company, "ben", started=False)

    links = index_links(superuser_client)

    assert changelist_emails(superuser_client, links["1 without a good sync for over a day"]) == {
        "ann@google.test"
    }
    assert changelist_emails(superuser_client, links["1 not started"]) == {"ben@google.test"}
    assert changelist_emails(superuser_client, links["1 active"]) == {"ann@google.test"}


def test_account_list_links_to_the_health_page(superuser_client: Client) -> None:
    assert reverse(HEALTH) in html_of(superuser_client, reverse(CHANGELIST))


# --- Company scoping (A1) ------------------------------------------------------------------------


def test_a1_company_admin_of_another_company_sees_no_account_health(
    other_company: Company, company: Company
) -> None:
    ann = connect(company, "ann", state=AccountState.ERROR)
    refuse(ann, "evt", DAY)
    connect(other_company, "zed")
    outsider_admin = logged_in(grant_admin_permissions(make_user(other_company, "boss@globex.test")))

    html = html_of(outsider_admin, reverse(HEALTH))
    links = index_links(outsider_admin)
    outsider_admin.post(reverse(HEALTH), {"action": "sync_now", "_selected_action": [ann.pk]})

    assert "ann@google.test" not in html
    assert "zed@google.test" in html
    assert set(links) == {"Calendar sync", "1 active"}
    ann.refresh_from_db()
    assert ann.sync_requested_at is None


def test_a1_staff_without_account_permission_get_no_health_page_nor_counts(company: Company) -> None:
    connect(company, "ann")
    staff = make_user(company, "clerk@acme.test", is_staff=True)

    assert logged_in(staff).get(reverse(HEALTH)).status_code == 403
    assert "calendar-sync-health" not in html_of(logged_in(staff), reverse("admin:index"))


# --- Actions: Sync now, and the existing ones from the health page ------------------------------


def run_on_changelist(client: Client, action: str, accounts: list[CalendarAccount]) -> str:
    response = client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [account.pk for account in accounts]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_r9_sync_now_queues_syncing_accounts_and_says_why_others_were_skipped(
    superuser_client: Client, company: Company
) -> None:
    syncing = [connect(company, "ann"), connect(company, "ben", state=AccountState.ERROR)]
    stopped = connect(company, "cat", stopped=True)
    not_started = connect(company, "dan", started=False)
    revoked = connect(company, "eve", state=AccountState.NEEDS_RECONNECT)

    html = run_on_changelist(superuser_client, "sync_now", [*syncing, stopped, not_started, revoked])

    for account in syncing:
        account.refresh_from_db()
        assert account.sync_requested_at is not None
    for account in (stopped, not_started, revoked):
        account.refresh_from_db()
        assert account.sync_requested_at is None
    assert "A sync was queued for 2 accounts." in html
    assert (
        "Skipped 3 accounts whose sync is not on: 1 not started, 1 stopped, "
        "1 waiting for their user to reconnect." in html
    )


def test_r9_sync_now_runs_from_the_health_page(superuser_client: Client, company: Company) -> None:
    ann = connect(company, "ann")
    ben = connect(company, "ben")

    response = superuser_client.post(reverse(HEALTH), {"action": "sync_now", "_selected_action": [ann.pk]})

    assert response.status_code == 302
    assert response["Location"] == reverse(HEALTH)
    page = superuser_client.get(response["Location"]).content.decode()
    assert "A sync was queued for 1 account." in page
    ann.refresh_from_db()
    ben.refresh_from_db()
    assert ann.sync_requested_at is not None
    assert ben.sync_requested_at is None


def test_force_full_resync_and_disconnect_run_from_the_health_page(
    superuser_client: Client, company: Company
) -> None:
    ann = connect(company, "ann")
    ben = connect(company, "ben")
    CalendarAccount.objects.filter(pk=ann.pk).update(next_sync_at=None)

    superuser_client.post(reverse(HEALTH), {"action": "force_full_resync", "_selected_action": [ann.pk]})
    superuser_client.post(reverse(HEALTH), {"action": "disconnect", "_selected_action": [ben.pk]})

    ann.refresh_from_db()
    ben.refresh_from_db()
    assert ann.next_sync_at is not None
    assert ben.stopped_at is not None
    assert ben.credentials is None


def test_health_page_refuses_an_unknown_action(superuser_client: Client, company: Company) -> None:
    ann = connect(company, "ann")

    response = superuser_client.post(
        reverse(HEALTH), {"action": "delete_selected", "_selected_action": [ann.pk]}, follow=True
    )

    assert "Choose an action." in response.content.decode()
    assert CalendarAccount.objects.filter(pk=ann.pk).exists()


def test_a1_view_only_staff_cannot_run_account_actions(company: Company) -> None:
    ann = connect(company, "ann")
    viewer = make_user(company, "viewer@acme.test", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_calendaraccount"))
    client = logged_in(User.objects.get(pk=viewer.pk))

    html = html_of(client, reverse(HEALTH))
    client.post(reverse(HEALTH), {"action": "sync_now", "_selected_action": [ann.pk]})

    assert "ann@google.test" in html
    assert 'name="action"' not in html
    ann.refresh_from_db()
    assert ann.sync_requested_at is None


# --- A run's log entries (D1, D2, A5, A6) ---------------------------------------------------------


@pytest.fixture
def logged_run(owner: User) -> SyncRun:
    account = CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")
    now = timezone.now()
    return SyncRun.objects.create(
        account=account, started_at=now, finished_at=now, outcome=SyncRun.Outcome.OK
    )


def log(run: SyncRun, direction: str, action: str, code: str, title: str, activity: Activity | None) -> None:
    SyncRunEntry.objects.create(
        run=run,
        direction=direction,
        action=action,
        code=code,
        title=title,
        activity=activity,
        external_id=f"evt-{SyncRunEntry.objects.count()}",
    )


def run_page(client: Client, run: SyncRun) -> str:
    return html_of(client, reverse("admin:calendarsync_syncrun_change", args=[run.pk]))


@pytest.fixture
def entries(owner: User, logged_run: SyncRun) -> SyncRun:
    """The owner's run: a private activity sent out, a public one imported, a private event skipped."""
    private = make_activity(owner, subject="Secret merger talk", visibility=Visibility.OWNER)
    public = make_activity(owner, subject="Team lunch")
    log(
        logged_run,
        SyncRunEntry.Direction.OUT,
        SyncRunEntry.Action.CREATED,
        "sent",
        "Secret merger talk",
        private,
    )
    log(logged_run, SyncRunEntry.Direction.IN, SyncRunEntry.Action.CREATED, "imported", "Team lunch", public)
    log(logged_run, SyncRunEntry.Direction.IN, SyncRunEntry.Action.SKIPPED, "private_event", "Dentist", None)
    return logged_run


def test_d2_run_page_lists_its_entries_in_the_words_of_the_sync_log(
    superuser_client: Client, entries: SyncRun
) -> None:
    html = run_page(superuser_client, entries)

    assert "Secret merger talk" in html  # a superuser sees every title
    assert "Team lunch" in html
    assert "Dentist" in html
    # D1: the explanation's message, not the reason code.
    assert "sent to the calendar" in html
    assert "imported as an activity" in html
    assert "private event, your setting is Don&#x27;t sync" in html


def test_a6_company_admin_sees_private_for_a_colleagues_private_entry(
    company_admin_client: Client, entries: SyncRun
) -> None:
    html = run_page(company_admin_client, entries)

    assert "Secret merger talk" not in html
    assert "Private" in html
    assert "Team lunch" in html
    assert "sent to the calendar" in html  # what happened still shows


def test_a6_company_admin_sees_no_title_of_calendar_events_never_imported(
    company_admin_client: Client, entries: SyncRun
) -> None:
    html = run_page(company_admin_client, entries)

    assert "Dentist" not in html
    assert "Calendar event" in html


def test_a6_the_account_owner_as_staff_sees_their_own_entries(owner: User, entries: SyncRun) -> None:
    html = run_page(logged_in(grant_admin_permissions(owner)), entries)

    assert "Secret merger talk" in html
    assert "Dentist" in html


def test_a5_entry_about_an_activity_the_admin_may_not_see_is_not_listed(
    company: Company, owner: User, company_admin_client: Client, logged_run: SyncRun
) -> None:
    hidden_deal = Deal.objects.create(
        company=company, owner=owner, title="Initech", visibility=Visibility.OWNER
    )
    activity = make_activity(owner, subject="Pricing call", deal=hidden_deal)
    log(
        logged_run,
        SyncRunEntry.Direction.OUT,
        SyncRunEntry.Action.UPDATED,
        "sent_update",
        "Pricing call",
        activity,
    )

    html = run_page(company_admin_client, logged_run)

    assert "Pricing call" not in html
    assert "change sent to the calendar" not in html


def test_a1_run_of_another_company_is_not_shown(outsider: User, entries: SyncRun) -> None:
    client = logged_in(grant_admin_permissions(make_user(outsider.company, "boss@globex.test")))
    response = client.get(reverse("admin:calendarsync_syncrun_change", args=[entries.pk]), follow=True)

    assert "Secret merger talk" not in response.content.decode()
    assert "Team lunch" not in response.content.decode()


def test_a6_deleting_a_run_or_an_account_names_no_entry_for_a_company_admin(
    company_admin_client: Client, superuser_client: Client, entries: SyncRun
) -> None:
    pages = [
        reverse("admin:calendarsync_syncrun_delete", args=[entries.pk]),
        reverse("admin:calendarsync_calendaraccount_delete", args=[entries.account_id]),
    ]
    for url in pages:
        html = html_of(company_admin_client, url)
        assert "Secret merger talk" not in html, url
        assert "Dentist" not in html, url
        assert "Sync run entries: 3" in html, url
    # An entry is named by its direction, action and code, never its title, on every delete page.
    assert "Secret merger talk" not in html_of(superuser_client, pages[0])


def test_d2_run_page_query_count_does_not_grow_with_entries(
    owner: User, company_admin_client: Client, logged_run: SyncRun
) -> None:
    def queries_with_more(entries: int) -> int:
        for number in range(entries):
            activity = make_activity(owner, subject=f"Call {number}", visibility=Visibility.OWNER)
            log(logged_run, SyncRunEntry.Direction.OUT, SyncRunEntry.Action.CREATED, "sent", "Call", activity)
            log(logged_run, SyncRunEntry.Direction.IN, SyncRunEntry.Action.SKIPPED, "past", "Old event", None)
        with CaptureQueriesContext(connection) as page:
            run_page(company_admin_client, logged_run)
        return len(page.captured_queries)

    two = queries_with_more(1)
    ten = queries_with_more(4)

    assert SyncRunEntry.objects.count() == 10
    assert ten == two
