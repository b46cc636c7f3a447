"""C3/C5 Microsoft Exchange: the form validates and explains app passwords (connecting: test_connect_exchange)."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.models import CalendarAccount, Provider
from tests.calendarsync.support import connect_account

pytestmark = pytest.mark.django_db

URL = "/preferences/calendar-sync/connect/exchange/"
APP_PASSWORD_HINT = (
    "If your account uses two-factor authentication, create an app password in your Microsoft "
    "account and paste it here instead of your normal password."
)


def test_c3_exchange_form_asks_for_email_password_and_optional_server(owner_client: Client) -> None:
    assert reverse("calendarsync:connect_exchange") == URL
    html = owner_client.get(URL).content.decode()
    assert '<label for="id_email">E-mail address</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert '<label for="id_server_url">Server URL (optional)</label>' in html
    assert 'type="password"' in html


def test_c5_exchange_form_shows_the_app_password_hint(owner_client: Client) -> None:
    html = owner_client.get(URL).content.decode()
    assert APP_PASSWORD_HINT in html
    assert 'aria-describedby="id_password_helptext"' in html


def test_c3_empty_password_is_refused_with_a_message(owner_client: Client, owner: User) -> None:
    response = owner_client.post(URL, {"email": "owner@contoso.test", "password": ""})
    assert response.status_code == 400
    assert "Enter your password (or an app password)." in response.content.decode()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c3_bad_email_is_refused(owner_client: Client) -> None:
    response = owner_client.post(URL, {"email": "not-an-address", "password": "pw"})
    assert response.status_code == 400
    assert "Enter a valid e-mail address" in response.content.decode()


@pytest.mark.parametrize(
    "server_url", ["ftp://mail.contoso.test/EWS", "http://mail.contoso.test/EWS", "javascript:alert(1)"]
)
def test_c3_server_url_must_be_https(owner_client: Client, server_url: str) -> None:
    response = owner_client.post(URL, {"email": "a@contoso.test", "password": "pw", "server_url": server_url})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("Enter the server&#x27;s https:// address") == 1


def test_c3_an_unreachable_server_saves_nothing_and_logs_no_password(
    owner_client: Client, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "s3cret-exchange-password"
    response = owner_client.post(
        URL,
        {"email": "owner@contoso.test", "password": password, "server_url": "https://mail.contoso.test/EWS"},
    )
    assert response.status_code == 400
    assert "could not connect to an Exchange server at this address" in response.content.decode()
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert password not in caplog.text


def test_c7_a_refused_form_never_echoes_the_password(owner_client: Client) -> None:
    password = "s3cret-exchange-password"
    response = owner_client.post(URL, {"email": "bad", "password": password})
    assert password not in response.content.decode()


def test_c6_exchange_is_refused_while_another_account_is_connected(owner_client: Client, owner: User) -> None:
    connect_account(owner, provider=Provider.GOOGLE)
    response = owner_client.post(URL, {"email": "owner@contoso.test", "password": "pw"}, follow=True)
    assert "Stop its sync before adding another account" in response.content.decode()


def test_exchange_form_needs_login_and_csrf(owner: User) -> None:
    assert Client().get(URL).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(URL, {"email": "a@contoso.test", "password": "pw"}).status_code == 403
