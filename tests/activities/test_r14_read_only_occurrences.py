"""R7, R14: an occurrence of a recurring calendar event can be neither edited nor deleted in the CRM.

Every page says why, once: the list and the detail page offer no edit or delete, the edit page
shows the activity read-only with the reason, and a POST to edit or delete is refused with the
reason and changes nothing. Marking it done stays possible (not a synced change).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from activities.models import Activity
from tests.activities.conftest import berlin, timed
from tests.activities.form_html import submitted_values

pytestmark = pytest.mark.usefixtures("frozen_now")

REASON = (
    "This is one occurrence of a recurring event from your calendar. "
    "Change it in the calendar; CalSync keeps it read-only."
)


def url(name: str, activity: Activity) -> str:
    return reverse(f"activities:{name}", args=[activity.pk])


@pytest.fixture
def occurrence(owner):
    return timed(owner, berlin(2025, 1, 14, 9, 0), subject="Stand-up", sync_read_only_reason=REASON)


@pytest.fixture
def single(owner):
    return timed(owner, berlin(2025, 1, 14, 11, 0), subject="Pitch")


def test_r14_list_offers_no_edit_or_delete_for_an_occurrence(owner_client, occurrence, single):
    html = owner_client.get(reverse("activities:list")).content.decode()
    assert url("edit", single) in html
    assert url("edit", occurrence) not in html
    assert url("delete", occurrence) not in html
    assert "Read-only" in html
    # Marking it done stays possible.
    assert url("toggle_done", occurrence) in html


def test_r14_detail_says_the_occurrence_is_read_only_and_offers_no_delete(owner_client, occurrence):
    html = owner_client.get(url("detail", occurrence)).content.decode()
    assert html.count(REASON) == 1
    assert url("delete", occurrence) not in html
    assert url("edit", occurrence) not in html


def test_r14_detail_of_an_ordinary_activity_keeps_edit_and_delete(owner_client, single):
    html = owner_client.get(url("detail", single)).content.decode()
    assert url("edit", single) in html
    assert url("delete", single) in html


def test_r14_delete_page_refuses_with_the_reason(owner_client, occurrence):
    page = owner_client.get(url("delete", occurrence))
    html = page.content.decode()
    assert html.count(REASON) == 1
    assert f'action="{url("delete", occurrence)}"' not in html
    assert "Delete activity</button>" not in html


def test_r14_posting_a_delete_is_refused_and_deletes_nothing(owner_client, occurrence):
    response = owner_client.post(url("delete", occurrence))
    assert response.status_code == 403
    assert REASON in response.content.decode()
    assert Activity.objects.filter(pk=occurrence.pk).exists()


def test_r14_edit_page_shows_the_occurrence_read_only_with_the_reason_once(owner_client, occurrence):
    html = owner_client.get(url("edit", occurrence)).content.decode()
    assert html.count(REASON) == 1
    assert '<fieldset class="read-only" disabled>' in html
    assert "Save activity" not in html
    assert url("delete", occurrence) not in html
    assert "correct the" not in html


def test_r14_posting_an_edit_is_refused_with_the_reason_once_and_changes_nothing(owner_client, occurrence):
    posted = submitted_values(owner_client.get(url("edit", occurrence)).content.decode())
    response = owner_client.post(url("edit", occurrence), {**posted, "subject": ["My own subject"]})
    assert response.status_code == 403
    html = response.content.decode()
    assert html.count(REASON) == 1
    assert "correct the" not in html
    occurrence.refresh_from_db()
    assert occurrence.subject == "Stand-up"


def test_r14_an_occurrence_can_still_be_marked_done(owner_client, occurrence):
    owner_client.post(url("toggle_done", occurrence), {"done": "1"})
    occurrence.refresh_from_db()
    assert occurrence.done
