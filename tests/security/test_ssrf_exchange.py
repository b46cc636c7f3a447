"""Issue #13, finding 1: no SSRF through the Exchange server URL or autodiscover.

CalSync sends the user's e-mail and password (Basic auth) to the server URL they type or that
autodiscover finds. Only public addresses may get them, plus EXCHANGE_ALLOWED_NETWORKS; the rule
holds for the address the socket actually connects to (no DNS rebinding), for every URL
autodiscover tries or answers, and in every sync run. The connect page says one thing for every
network-level failure, so it tells nothing about the network behind CalSync, and a user has a
limited number of attempts.

The suite allows loopback (the emulators' address) for every test (tests/conftest.py); tests
here that play the attacker empty the allowlist, so loopback stands for any inside address.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from exchangelib import BASIC, Configuration, Credentials, close_connections
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.errors import EWSError
from exchangelib.protocol import BaseProtocol, FailFast
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.actions import do_connect_account, do_start_sync
from calendarsync.connect import exchange as views_exchange
from calendarsync.connect.attempts import EXCHANGE_CONNECT_WINDOW
from calendarsync.emulators.exchange import EWS_PATH
from calendarsync.emulators.server import EmulatorServer
from calendarsync.emulators.tls import TestAuthority, TlsEmulatorServer
from calendarsync.models import AccountState, CalendarAccount, Provider
from calendarsync.providers.base import RemoteCalendarInfo
from calendarsync.providers.exchange import client as exchange_client
from calendarsync.providers.exchange import network
from calendarsync.sync import runner
from calsync_project import env
from tests.calendarsync import conftest_exchange
from tests.calendarsync.conftest_exchange import (
    EXCHANGE_APP_PASSWORD,
    EXCHANGE_TWO_FACTOR_PASSWORD,
    EXCHANGE_TWO_FACTOR_USER,
    RunningExchangeEmulator,
)

pytestmark = pytest.mark.django_db

URL = "/preferences/calendar-sync/connect/exchange/"
PUBLIC = "93.184.216.34"  # a public address (never connected to: the suite blocks the network)
REPO = Path(__file__).resolve().parents[2]

# The Exchange emulator's fixtures, for the tests here.
exchange_emulator_server = conftest_exchange.exchange_emulator_server
exchange_emulator = conftest_exchange.exchange_emulator


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _fresh_exchangelib_sessions() -> Iterator[None]:
    """exchangelib keeps a Protocol and its open sessions per endpoint and login, across tests."""
    close_connections()
    yield
    close_connections()


@pytest.fixture
def no_allowed_networks(settings: Settings) -> None:
    """A production install: nothing allowed beyond public addresses (loopback is 'inside')."""
    settings.EXCHANGE_ALLOWED_NETWORKS = []


class Answering:
    """A web server that is not Exchange: it answers every request with ``status`` and counts them."""

    def __init__(self, status: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.headers = list(headers)
        self.hits = 0

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        self.hits += 1
        start_response(self.status, [("Content-Type", "text/html"), *self.headers])
        return [f"<h1>{self.status}</h1>".encode()]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class FakeDns:
    """Answers chosen names with chosen addresses; each lookup takes the next answer, the last repeats."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def answer(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.lookups.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        results: list[tuple[Any, ...]] = []
        for address in addresses:
            if ":" in address:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return results


REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (address, port) a socket tries to connect to, on top of the suite's loopback-only guard."""
    seen: list[tuple[str, int]] = []
    inner = socket.socket.connect

    def recording(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple):
            seen.append((str(address[0]), int(address[1])))
        return inner(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    return seen


def post(client: Client, email: str, password: str, server_url: str) -> Any:
    return client.post(URL, {"email": email, "password": password, "server_url": server_url})


def errors(response: Any) -> str:
    """The form's error lists, as the page shows them."""
    html = response.content.decode()
    return " | ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


# --------------------------------------------------------------------------- the address rule


REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104  (an address to refuse, not one to bind)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::10.0.0.1",  # IPv4-compatible
    "::127.0.0.1",
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "not-an-address",
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_inside_addresses_are_refused_v4_v6_and_ipv4_in_ipv6(address: str, no_allowed_networks: None) -> None:
    assert not network.address_allowed(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str, no_allowed_networks: None) -> None:
    assert network.address_allowed(address)


def test_allowed_networks_open_an_inside_network_and_only_that(settings: Settings) -> None:
    settings.EXCHANGE_ALLOWED_NETWORKS = [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    ]
    assert network.address_allowed("10.20.3.4")
    assert network.address_allowed("::ffff:10.20.3.4")  # the same server, on a dual-stack socket
    assert network.address_allowed("fd00::25")
    for still_refused in ("10.21.0.1", "127.0.0.1", "169.254.169.254", "192.168.1.1", "fe80::1"):
        assert not network.address_allowed(still_refused)


def test_allowed_networks_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "EXCHANGE_ALLOWED_NETWORKS"
    monkeypatch.setenv(name, "10.20.0.0/16, fd00::/8 ,192.0.2.7")
    assert env.env_networks(name, []) == [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    ]
    monkeypatch.setenv(name, "")
    assert env.env_networks(name, []) == []
    monkeypatch.delenv(name)
    assert env.env_networks(name, []) == []
    for bad in ("10.0.0.0/33", "intranet", "10.0.0.0/8;fd00::/8"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ImproperlyConfigured, match=name):
            env.env_networks(name, [])


def settings_process(**variables: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "EXCHANGE_ALLOWED_NETWORKS"}
    environment.update({k: v for k, v in variables.items() if v is not None})
    code = "import django; django.setup(); from django.conf import settings; print(settings.EXCHANGE_ALLOWED_NETWORKS)"
    return subprocess.run(  # noqa: S603  (a fixed command line)
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**environment, "DJANGO_SETTINGS_MODULE": "calsync_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_settings_allow_nothing_by_default_and_refuse_a_bad_value() -> None:
    unset = settings_process()
    assert unset.returncode == 0, unset.stderr
    assert unset.stdout.strip() == "[]"
    bad = settings_process(EXCHANGE_ALLOWED_NETWORKS="10.0.0.0/8,not-a-network")
    assert bad.returncode != 0
    assert "ImproperlyConfigured" in bad.stderr
    assert "EXCHANGE_ALLOWED_NETWORKS" in bad.stderr


def test_make_run_allows_loopback_for_the_local_emulator() -> None:
    makefile = (REPO / "Makefile").read_text()
    run_env = makefile.split("RUN_ENV :=", 1)[1].split("\n\n", 1)[0]
    assert "EXCHANGE_ALLOWED_NETWORKS=127.0.0.0/8,::1/128" in run_env


# --------------------------------------------------------------------------- the connection itself


@pytest.fixture
def website() -> Iterator[tuple[EmulatorServer, Answering]]:
    app = Answering("200 OK")
    with EmulatorServer(app) as server:
        yield server, app


def guarded_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", network.GuardedHTTPAdapter())
    return session


def test_dns_rebinding_the_address_is_checked_when_connecting(
    settings: Settings,
    website: tuple[EmulatorServer, Answering],
    dns: FakeDns,
    connects: list[tuple[str, int]],
) -> None:
    """A name that is public when checked and inside when connected to gets nowhere."""
    server, app = website
    settings.EXCHANGE_ALLOWED_NETWORKS = []
    dns.answer("mail.rebind.test", [PUBLIC], ["127.0.0.1"])
    url = f"http://mail.rebind.test:{port_of(server.url)}/EWS/Exchange.asmx"
    network.check_url(url)  # the check before: the name is public
    with pytest.raises(requests.ConnectionError) as failure:
        guarded_session().get(url, timeout=5)
    assert network.blocked_address_in(failure.value) is not None
    assert dns.lookups == ["mail.rebind.test", "mail.rebind.test"]  # resolved again to connect
    assert app.hits == 0
    assert connects == []  # not even a TCP handshake with the inside address


def test_the_guard_connects_to_an_allowed_address_and_skips_refused_ones(
    settings: Settings,
    website: tuple[EmulatorServer, Answering],
    dns: FakeDns,
    connects: list[tuple[str, int]],
) -> None:
    server, app = website
    settings.EXCHANGE_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    dns.answer("mail.mixed.test", ["10.0.0.7", "127.0.0.1"])
    response = guarded_session().get(f"http://mail.mixed.test:{port_of(server.url)}/", timeout=5)
    assert response.status_code == 200
    assert app.hits == 1
    assert [address for address, _port in connects] == ["127.0.0.1"]  # 10.0.0.7 was never tried


def test_the_peer_actually_connected_to_is_checked(
    settings: Settings, website: tuple[EmulatorServer, Answering], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the resolver said, the socket's peer decides (e.g. a resolver or a kernel that
    routes somewhere else)."""
    server, app = website
    settings.EXCHANGE_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    monkeypatch.setattr(socket.socket, "getpeername", lambda self: ("169.254.169.254", 80))
    with pytest.raises(requests.ConnectionError) as failure:
        guarded_session().get(server.url + "/", timeout=5)
    assert network.blocked_address_in(failure.value) is not None
    assert app.hits == 0  # connected, but nothing was sent


def test_through_an_outgoing_proxy_the_target_is_checked_before_the_request(
    no_allowed_networks: None, website: tuple[EmulatorServer, Answering], connects: list[tuple[str, int]]
) -> None:
    server, app = website
    with pytest.raises(requests.ConnectionError) as failure:
        guarded_session().get(server.url + "/", proxies={"http": "http://127.0.0.1:9"}, timeout=5)
    assert network.blocked_address_in(failure.value) is not None
    assert connects == []  # not even the proxy was asked
    assert app.hits == 0


def test_tls_through_the_guard_still_checks_the_certificate_for_the_url_host(
    tmp_path: Path, website: tuple[EmulatorServer, Answering], dns: FakeDns
) -> None:
    """The guard only opens the socket: TLS is checked against the name in the URL (SNI and
    certificate), not against the address it connected to."""
    _plain, app = website
    authority = TestAuthority()
    bundle = authority.write_ca_bundle(tmp_path / "ca.pem")
    with TlsEmulatorServer(app, authority.server_context()) as server:
        session = requests.Session()
        session.mount("https://", network.GuardedHTTPAdapter())
        port = port_of(server.url)
        assert session.get(f"https://localhost:{port}/", verify=str(bundle), timeout=5).status_code == 200
        dns.answer("mail.other-name.test", ["127.0.0.1"])
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://mail.other-name.test:{port}/", verify=str(bundle), timeout=5)
    assert app.hits == 1


def test_exchangelib_sessions_use_the_guard_for_ews_and_autodiscover(
    monkeypatch: pytest.MonkeyPatch, no_allowed_networks: None, website: tuple[EmulatorServer, Answering]
) -> None:
    """Autodiscover's credentialed request to a URL it tries (here: inside) is refused too."""
    server, app = website
    monkeypatch.setattr(BaseProtocol, "HTTP_ADAPTER_CLS", requests.adapters.HTTPAdapter)
    tried: list[str] = []

    class Autodiscovery:
        """exchangelib's Autodiscovery, reduced to one attempt at a URL inside."""

        def __init__(self, email: str, credentials: Credentials) -> None:
            self.email, self.credentials = email, credentials

        def discover(self) -> Any:
            url = server.url + "/autodiscover/autodiscover.svc"
            tried.append(url)
            config = Configuration(
                service_endpoint=url, credentials=self.credentials, auth_type=BASIC, retry_policy=FailFast()
            )
            AutodiscoverProtocol(config=config).get_user_settings(user=self.email)
            raise AssertionError("autodiscover reached a server inside")

    monkeypatch.setattr(exchange_client, "Autodiscovery", Autodiscovery)
    with pytest.raises(EWSError) as failure:
        exchange_client.discover_service_endpoint("erin@contoso.test", "erin-password-1")
    assert network.blocked_address_in(failure.value) is not None
    assert tried
    assert app.hits == 0
    assert isinstance(AutodiscoverProtocol.get_adapter(), network.GuardedHTTPAdapter)


# --------------------------------------------------------------------------- the connect page


@pytest.fixture
def not_exchange() -> Iterator[dict[str, tuple[str, Answering | None]]]:
    """Servers on loopback that are not Exchange: a 404, a 401, a web page; and a closed port."""
    apps = {
        "404": Answering("404 Not Found"),
        "401": Answering("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="intranet"')]),
        "page": Answering("200 OK"),
    }
    with (
        EmulatorServer(apps["404"]) as s404,
        EmulatorServer(apps["401"]) as s401,
        EmulatorServer(apps["page"]) as spage,
    ):
        yield {
            "404": (s404.url + EWS_PATH, apps["404"]),
            "401": (s401.url + EWS_PATH, apps["401"]),
            "page": (spage.url + EWS_PATH, apps["page"]),
            "closed": (f"http://127.0.0.1:{closed_port()}{EWS_PATH}", None),
        }


def test_inside_servers_all_get_one_message_and_no_request(
    owner_client: Client,
    owner: User,
    settings: Settings,
    no_allowed_networks: None,
    exchange_emulator: RunningExchangeEmulator,
    not_exchange: dict[str, tuple[str, Answering | None]],
    connects: list[tuple[str, int]],
) -> None:
    """The oracle: an open port answering 404, one answering 401, a closed port, Exchange itself with
    the right password, the metadata service: one answer, and nothing sent to any of them."""
    settings.DEBUG = True  # plain http passes the form: the network rule is what is tested
    targets = {name: url for name, (url, _app) in not_exchange.items()}
    targets["exchange"] = exchange_emulator.server_url
    targets["metadata"] = "http://169.254.169.254/latest/meta-data/"
    targets["mapped"] = f"http://[::ffff:127.0.0.1]:{port_of(exchange_emulator.url)}{EWS_PATH}"
    answers = {}
    for name, url in targets.items():
        response = post(owner_client, exchange_emulator.user, exchange_emulator.password, url)
        answers[name] = (response.status_code, errors(response))
    assert set(answers.values()) == {(400, views_exchange.NO_CONNECTION.join(["<li>", "</li>"]))}
    assert all(app is None or app.hits == 0 for _url, app in not_exchange.values())
    assert not any(exchange_emulator.emulator.request_counts().values())
    target_ports = {port_of(url) for name, url in targets.items() if name != "metadata"}
    assert not [c for c in connects if c[1] in target_ports or c[0] == "169.254.169.254"]
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_every_network_failure_has_one_message_and_the_password_its_own(
    owner_client: Client,
    owner: User,
    exchange_emulator: RunningExchangeEmulator,
    not_exchange: dict[str, tuple[str, Answering | None]],
    dns: FakeDns,
) -> None:
    """Where loopback is allowed (the tests, a self-hosted install): a 404, a web page, a closed
    port, a name that does not resolve and a TLS error read alike; once an Exchange server answered,
    a wrong password and a missing app password have their own messages (C5)."""
    dns.answer("mail.nowhere.test", [])
    port = port_of(exchange_emulator.url)
    targets = {name: not_exchange[name][0] for name in ("404", "page", "closed")}
    targets["no dns"] = "https://mail.nowhere.test/EWS/Exchange.asmx"
    targets["tls"] = f"https://127.0.0.1:{port}{EWS_PATH}"  # https to a plain-http port
    answers = {
        name: errors(post(owner_client, exchange_emulator.user, exchange_emulator.password, url))
        for name, url in targets.items()
    }
    assert set(answers.values()) == {views_exchange.NO_CONNECTION.join(["<li>", "</li>"])}

    wrong = post(owner_client, exchange_emulator.user, "not-the-password", exchange_emulator.server_url)
    assert views_exchange.WRONG_LOGIN in errors(wrong)
    exchange_emulator.emulator.add_user(
        EXCHANGE_TWO_FACTOR_USER,
        EXCHANGE_TWO_FACTOR_PASSWORD,
        two_factor=True,
        app_password=EXCHANGE_APP_PASSWORD,
    )
    two_factor = post(
        owner_client, EXCHANGE_TWO_FACTOR_USER, EXCHANGE_TWO_FACTOR_PASSWORD, exchange_emulator.server_url
    )
    assert 'id="app-password-help"' in two_factor.content.decode()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_plain_http_to_loopback_is_refused_without_debug(
    owner_client: Client,
    settings: Settings,
    no_allowed_networks: None,
    exchange_emulator: RunningExchangeEmulator,
    connects: list[tuple[str, int]],
) -> None:
    settings.DEBUG = False
    for url in (exchange_emulator.server_url, f"http://localhost:{port_of(exchange_emulator.url)}{EWS_PATH}"):
        response = post(owner_client, exchange_emulator.user, exchange_emulator.password, url)
        assert response.status_code == 400
        assert "Enter the server&#x27;s https:// address" in response.content.decode()
    assert not any(exchange_emulator.emulator.request_counts().values())
    assert not [c for c in connects if c[1] == port_of(exchange_emulator.url)]


def test_dns_rebinding_on_the_connect_page_sends_no_password(
    owner_client: Client,
    owner: User,
    settings: Settings,
    no_allowed_networks: None,
    exchange_emulator: RunningExchangeEmulator,
    dns: FakeDns,
    connects: list[tuple[str, int]],
) -> None:
    settings.DEBUG = True
    dns.answer("mail.rebind.test", [PUBLIC], ["127.0.0.1"])
    url = f"http://mail.rebind.test:{port_of(exchange_emulator.url)}{EWS_PATH}"
    response = post(owner_client, exchange_emulator.user, exchange_emulator.password, url)
    assert errors(response) == views_exchange.NO_CONNECTION.join(["<li>", "</li>"])
    assert len(dns.lookups) >= 2  # checked, then resolved again (and refused) when connecting
    assert not any(exchange_emulator.emulator.request_counts().values())
    assert connects == []
    assert not CalendarAccount.objects.filter(user=owner).exists()


@pytest.mark.parametrize(
    "answer",
    [
        "https://169.254.169.254/EWS/Exchange.asmx",
        "https://10.0.0.5/EWS/Exchange.asmx",
        "https://[::ffff:127.0.0.1]/EWS/Exchange.asmx",
        "https://[fd00::5]/EWS/Exchange.asmx",
        "https://ews.inside.test/EWS/Exchange.asmx",  # a name that resolves inside
        "http://ews.contoso.test/EWS/Exchange.asmx",  # plain http
    ],
)
def test_autodiscover_answers_pointing_inside_are_refused(
    owner_client: Client,
    owner: User,
    settings: Settings,
    no_allowed_networks: None,
    monkeypatch: pytest.MonkeyPatch,
    dns: FakeDns,
    connects: list[tuple[str, int]],
    answer: str,
) -> None:
    settings.EXCHANGE_SERVER_URL = ""
    dns.answer("ews.inside.test", ["10.9.8.7"])
    dns.answer("ews.contoso.test", [PUBLIC])
    monkeypatch.setattr(exchange_client, "discover_service_endpoint", lambda email, password: answer)
    response = post(owner_client, "erin@contoso.test", "erin-password-1", "")
    assert response.status_code == 400
    assert errors(response) == views_exchange.NOT_FOUND_BY_AUTODISCOVER.join(["<li>", "</li>"])
    assert connects == []
    assert not CalendarAccount.objects.filter(user=owner).exists()


# --------------------------------------------------------------------------- sync runs


def test_sync_runs_never_reach_an_address_that_is_not_allowed(
    owner: User, settings: Settings, exchange_emulator: RunningExchangeEmulator
) -> None:
    """An account saved while its server was allowed (or rebound since): the next run stops at
    the connection and says why; the server gets nothing."""
    account = do_connect_account(
        acting_user=owner,
        provider=Provider.EXCHANGE,
        email=exchange_emulator.user,
        credentials=exchange_emulator.credentials(),
        calendars=[
            RemoteCalendarInfo(external_id="calendar", name="Calendar", is_primary=True, can_write=True)
        ],
        state=AccountState.ACTIVE,
    )
    do_start_sync(acting_user=owner, account=account)
    settings.EXCHANGE_ALLOWED_NETWORKS = []
    exchange_emulator.emulator.reset_counts()
    outcome = runner.run_account_sync(account.pk, now=timezone.now())
    assert outcome.status == runner.RunStatus.FAILED
    account.refresh_from_db()
    assert account.state == AccountState.ERROR  # a permanent failure: no retries against it
    assert not any(exchange_emulator.emulator.request_counts().values())


# --------------------------------------------------------------------------- attempts per user


def test_connect_attempts_are_limited_per_user(
    owner_client: Client,
    colleague_client: Client,
    settings: Settings,
    exchange_emulator: RunningExchangeEmulator,
) -> None:
    settings.EXCHANGE_CONNECT_MAX_ATTEMPTS = 3
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            response = post(owner_client, exchange_emulator.user, "guess", exchange_emulator.server_url)
            assert views_exchange.WRONG_LOGIN in errors(response)
        assert exchange_emulator.emulator.request_counts()["401"] == 3
        refused = post(
            owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
        )
        assert refused.status_code == 429
        assert errors(refused) == views_exchange.TOO_MANY_ATTEMPTS.join(["<li>", "</li>"])
        assert exchange_emulator.emulator.request_counts()["401"] == 3  # nothing was sent
        assert f'value="{exchange_emulator.server_url}"' in refused.content.decode()
        # Another user has their own attempts.
        other = post(colleague_client, exchange_emulator.user, "guess", exchange_emulator.server_url)
        assert views_exchange.WRONG_LOGIN in errors(other)
    with time_machine.travel(start + EXCHANGE_CONNECT_WINDOW + dt.timedelta(seconds=1), tick=False):
        again = post(
            owner_client, exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url
        )
        assert again.status_code == 302


def test_an_invalid_form_is_not_an_attempt(owner_client: Client, settings: Settings) -> None:
    settings.EXCHANGE_CONNECT_MAX_ATTEMPTS = 1
    for _ in range(3):
        response = owner_client.post(URL, {"email": "not-an-address", "password": "pw"})
        assert views_exchange.TOO_MANY_ATTEMPTS not in response.content.decode()
