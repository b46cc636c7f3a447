"""A1 companies and users; A2 default types per company; personal preferences."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Company, User
from activities.models import ActivityType
from activities.type_colours import colour_class
from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_a2_every_new_company_starts_with_six_default_types() -> None:
    company = Company.objects.create(name="Initech")
    names = list(ActivityType.objects.filter(company=company).values_list("name", flat=True))
    assert names == ["Call", "Meeting", "Task", "Deadline", "Email", "Lunch"]
    assert all(ActivityType.objects.filter(company=company).values_list("is_active", flat=True))


@pytest.mark.django_db
def test_a2_default_types_each_have_their_own_colour() -> None:
    company = Company.objects.create(name="Colours Ltd")
    colours = list(ActivityType.objects.filter(company=company).values_list("color", flat=True))
    assert len(colours) == 6
    assert len(set(colours)) == 6
    assert len({colour_class(colour) for colour in colours}) == 6  # distinct on the page too


def test_a1_users_log_in_with_email(owner: User) -> None:
    client = Client()
    response = client.post(reverse("account_login"), {"login": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("activities:list")


def test_a1_wrong_password_shows_a_clear_error(owner: User) -> None:
    response = Client().post(reverse("account_login"), {"login": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert b"not correct" in response.content


def test_a1_there_is_no_public_signup(db: None) -> None:
    response = Client().post(
        reverse("account_signup"), {"email": "new@x.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert not User.objects.filter(email="new@x.test").exists()
    assert response.status_code in {200, 302}


def test_anonymous_preferences_redirects_to_login(db: None) -> None:
    response = Client().get(reverse("accounts:preferences"))
    assert response.status_code == 302
    assert reverse("account_login") in response.headers["Location"]


def test_c1_account_menu_links_to_personal_preferences_and_calendar_sync(owner_client: Client) -> None:
    response = owner_client.get(reverse("accounts:preferences"))
    html = response.content.decode()
    assert 'id="account-menu"' in html
    assert reverse("accounts:preferences") in html
    assert reverse("calendarsync:page") in html


def test_user_changes_time_zone_and_sees_confirmation(owner_client: Client, owner: User) -> None:
    response = owner_client.post(
        reverse("accounts:preferences"),
        {"first_name": "Olga", "last_name": "Owner", "time_zone": "Asia/Tokyo"},
        follow=True,
    )
    owner.refresh_from_db()
    assert owner.time_zone == "Asia/Tokyo"
    assert b"Your preferences were saved." in response.content


def test_unknown_time_zone_is_refused_and_nothing_changes(owner_client: Client, owner: User) -> None:
    response = owner_client.post(
        reverse("accounts:preferences"), {"first_name": "X", "last_name": "", "time_zone": "Mars/Base"}
    )
    owner.refresh_from_db()
    assert response.status_code == 200
    assert owner.time_zone == "Europe/Berlin"
    assert owner.first_name == "Owner"
    assert b"Select a valid choice" in response.content
