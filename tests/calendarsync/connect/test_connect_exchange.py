"""C3/C5/C7 Connect Microsoft Exchange: e-mail, password (or app password), server URL, against the EWS emulator."""

from __future__ import annotations

import base64
import logging
import socket
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.actions import do_start_sync, do_update_preferences
from calendarsync.connect import exchange as views_exchange
from calendarsync.emulators.exchange import EWS_PATH
from calendarsync.emulators.server import EmulatorServer
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    LinkOrigin,
    Provider,
    RemoteCalendar,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.exchange import client as exchange_client
from tests.calendarsync.conftest_exchange import (
    EXCHANGE_APP_PASSWORD,
    EXCHANGE_TWO_FACTOR_PASSWORD,
    EXCHANGE_TWO_FACTOR_USER,
    RunningExchangeEmulator,
)

pytestmark = pytest.mark.django_db

URL = "/preferences/calendar-sync/connect/exchange/"


def post(client: Client, email: str, password: str, server_url: str) -> Any:
    return client.post(URL, {"email": email, "password": password, "server_url": server_url})


def stored(account: CalendarAccount) -> dict[str, Any]:
    """The decrypted credentials of an account."""
    return dict(account.credentials or {})


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_factor(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    exchange_emulator.emulator.add_user(
        EXCHANGE_TWO_FACTOR_USER,
        EXCHANGE_TWO_FACTOR_PASSWORD,
        two_factor=True,
        app_password=EXCHANGE_APP_PASSWORD,
    )
    return exchange_emulator


def test_c3_connecting_saves_the_account_and_its_calendar(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    response = post(
        owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("calendarsync:page")
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == f"Connected {exchange_emulator.user}. Review the options below, then start the sync."
    account = CalendarAccount.objects.get(user=owner)
    assert (account.provider, account.email, account.state) == (
        Provider.EXCHANGE,
        exchange_emulator.user,
        AccountState.ACTIVE,
    )
    assert stored(account) == exchange_emulator.connected_credentials()  # NTLM: the emulator offers it
    [calendar] = RemoteCalendar.objects.filter(account=account)
    assert (calendar.name, calendar.is_primary, calendar.can_write) == ("Calendar", True, True)
    assert calendar.external_id == exchange_emulator.emulator.calendar_folder_id(exchange_emulator.user)
    page = owner_client.get(reverse("calendarsync:page")).content.decode()
    assert exchange_emulator.user in page
    assert "Calendar" in page


@pytest.mark.parametrize("sign_in", ["basic", "ntlm"])
def test_c7_the_password_is_encrypted_and_never_shown_or_logged(
    owner_client: Client,
    owner: User,
    exchange_emulator: RunningExchangeEmulator,
    caplog: pytest.LogCaptureFixture,
    sign_in: str,
) -> None:
    exchange_emulator.emulator.set_auth_methods([sign_in])
    caplog.set_level(logging.DEBUG)
    # Settings keep exchangelib at WARNING; open it up here to prove the header redaction too.
    caplog.set_level(logging.DEBUG, logger="exchangelib")
    password = exchange_emulator.password
    basic = base64.b64encode(f"{exchange_emulator.user}:{password}".encode()).decode()
    response = post(owner_client, exchange_emulator.user, password, exchange_emulator.server_url)
    assert response.status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendarsync_calendaraccount")
        [(stored,)] = cursor.fetchall()
    assert password not in stored
    assert exchange_emulator.user not in stored  # the whole dict is ciphertext
    assert CalendarAccount.objects.get(user=owner).credentials["password"] == password  # type: ignore[index]
    page = owner_client.get(reverse("calendarsync:page")).content.decode()
    assert password not in page
    # exchangelib logs its request headers at DEBUG: the Authorization header is blanked.
    if sign_in == "basic":
        assert "'Authorization': 'Basic [redacted]'" in caplog.text
    assert "TlRMTVNTUAAD" not in caplog.text  # no NTLM answer (its response can be cracked offline)
    assert password not in caplog.text
    assert basic not in caplog.text
    assert repr(CalendarAccount.objects.get(user=owner).credentials).count(password) == 0


def test_c5_a_two_factor_account_refuses_the_password_and_asks_for_an_app_password(
    owner_client: Client, owner: User, two_factor: RunningExchangeEmulator
) -> None:
    response = post(
        owner_client, EXCHANGE_TWO_FACTOR_USER, EXCHANGE_TWO_FACTOR_PASSWORD, two_factor.server_url
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert (
        "create an app password in your Microsoft account and paste it into Password instead"
        in html.replace("Create", "create")
    )
    assert 'id="app-password-help"' in html
    assert "App passwords" in html
    assert views_exchange.WRONG_LOGIN not in html
    assert f'value="{EXCHANGE_TWO_FACTOR_USER}"' in html
    assert f'value="{two_factor.server_url}"' in html
    assert EXCHANGE_TWO_FACTOR_PASSWORD not in html
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c5_the_app_password_connects(
    owner_client: Client, owner: User, two_factor: RunningExchangeEmulator
) -> None:
    response = post(owner_client, EXCHANGE_TWO_FACTOR_USER, EXCHANGE_APP_PASSWORD, two_factor.server_url)
    assert response.status_code == 302
    account = CalendarAccount.objects.get(user=owner)
    assert account.email == EXCHANGE_TWO_FACTOR_USER
    assert stored(account)["password"] == EXCHANGE_APP_PASSWORD
    assert account.calendars.count() == 1


def test_c3_a_wrong_password_has_its_own_message(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    response = post(owner_client, exchange_emulator.user, "not-the-password", exchange_emulator.server_url)
    html = response.content.decode()
    assert response.status_code == 400
    assert views_exchange.WRONG_LOGIN in html
    assert 'id="app-password-help"' not in html
    assert "not-the-password" not in html
    assert f'value="{exchange_emulator.user}"' in html
    assert not CalendarAccount.objects.filter(user=owner).exists()


@pytest.mark.parametrize("path", ["/owa/", "/EWS/Services.wsdl"])
def test_c3_a_url_without_exchange_web_services_gets_the_one_connection_message(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator, path: str
) -> None:
    server_url = exchange_emulator.url + path
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, server_url)
    html = response.content.decode()
    assert response.status_code == 400
    assert views_exchange.NO_CONNECTION in html  # issue #13: no oracle on what answered
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c3_a_website_that_is_not_exchange_has_the_same_message(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    def website(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<!doctype html><title>Intranet</title><p>Welcome</p>"]

    with EmulatorServer(website) as server:
        response = post(
            owner_client, exchange_emulator.user, exchange_emulator.password, server.url + EWS_PATH
        )
    assert response.status_code == 400
    assert views_exchange.NO_CONNECTION in response.content.decode()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c3_a_bare_host_means_its_standard_ews_path(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.url)
    assert response.status_code == 302
    assert stored(CalendarAccount.objects.get(user=owner))["server_url"] == exchange_emulator.server_url


def test_c3_an_unreachable_server_gets_the_same_connection_message(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    server_url = f"http://127.0.0.1:{closed_port()}/EWS/Exchange.asmx"
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, server_url)
    html = response.content.decode()
    assert response.status_code == 400
    assert views_exchange.NO_CONNECTION in html
    assert f'value="{server_url}"' in html
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c3_a_busy_server_is_unreachable_for_now(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    exchange_emulator.emulator.inject_faults("busy", count=1, back_off_ms=30_000)
    response = post(
        owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
    )
    assert response.status_code == 400
    assert "try again in a few minutes" in response.content.decode()
    assert exchange_emulator.emulator.request_counts()["GetFolder"] == 1  # one attempt: a person is waiting


def test_c3_http_is_allowed_for_loopback_only(owner_client: Client, settings: Settings) -> None:
    settings.DEBUG = False
    refused = post(owner_client, "a@contoso.test", "pw", "http://mail.contoso.test/EWS/Exchange.asmx")
    assert "Enter the server&#x27;s https:// address" in refused.content.decode()
    for loopback in ("http://127.0.0.1:1/EWS/Exchange.asmx", "http://localhost:1/EWS/Exchange.asmx"):
        accepted = post(owner_client, "a@contoso.test", "pw", loopback)
        assert "https:// address" not in accepted.content.decode()  # valid, then unreachable


def test_c3_http_is_allowed_anywhere_with_debug(owner_client: Client, settings: Settings) -> None:
    settings.DEBUG = True
    response = post(owner_client, "a@contoso.test", "pw", "http://mail.contoso.test/EWS/Exchange.asmx")
    html = response.content.decode()
    assert "https:// address" not in html
    assert views_exchange.NO_CONNECTION in html


def test_c3_without_a_server_url_autodiscover_finds_it(
    owner_client: Client,
    owner: User,
    exchange_emulator: RunningExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, str]] = []

    def discover(email: str, password: str) -> str:
        asked.append((email, password))
        return exchange_emulator.server_url

    monkeypatch.setattr(exchange_client, "discover_service_endpoint", discover)
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, "")
    assert response.status_code == 302
    assert asked == [(exchange_emulator.user, exchange_emulator.password)]
    assert stored(CalendarAccount.objects.get(user=owner))["server_url"] == exchange_emulator.server_url


def test_a_configured_server_url_stands_in_for_autodiscover(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator, settings: Settings
) -> None:
    """Local development (``make run``): EXCHANGE_SERVER_URL points an empty field at the emulator."""
    settings.EXCHANGE_SERVER_URL = exchange_emulator.url
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, "")
    assert response.status_code == 302
    assert stored(CalendarAccount.objects.get(user=owner))["server_url"] == exchange_emulator.server_url


def test_c3_when_autodiscover_finds_nothing_the_page_asks_for_the_url(
    owner_client: Client, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchangelib.errors import AutoDiscoverFailed

    def discover(email: str, password: str) -> str:
        raise AutoDiscoverFailed("All steps in the autodiscover protocol failed")

    monkeypatch.setattr(exchange_client, "discover_service_endpoint", discover)
    response = post(owner_client, "someone@contoso.test", "pw", "")
    assert response.status_code == 400
    assert "could not find your Exchange server from your e-mail address" in response.content.decode()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_c4_a_login_without_calendar_access_connects_with_insufficient_permissions(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    exchange_emulator.emulator.set_calendar_access(exchange_emulator.user, False)
    response = post(
        owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
    )
    assert response.status_code == 302
    account = CalendarAccount.objects.get(user=owner)
    assert account.state == AccountState.INSUFFICIENT_PERMISSIONS
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Ask your IT admin to allow third-party calendar apps" in message


def test_c6_reconnecting_prefills_the_email_and_url_but_never_the_password(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    html = owner_client.get(URL).content.decode()
    assert f'value="{exchange_emulator.user}"' in html
    assert f'value="{exchange_emulator.server_url}"' in html
    assert exchange_emulator.password not in html
    # A new password after a change on the server: the same account gets it (C6 reconnect).
    exchange_emulator.emulator.revoke(exchange_emulator.user, "a-new-password")
    response = post(owner_client, exchange_emulator.user, "a-new-password", exchange_emulator.server_url)
    assert response.status_code == 302
    [account] = CalendarAccount.objects.filter(user=owner)
    assert stored(account)["password"] == "a-new-password"


def test_another_users_exchange_details_are_never_shown(
    owner_client: Client, colleague_client: Client, exchange_emulator: RunningExchangeEmulator
) -> None:
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    html = colleague_client.get(URL).content.decode()
    assert exchange_emulator.user not in html
    assert exchange_emulator.server_url not in html


def test_autodiscover_is_its_own_code_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit level: the client asks exchangelib's Autodiscovery and keeps the endpoint it found."""
    seen: dict[str, Any] = {}

    class FakeProtocol:
        service_endpoint = "https://mail.contoso.test/EWS/Exchange.asmx"

    class FakeAutodiscovery:
        def __init__(self, email: str, credentials: Any) -> None:
            seen["email"], seen["credentials"] = email, credentials

        def discover(self) -> tuple[object, FakeProtocol]:
            return object(), FakeProtocol()

    monkeypatch.setattr(exchange_client, "Autodiscovery", FakeAutodiscovery)
    found = exchange_client.discover_service_endpoint("erin@contoso.test", "pw")
    assert found == "https://mail.contoso.test/EWS/Exchange.asmx"
    assert seen["email"] == "erin@contoso.test"
    assert (seen["credentials"].username, seen["credentials"].password) == ("erin@contoso.test", "pw")


# --------------------------------------------------------------------------- reconnect (C4, C5, R10)


def test_c5_the_app_password_notice_points_at_the_password_field_below_it(
    owner_client: Client, two_factor: RunningExchangeEmulator
) -> None:
    html = post(
        owner_client, EXCHANGE_TWO_FACTOR_USER, EXCHANGE_TWO_FACTOR_PASSWORD, two_factor.server_url
    ).content.decode()
    notice = html.index('id="app-password-help"')
    assert notice < html.index('name="password"')  # the notice is above the field...
    assert "paste it into the Password field below." in html  # ...and says so
    assert "Password above" not in html


def test_r10_the_reconnect_button_of_an_exchange_account_opens_its_password_form(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    account = CalendarAccount.objects.get(user=owner)
    response = owner_client.post(reverse("calendarsync:reconnect", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"] == URL
    html = owner_client.get(URL).content.decode()
    assert "Reconnect Microsoft Exchange" in html
    assert ">Reconnect</button>" in html
    assert f'value="{exchange_emulator.user}"' in html


def test_r10_reconnecting_with_the_new_password_keeps_the_account_its_options_and_links(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    account = CalendarAccount.objects.get(user=owner)
    do_update_preferences(acting_user=owner, account=account, changes={"include_details": False})
    do_start_sync(acting_user=owner, account=account)
    link = EventLink.objects.create(
        account=account, calendar_external_id="cal", external_id="item-1", origin=LinkOrigin.CRM
    )
    # The password changed on the server: the sync stopped with "Needs reconnect".
    exchange_emulator.emulator.revoke(exchange_emulator.user, "a-new-password")
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    response = post(owner_client, exchange_emulator.user, "a-new-password", exchange_emulator.server_url)
    assert response.status_code == 302
    message = [str(m) for m in get_messages(response.wsgi_request)][-1]
    assert message == f"Reconnected {exchange_emulator.user}. Sync carries on with your options."
    [again] = CalendarAccount.objects.filter(user=owner)
    assert again.pk == account.pk
    assert again.state == AccountState.ACTIVE
    assert stored(again)["password"] == "a-new-password"
    assert EventLink.objects.get(pk=link.pk).account_id == account.pk
    assert SyncPreferences.objects.get(account=account).include_details is False


def test_r10_reconnecting_as_another_mailbox_is_refused_before_any_password_is_sent(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    exchange_emulator.emulator.add_user("mallory@example.com", "mallory-password-1")
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    account = CalendarAccount.objects.get(user=owner)
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    exchange_emulator.emulator.reset_counts()
    response = post(owner_client, "mallory@example.com", "mallory-password-1", exchange_emulator.server_url)
    html = response.content.decode()
    assert response.status_code == 400
    assert "You signed in as mallory@example.com, but the account connected here is" in html
    assert f"To reconnect, sign in as {exchange_emulator.user}." in html
    assert not any(exchange_emulator.emulator.request_counts().values())
    [unchanged] = CalendarAccount.objects.filter(user=owner)
    assert (unchanged.pk, unchanged.email) == (account.pk, exchange_emulator.user)
    assert unchanged.state == AccountState.NEEDS_RECONNECT
    assert stored(unchanged)["password"] == exchange_emulator.password


def test_c6_re_adding_the_same_mailbox_after_stop_offers_its_previous_options(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    post(owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    first = CalendarAccount.objects.get(user=owner)
    do_update_preferences(acting_user=owner, account=first, changes={"sync_type": SyncType.ONE_WAY})
    owner_client.post(reverse("calendarsync:stop_sync", args=[first.pk]))
    response = post(
        owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
    )
    message = [str(m) for m in get_messages(response.wsgi_request)][-1]
    assert "Your options from the last time you synced this account are back" in message
    second = CalendarAccount.objects.get(user=owner, stopped_at__isnull=True)
    assert second.pk != first.pk
    assert SyncPreferences.objects.get(account=second).sync_type == SyncType.ONE_WAY
