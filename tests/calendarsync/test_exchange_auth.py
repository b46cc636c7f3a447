"""Exchange Server sign-in and Exchange Online (issue #16): the probe, the stored choice, the version,
the refusal of Microsoft 365 hosts, and the emulator's NTLM and Basic as IIS speaks them."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import spnego
from exchangelib.protocol import close_connections
from pytest_django.fixtures import Settings

from calendarsync.emulators.exchange import EXCHANGE_2016, EXCHANGE_2019, ExchangeEmulator
from calendarsync.emulators.server import EmulatorServer
from calendarsync.providers.base import AuthRevoked, TransientError
from calendarsync.providers.exchange import auth, client, connect, network
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.exchange.auth import NoSupportedSignIn, offered_schemes, probe_auth_type
from calendarsync.providers.exchange.client import ExchangeLogin, server_version
from calendarsync.providers.exchange.connect import (
    EXCHANGE_ONLINE_HOSTS,
    ExchangeOnline,
    is_exchange_online,
    verify_login,
)
from calendarsync.providers.exchange.errors import AddressNotAllowed, ServerUnusable
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

ONLINE_URL = "https://outlook.office365.com/EWS/Exchange.asmx"
GET_FOLDER = b"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
  <s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
  <m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder></s:Body>
</s:Envelope>"""


@pytest.fixture(autouse=True)
def _fresh_exchangelib_sessions() -> Iterator[None]:
    """exchangelib keeps a Protocol and its open (signed-in) sessions per endpoint and login."""
    close_connections()
    yield
    close_connections()


@pytest.fixture
def ews(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    return exchange_emulator


class Answering:
    """A web server that is not (or not only) Exchange: every request gets ``status`` and ``headers``."""

    def __init__(
        self, status: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"<h1>hi</h1>"
    ):
        self.status, self.headers, self.body, self.hits = status, headers or [], body, 0

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        self.hits += 1
        start_response(self.status, [("Content-Type", "text/html"), *self.headers])
        return [self.body]


# --------------------------------------------------------------------------- the probe


@pytest.mark.parametrize(
    ("values", "schemes"),
    [
        (["Negotiate", "NTLM", 'Basic realm="mail.example.com"'], {"negotiate", "ntlm", "basic"}),
        (['Negotiate, NTLM, Basic realm="a, b"'], {"negotiate", "ntlm", "basic"}),
        (['Basic realm="x", charset="UTF-8"'], {"basic"}),
        (["NTLM TlRMTVNTUAACAAAADAAMADgAAAA=="], {"ntlm"}),
        (
            ['Bearer authorization_uri="https://login.microsoftonline.com/common", Basic realm=""'],
            {"bearer", "basic"},
        ),
        ([], set()),
    ],
)
def test_the_schemes_of_www_authenticate_headers(values: list[str], schemes: set[str]) -> None:
    assert offered_schemes(values) == schemes


def test_ntlm_is_chosen_when_offered_else_basic_and_nothing_else_is_taken() -> None:
    assert auth.choose_auth_type(frozenset({"negotiate", "ntlm", "basic"})) == "ntlm"
    assert auth.choose_auth_type(frozenset({"negotiate"})) == "ntlm"  # IIS's Negotiate takes NTLM tokens
    assert auth.choose_auth_type(frozenset({"basic"})) == "basic"
    with pytest.raises(NoSupportedSignIn):
        auth.choose_auth_type(frozenset({"bearer", "digest"}))


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["ntlm"], "ntlm"), (["basic"], "basic"), (["ntlm", "basic"], "ntlm")],
    ids=["ntlm-only", "basic-only", "both"],
)
def test_the_probe_reads_the_servers_challenges_without_sending_credentials(
    ews: RunningExchangeEmulator, offered: list[str], chosen: str
) -> None:
    ews.emulator.set_auth_methods(offered)
    assert probe_auth_type(ews.server_url) == chosen
    assert ews.emulator.request_counts() == {}  # no EWS operation ran, no login was refused
    assert ews.emulator.auth_counts() == {"challenge": 1}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answering("404 Not Found"), ServerUnusable),
        (Answering("200 OK"), ServerUnusable),  # a web page
        (Answering("302 Found", [("Location", "https://elsewhere.example/")]), ServerUnusable),
        (Answering("401 Unauthorized", [("WWW-Authenticate", 'Bearer realm=""')]), NoSupportedSignIn),
        (Answering("503 Service Unavailable", [("Retry-After", "30")]), TransientError),
    ],
    ids=["404", "page", "redirect", "bearer-only", "busy"],
)
def test_the_probe_says_why_a_server_is_not_usable(answer: Answering, error: type[Exception]) -> None:
    with EmulatorServer(answer) as server, pytest.raises(error):
        probe_auth_type(f"{server.url}/EWS/Exchange.asmx")
    assert answer.hits == 1  # one request, the redirect not followed


def test_the_probe_goes_through_the_network_guard(ews: RunningExchangeEmulator, settings: Settings) -> None:
    settings.EXCHANGE_ALLOWED_NETWORKS = []  # loopback is inside: refused
    with pytest.raises(AddressNotAllowed):
        probe_auth_type(ews.server_url)
    assert ews.emulator.auth_counts() == {}


# --------------------------------------------------------------------------- connect: the stored sign-in and version


def test_the_connect_stores_the_probed_sign_in_and_the_reported_build(ews: RunningExchangeEmulator) -> None:
    login = verify_login(ews.user, ews.password, ews.server_url)
    assert login.credentials == ews.connected_credentials()
    assert login.credentials["auth_type"] == "ntlm"
    assert login.credentials["version"] == "15.1.2507.6"
    assert ews.emulator.auth_counts()["ntlm-signed-in"] == 1


def test_exchange_2019_reports_its_own_build(ews: RunningExchangeEmulator) -> None:
    ews.emulator.set_server_version(EXCHANGE_2019)
    login = verify_login(ews.user, ews.password, ews.server_url)
    assert login.credentials["version"] == "15.2.1544.4"
    provider = ExchangeProvider.from_credentials(login.credentials)
    assert provider.server_version() == "15.2.1544.4"  # given up front, before any request


@pytest.mark.parametrize("choice", ["ntlm", "basic"])
def test_the_users_choice_is_used_without_probing(
    ews: RunningExchangeEmulator, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    monkeypatch.setattr(connect, "probe_auth_type", lambda url: pytest.fail("probed despite a choice"))
    login = verify_login(ews.user, ews.password, ews.server_url, auth_type=choice)
    assert login.credentials["auth_type"] == choice
    assert ews.emulator.auth_counts()[f"{choice}-signed-in"] == 1


def test_an_unknown_choice_is_a_programming_error(ews: RunningExchangeEmulator) -> None:
    with pytest.raises(ValueError, match="auth_type"):
        verify_login(ews.user, ews.password, ews.server_url, auth_type="kerberos")
    assert ews.emulator.auth_counts() == {}


def test_credentials_stored_before_ntlm_support_sign_in_with_basic_as_exchange_2016(
    ews: RunningExchangeEmulator,
) -> None:
    stored = ews.credentials()  # email, password, server_url: no auth_type, no version
    login = ExchangeLogin.from_credentials(stored)
    assert (login.auth_type, login.version) == ("basic", "")
    provider = ExchangeProvider.from_credentials(stored)
    assert provider.server_version() == "15.1.0.0"  # exchangelib's Exchange 2016 until it answers
    assert provider.list_calendars()
    assert ews.emulator.auth_counts() == {"basic-signed-in": 1}
    assert ews.emulator.request_counts() == {"GetFolder": 1}


def test_ntlm_and_basic_logins_of_one_mailbox_do_not_share_exchangelib_sessions(
    ews: RunningExchangeEmulator,
) -> None:
    """exchangelib caches its Protocol per endpoint and credentials, ignoring the auth type."""
    ExchangeProvider.from_credentials(ews.credentials(auth_type="basic")).list_calendars()
    ExchangeProvider.from_credentials(ews.credentials(auth_type="ntlm")).list_calendars()
    assert ews.emulator.auth_counts()["basic-signed-in"] == 1
    assert ews.emulator.auth_counts()["ntlm-signed-in"] == 1


@pytest.mark.parametrize(
    ("build", "expected", "api"),
    [
        ("15.1.2507.6", "15.1.2507.6", "Exchange2016"),
        ("15.2.1544.4", "15.2.1544.4", "Exchange2016"),
        ("15.0.1497.2", "15.0.1497.2", "Exchange2013_SP1"),
        ("16.0.100.1", "16.0.100.1", "Exchange2016"),  # newer than exchangelib knows
        ("", "15.1.0.0", "Exchange2016"),
        ("not a build", "15.1.0.0", "Exchange2016"),
    ],
)
def test_a_stored_build_becomes_exchangelibs_version(build: str, expected: str, api: str) -> None:
    version = server_version(build)
    assert (str(version.build), version.api_version) == (expected, api)


def test_ntlm_messages_are_never_logged(
    ews: RunningExchangeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ews.emulator.set_auth_methods(["ntlm"])
    verify_login(ews.user, ews.password, ews.server_url)
    assert "NTLM step" not in caplog.text
    # "NTLMSSP\0" in base64, the start of every NTLM message: in no header exchangelib logs.
    assert "TlRMTVNTUA" not in caplog.text
    assert ews.password not in caplog.text


# --------------------------------------------------------------------------- Exchange Online


@pytest.mark.parametrize(
    "url",
    [f"https://{host}/EWS/Exchange.asmx" for host in EXCHANGE_ONLINE_HOSTS]
    + [
        "https://pod51013.outlook.com/ews/exchange.asmx",
        "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc",
        "https://eur01.partner.outlook.cn/EWS/Exchange.asmx",
        "HTTPS://Outlook.Office365.COM./EWS/Exchange.asmx",
        "http://outlook.office365.com:443/ews/exchange.asmx",
    ],
)
def test_microsoft_365_ews_hosts_are_exchange_online(url: str) -> None:
    assert is_exchange_online(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://mail.contoso.com/EWS/Exchange.asmx",
        "https://outlook.office365.com.evil.example/EWS/Exchange.asmx",
        "https://myoutlook.com/EWS/Exchange.asmx",
        "https://notoutlook.office365.us/EWS/Exchange.asmx",
        "https://outlook.contoso.com/EWS/Exchange.asmx",
    ],
)
def test_other_hosts_are_not(url: str) -> None:
    assert not is_exchange_online(url)


@pytest.fixture
def nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name the Exchange code resolves (each of its connections does first), recorded; the
    probe, the login and autodiscover fail the test if they are reached at all."""
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        resolved.append(host)
        raise AssertionError(f"an Exchange connection to {host} was attempted")

    monkeypatch.setattr(network, "resolve", resolve)
    monkeypatch.setattr(connect, "probe_auth_type", lambda url: pytest.fail(f"probed {url}"))
    monkeypatch.setattr(
        ExchangeProvider,
        "from_credentials",
        classmethod(lambda cls, *a, **k: pytest.fail("signed in")),
    )
    return resolved


@pytest.mark.parametrize(
    "typed",
    [
        "https://outlook.office365.com/EWS/Exchange.asmx",
        "https://outlook.office.com",  # a bare host: its /EWS/Exchange.asmx
        "https://webmail.apps.mil/EWS/Exchange.asmx",
        "https://outlook.office365.us/ews/exchange.asmx",
    ],
)
def test_a_typed_exchange_online_url_is_refused_before_any_request(
    typed: str, nothing_is_sent: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "discover_service_endpoint", lambda *a: pytest.fail("autodiscover ran"))
    with pytest.raises(ExchangeOnline) as refused:
        verify_login("erin@contoso.com", "erin-password-1", typed)
    assert refused.value.code == "exchange-online"
    assert nothing_is_sent == []


def test_a_configured_exchange_online_url_is_refused_too(
    nothing_is_sent: list[str], settings: Settings
) -> None:
    settings.EXCHANGE_SERVER_URL = ONLINE_URL
    with pytest.raises(ExchangeOnline):
        verify_login("erin@contoso.com", "erin-password-1")
    assert nothing_is_sent == []


def test_an_exchange_online_endpoint_from_autodiscover_gets_no_request(
    nothing_is_sent: list[str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Autodiscover asks the user's domain (that is fine); what it answers is never contacted."""
    settings.EXCHANGE_SERVER_URL = ""
    asked: list[str] = []

    def discover(email: str, password: str) -> str:
        asked.append(email)
        return ONLINE_URL

    monkeypatch.setattr(client, "discover_service_endpoint", discover)
    with pytest.raises(ExchangeOnline):
        verify_login("erin@contoso.com", "erin-password-1")
    assert asked == ["erin@contoso.com"]
    assert nothing_is_sent == []  # no name looked up: no request, no password to outlook.office365.com


# --------------------------------------------------------------------------- the emulator's sign-in


def ntlm_header(token: bytes, scheme: str = "NTLM") -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(token).decode()}", "Content-Type": "text/xml"}


def challenges(response: http.client.HTTPResponse) -> list[str]:
    return response.headers.get_all("WWW-Authenticate") or []


def post(conn: http.client.HTTPConnection, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn.request(
        "POST", "/EWS/Exchange.asmx", body=GET_FOLDER, headers=headers or {"Content-Type": "text/xml"}
    )
    response = conn.getresponse()
    response.read()
    return response


def connection(ews: RunningExchangeEmulator) -> http.client.HTTPConnection:
    parts = urlsplit(ews.url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_ntlm_signs_in_the_connection_its_three_legs_ride_on(
    ews: RunningExchangeEmulator, scheme: str
) -> None:
    """The legs on one kept-alive connection; its later requests need no Authorization; another
    connection does. requests_ntlm sends raw NTLM under either scheme, IIS takes both."""
    ntlm = spnego.client(ews.user, ews.password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    conn = connection(ews)
    anonymous = post(conn)
    assert anonymous.status == 401
    assert challenges(anonymous)[:2] == ["Negotiate", "NTLM"]
    assert anonymous.version == 11  # HTTP/1.1: the connection stays open
    assert not anonymous.will_close
    challenge = post(conn, ntlm_header(ntlm.step() or b"", scheme))
    assert challenge.status == 401
    [offered] = challenges(challenge)
    assert offered.startswith(f"{scheme} ")
    token = base64.b64decode(offered.split(" ", 1)[1])
    signed_in = post(conn, ntlm_header(ntlm.step(token) or b"", scheme))
    assert signed_in.status == 200
    assert post(conn).status == 200  # the connection is signed in
    other = connection(ews)
    assert post(other).status == 401  # another connection is not
    conn.close()
    other.close()
    assert ews.emulator.request_counts() == {"GetFolder": 2}
    assert ews.emulator.auth_counts() == {
        "challenge": 2,
        "ntlm-negotiate": 1,
        "ntlm-signed-in": 1,
        "ntlm-connection-reused": 1,
    }


def test_an_ntlm_answer_on_another_connection_is_refused(ews: RunningExchangeEmulator) -> None:
    ntlm = spnego.client(ews.user, ews.password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    first, second = connection(ews), connection(ews)
    challenge = post(first, ntlm_header(ntlm.step() or b""))
    token = base64.b64decode(challenge.headers["WWW-Authenticate"].split(" ", 1)[1])
    assert post(second, ntlm_header(ntlm.step(token) or b"")).status == 401
    first.close()
    second.close()
    assert ews.emulator.request_counts() == {"401": 1}


def test_a_changed_password_ends_a_signed_in_connection(ews: RunningExchangeEmulator) -> None:
    ews.emulator.set_auth_methods(["ntlm"])
    provider = ExchangeProvider.from_credentials(ews.credentials(auth_type="ntlm"))
    assert provider.list_calendars()
    ews.emulator.revoke(ews.user)
    with pytest.raises(AuthRevoked):
        provider.list_calendars()
    assert ews.emulator.request_counts() == {"GetFolder": 1, "401": 1}


def test_an_ntlm_only_server_refuses_basic_and_a_basic_only_one_ntlm(ews: RunningExchangeEmulator) -> None:
    ews.emulator.set_auth_methods(["ntlm"])
    conn = connection(ews)
    basic = base64.b64encode(f"{ews.user}:{ews.password}".encode()).decode()
    refused = post(conn, {"Authorization": f"Basic {basic}", "Content-Type": "text/xml"})
    assert refused.status == 401
    assert challenges(refused) == ["Negotiate", "NTLM"]
    conn.close()
    ews.emulator.set_auth_methods(["basic"])
    conn = connection(ews)
    ntlm = spnego.client(ews.user, ews.password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    refused = post(conn, ntlm_header(ntlm.step() or b""))
    assert refused.status == 401
    assert [h.split(" ")[0] for h in challenges(refused)] == ["Basic"]
    assert refused.will_close  # Basic-only: one request per connection, as before
    conn.close()
    assert ews.emulator.request_counts() == {"401": 2}


def test_basic_requests_still_close_their_connection(ews: RunningExchangeEmulator) -> None:
    conn = connection(ews)
    basic = base64.b64encode(f"{ews.user}:{ews.password}".encode()).decode()
    answer = post(conn, {"Authorization": f"Basic {basic}", "Content-Type": "text/xml"})
    assert answer.status == 200
    assert answer.version == 10
    assert answer.will_close
    conn.close()


def test_the_ntlm_user_file_is_the_emulators_own_and_empty_between_handshakes(
    ews: RunningExchangeEmulator,
) -> None:
    verify_login(ews.user, ews.password, ews.server_url, auth_type="ntlm")
    path = Path(os.environ["NTLM_USER_FILE"])
    assert path.name == f"exchange-emulator-ntlm-{os.getpid()}.users"
    assert path.parent == Path(os.environ.get("CALSYNC_VAR_DIR") or path.parent)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == ""


def test_the_emulator_reports_the_server_version_it_was_given(ews: RunningExchangeEmulator) -> None:
    ews.emulator.set_server_version(EXCHANGE_2019)
    conn = connection(ews)
    basic = base64.b64encode(f"{ews.user}:{ews.password}".encode()).decode()
    conn.request("POST", "/EWS/Exchange.asmx", body=GET_FOLDER, headers={"Authorization": f"Basic {basic}"})
    body = conn.getresponse().read()
    conn.close()
    assert b'MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4"' in body
    ews.emulator.reset()
    assert ews.emulator.server_version == EXCHANGE_2016
    assert ews.emulator.auth_methods == ("ntlm", "basic")


@pytest.mark.parametrize("methods", [[], ["digest"], ["ntlm", "kerberos"]])
def test_the_emulator_offers_ntlm_or_basic_only(methods: list[str]) -> None:
    with pytest.raises(ValueError, match="auth methods"):
        ExchangeEmulator(auth_methods=methods)


def test_the_control_api_switches_the_sign_in_and_the_version(ews: RunningExchangeEmulator) -> None:
    import requests

    answer = requests.post(
        f"{ews.url}/_control/auth", json={"methods": ["ntlm"], "server_version": "2019"}, timeout=5
    )
    assert answer.json() == {"methods": ["ntlm"], "server_version": "15.2.1544.4", "counts": {}}
    assert requests.get(f"{ews.url}/_control/auth", timeout=5).json()["methods"] == ["ntlm"]


# --------------------------------------------------------------------------- make run's demo mailbox


def test_the_demo_exchange_connects_with_ntlm_by_default(tmp_path: Path) -> None:
    from calendarsync.emulators import exchange_demo
    from calendarsync.providers.exchange.errors import AppPasswordRequired

    server = exchange_demo.start_exchange_emulator(port=0, var_dir=tmp_path)
    try:
        url = exchange_demo.server_url(server)
        login = verify_login(exchange_demo.DEMO_USER, exchange_demo.DEMO_APP_PASSWORD, url)
        assert login.credentials["auth_type"] == "ntlm"
        assert login.credentials["version"] == "15.2.1544.4"  # Exchange Server 2019
        assert [c.name for c in login.calendars] == ["Calendar"]
        with pytest.raises(AppPasswordRequired):  # two-factor on: the password alone is refused
            verify_login(exchange_demo.DEMO_USER, exchange_demo.DEMO_PASSWORD, url)
        basic = verify_login(exchange_demo.DEMO_USER, exchange_demo.DEMO_APP_PASSWORD, url, auth_type="basic")
        assert basic.credentials["auth_type"] == "basic"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "token",
    [b"NTLMSSP\x00\x01\x00\x00\x00garbage", b"NTLMSSP\x00\x03\x00\x00\x00garbage", b"\x60\x82 spnego", b""],
    ids=["bad-negotiate", "bad-authenticate", "spnego", "empty"],
)
def test_a_malformed_ntlm_message_is_a_refusal_not_a_server_error(
    ews: RunningExchangeEmulator, token: bytes
) -> None:
    conn = connection(ews)
    answer = post(conn, ntlm_header(token))
    conn.close()
    assert answer.status == 401
    assert ews.emulator.request_counts() == {"401": 1}


def test_a_malformed_answer_to_our_challenge_is_a_refusal(ews: RunningExchangeEmulator) -> None:
    ntlm = spnego.client(ews.user, ews.password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    conn = connection(ews)
    assert post(conn, ntlm_header(ntlm.step() or b"")).status == 401
    answer = post(conn, ntlm_header(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 40))
    conn.close()
    assert answer.status == 401
    assert ews.emulator.request_counts() == {"401": 1}
