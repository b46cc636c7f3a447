"""CSV export (A7 filters) with A5 and A6 applied."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from activities.models import ActivityType, SyncStatus
from tests.activities.conftest import all_day, berlin, bulk_timed, make_account, make_deal, timed

EXPORT = reverse("activities:export")

pytestmark = pytest.mark.usefixtures("frozen_now")


def rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.django_db
def test_a7_export_anonymous_is_sent_to_login(client):
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a7_export_has_every_column_in_the_viewers_time_zone(owner_client, colleague_client, owner):
    timed(
        owner,
        berlin(2025, 1, 15, 23, 30),
        subject="Late call",
        location="Phone",
        note="Ask about renewal",
        deal=make_deal(owner, "Renewal"),
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )
    response = owner_client.get(EXPORT)
    assert response["Content-Disposition"] == 'attachment; filename="activities-2025-01-13.csv"'
    [row] = rows(response)
    assert row == {
        "Subject": "Late call",
        "Type": "Meeting",
        "Date": "2025-01-15",
        "Start time": "23:30",
        "End time": "00:00",
        "Duration (minutes)": "30",
        "Owner": "Owner",
        "Location": "Phone",
        "Deal": "Renewal",
        "Person": "",
        "Organization": "",
        "Note": "Ask about renewal",
        "Done": "no",
        "Sync status": "Synced",
        "Calendar account": "owner@gmail.test",
    }
    [in_new_york] = rows(colleague_client.get(EXPORT, {"owner": "all"}))
    assert (in_new_york["Date"], in_new_york["Start time"]) == ("2025-01-15", "17:30")


def test_a7_export_all_day_activity(owner_client, owner):
    all_day(owner, dt.date(2025, 1, 16), subject="Fair")
    [row] = rows(owner_client.get(EXPORT))
    assert (row["Date"], row["Start time"], row["End time"], row["Duration (minutes)"]) == (
        "2025-01-16",
        "",
        "",
        "",
    )


def test_a7_export_applies_the_filters(owner_client, owner, colleague):
    call = ActivityType.objects.get(company=owner.company, name="Call")
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Call tomorrow", type=call)
    timed(owner, berlin(2025, 1, 14, 10, 0), subject="Meeting tomorrow")
    timed(owner, berlin(2025, 1, 20, 9, 0), subject="Call next week", type=call)
    timed(owner, berlin(2025, 1, 14, 11, 0), subject="Done call", type=call, done=True)
    timed(colleague, berlin(2025, 1, 14, 9, 0), subject="Their call", type=call)
    subjects = [
        row["Subject"] for row in rows(owner_client.get(EXPORT, {"types": call.pk, "time": "tomorrow"}))
    ]
    assert subjects == ["Call tomorrow"]
    subjects = [
        row["Subject"]
        for row in rows(owner_client.get(EXPORT, {"owner": "all", "sort": "desc", "status": "all"}))
    ]
    assert subjects == ["Call next week", "Done call", "Meeting tomorrow", "Their call", "Call tomorrow"]


def test_a5_activity_linked_to_hidden_deal_is_not_exported(colleague_client, owner, hidden_deal):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Negotiate", deal=hidden_deal)
    assert rows(colleague_client.get(EXPORT, {"owner": "all"})) == []


def test_a6_private_activity_is_exported_as_private_with_time_only(colleague_client, private_activity):
    response = colleague_client.get(EXPORT, {"owner": "all"})
    [row] = rows(response)
    assert row["Subject"] == "Private"
    assert (row["Date"], row["Start time"], row["End time"], row["Owner"]) == (
        "2025-01-14",
        "09:00",
        "09:30",
        "Owner",
    )
    for column in ("Type", "Location", "Deal", "Person", "Organization", "Note"):
        assert row[column] == ""


def test_a6_owner_exports_own_private_activity_in_full(owner_client, private_activity):
    [row] = rows(owner_client.get(EXPORT))
    assert (row["Subject"], row["Note"], row["Deal"]) == (
        "Secret merger talk",
        "Bring the term sheet",
        "Merger deal",
    )


def test_a7_export_outsider_gets_only_the_header(outsider_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject="Mine")
    assert rows(outsider_client.get(EXPORT, {"owner": "all", "status": "all"})) == []


def test_a7_export_defuses_spreadsheet_formulas(owner_client, owner):
    timed(owner, berlin(2025, 1, 14, 9, 0), subject='=HYPERLINK("http://evil.test")', note="+1 555")
    [row] = rows(owner_client.get(EXPORT))
    assert row["Subject"] == '\'=HYPERLINK("http://evil.test")'
    assert row["Note"] == "'+1 555"


def test_a7_export_query_count_is_constant(django_assert_max_num_queries, owner_client, owner):
    bulk_timed(
        owner,
        [berlin(2025, 1, 14, 8, 0) + dt.timedelta(minutes=index) for index in range(120)],
        deal=make_deal(owner),
    )
    owner_client.get(EXPORT)
    with django_assert_max_num_queries(8):
        assert len(rows(owner_client.get(EXPORT))) == 120
