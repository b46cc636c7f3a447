"""Issue #16: the Exchange connect serves Exchange Server on-premises; Exchange Online goes to Microsoft 365.

EWS is off for Exchange Online from 1 October 2026 (retired 1 April 2027), and Basic sign-in to it
long before: a typed server URL or an autodiscover answer on a Microsoft 365 host is refused before
anything is sent there, and the page offers the Microsoft 365 connect. The sign-in method (NTLM or
Basic, automatic by default) can be set under "Advanced".
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.models import CalendarAccount
from calendarsync.providers.exchange import client as exchange_client
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

pytestmark = pytest.mark.django_db

URL = reverse("calendarsync:connect_exchange")
ONLINE_URLS = [
    "https://outlook.office365.com/EWS/Exchange.asmx",
    "https://outlook.office.com/EWS/Exchange.asmx",
]


@pytest.fixture
def nothing_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if the connect builds an EWS account (the first step of any request to it)."""
    attempts: list[str] = []

    def refuse(login: Any) -> Any:
        attempts.append(login.server_url)
        raise AssertionError(f"an EWS request was prepared for {login.server_url}")

    monkeypatch.setattr(exchange_client, "build_account", refuse)
    return attempts


def page(response: Any) -> str:
    return str(response.content.decode())


@pytest.mark.parametrize("server_url", ONLINE_URLS)
def test_16_a_typed_exchange_online_url_is_refused_and_microsoft_365_offered(
    owner_client: Client, owner: User, nothing_sent: list[str], server_url: str
) -> None:
    response = owner_client.post(
        URL, {"email": "pat@contoso.com", "password": "secret", "server_url": server_url}
    )
    html = page(response)
    assert response.status_code == 400
    assert "This mailbox is in Exchange Online" in html
    assert f'action="{reverse("calendarsync:connect_microsoft")}"' in html
    assert "Connect with Microsoft 365" in html
    assert nothing_sent == []
    assert not CalendarAccount.objects.filter(user=owner).exists()
    assert "secret" not in html


def test_16_an_autodiscover_answer_on_exchange_online_is_refused(
    owner_client: Client, owner: User, nothing_sent: list[str], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.EXCHANGE_SERVER_URL = ""
    monkeypatch.setattr(exchange_client, "discover_service_endpoint", lambda email, password: ONLINE_URLS[0])
    response = owner_client.post(URL, {"email": "pat@contoso.com", "password": "secret", "server_url": ""})
    assert response.status_code == 400
    assert "This mailbox is in Exchange Online" in page(response)
    assert nothing_sent == []


def test_16_the_connect_list_names_exchange_server_on_premises(owner_client: Client) -> None:
    html = page(owner_client.get(reverse("calendarsync:page")))
    assert "Microsoft Exchange Server (on-premises)" in html
    assert "Exchange Online and Microsoft 365 mailboxes connect through Microsoft 365." in html


def test_16_the_form_says_where_exchange_online_goes_and_offers_the_sign_in_method(
    owner_client: Client,
) -> None:
    html = page(owner_client.get(URL))
    assert "Connect Microsoft Exchange Server (on-premises)" in html
    assert 'id="exchange-online-note"' in html
    assert '<details class="form-advanced" id="exchange-advanced">' in html  # closed: automatic
    for value, label in (("auto", "Automatic"), ("ntlm", "NTLM"), ("basic", "Basic")):
        assert f'value="{value}"' in html
        assert label in html


@pytest.mark.parametrize("auth_type", ["ntlm", "basic"])
def test_16_the_chosen_sign_in_method_is_used_and_stored(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator, auth_type: str
) -> None:
    response = owner_client.post(
        URL,
        {
            "email": exchange_emulator.user,
            "password": exchange_emulator.password,
            "server_url": exchange_emulator.server_url,
            "auth_type": auth_type,
        },
    )
    assert response.status_code == 302, page(response)
    account = CalendarAccount.objects.get(user=owner)
    assert dict(account.credentials or {})["auth_type"] == auth_type


def test_16_automatic_sign_in_picks_ntlm_when_the_server_offers_it(
    owner_client: Client, owner: User, exchange_emulator: RunningExchangeEmulator
) -> None:
    response = owner_client.post(
        URL,
        {
            "email": exchange_emulator.user,
            "password": exchange_emulator.password,
            "server_url": exchange_emulator.server_url,
        },
    )
    assert response.status_code == 302, page(response)
    assert dict(CalendarAccount.objects.get(user=owner).credentials or {})["auth_type"] == "ntlm"


def test_16_an_unknown_sign_in_method_is_a_form_error(owner_client: Client, owner: User) -> None:
    response = owner_client.post(
        URL, {"email": "pat@contoso.com", "password": "secret", "server_url": "", "auth_type": "kerberos"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in page(response)
    assert '<details class="form-advanced" id="exchange-advanced" open>' in page(response)


def test_16_the_network_guard_sends_nothing_to_exchange_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Exchange session (EWS, autodiscover) refuses an Exchange Online URL before connecting."""
    import requests

    from calendarsync.providers.exchange import network

    def no_connection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a connection was opened")

    monkeypatch.setattr(network, "connect_to_allowed_address", no_connection)
    session = requests.Session()
    session.mount("https://", network.GuardedHTTPAdapter())
    for url in (
        "https://outlook.office365.com/EWS/Exchange.asmx",
        "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc",
        "https://OUTLOOK.OFFICE.COM./EWS/Exchange.asmx",
    ):
        with (
            network.exchange_online_refusals() as refused,
            pytest.raises(requests.exceptions.ConnectionError),
        ):
            session.post(url, data=b"<soap/>", auth=("pat@contoso.com", "secret"))
        assert [found.lower() for found in refused] == [url.lower()]  # requests lower-cases the host
    assert not network.is_exchange_online("https://mail.contoso.com/EWS/Exchange.asmx")
    assert not network.is_exchange_online("https://notoutlook.com/EWS/Exchange.asmx")


def test_16_autodiscover_sent_on_to_microsoft_365_says_exchange_online(
    owner_client: Client, owner: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The domain's autodiscover points at Microsoft 365: the guard refuses it, and the user hears
    where the mailbox lives rather than "no server found"."""
    import requests

    from calendarsync.providers.exchange import network

    settings.EXCHANGE_SERVER_URL = ""

    def autodiscover(email: str, password: str) -> str:
        session = requests.Session()
        session.mount("https://", network.GuardedHTTPAdapter())
        session.post(
            "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc", auth=(email, password)
        )
        raise AssertionError("unreachable")

    monkeypatch.setattr(exchange_client, "discover_service_endpoint", autodiscover)
    response = owner_client.post(URL, {"email": "pat@contoso.com", "password": "secret", "server_url": ""})
    assert response.status_code == 400
    assert "This mailbox is in Exchange Online" in page(response)
