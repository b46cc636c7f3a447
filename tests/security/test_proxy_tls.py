"""Finding 4 of issue #13: behind a TLS load balancer, OAuth works and HTTPS is enforced.

The load balancer ends TLS and forwards plain HTTP with ``X-Forwarded-Proto: https``. The
environment names that header (SECURE_PROXY_SSL_HEADER), HSTS and the redirect to HTTPS; bad values
stop start-up naming the variable. With the header trusted, a proxied request builds https://
redirect URIs and the Google and Microsoft callbacks complete, with no OAUTHLIB_INSECURE_TRANSPORT:
here the Google emulator itself is served over HTTPS, as Google is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httplib2  # type: ignore[import-untyped]
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.emulators.google import GoogleEmulator
from calendarsync.emulators.tls import TestAuthority, TlsEmulatorServer
from calendarsync.models import AccountState, CalendarAccount, Provider
from tests.calendarsync.conftest_microsoft import (  # noqa: F401  (fixtures)
    RunningMicrosoftEmulator,
    microsoft_emulator,
    microsoft_emulator_servers,
)
from tests.conftest import PASSWORD
from tests.security.env_settings import settings_under

PUBLIC_ORIGIN = "https://testserver"  # what the browser sees; Django's test client is "testserver"
PROXY_ENV = {
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "yes",
}
TLS_SETTINGS = (
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
)


# --- the environment --------------------------------------------------------------------------------


def test_proxy_header_hsts_and_redirect_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings_under(monkeypatch, **PROXY_ENV)

    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert loaded["SECURE_HSTS_PRELOAD"] is True


def test_by_default_no_proxy_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_ENV, "TRUSTED_PROXY_COUNT"):
        monkeypatch.delenv(name, raising=False)

    loaded = settings_under(monkeypatch)

    assert loaded["SECURE_PROXY_SSL_HEADER"] is None
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0
    assert loaded["ALLAUTH_TRUSTED_PROXY_COUNT"] == 0


def test_login_limits_count_the_client_behind_trusted_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_under(monkeypatch, TRUSTED_PROXY_COUNT="1")["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto:"),
        ("SECURE_PROXY_SSL_HEADER", "X Forwarded Proto: https"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "maybe"),
        ("SECURE_HSTS_PRELOAD", "sometimes"),
        ("SECURE_SSL_REDIRECT", "please"),
        ("TRUSTED_PROXY_COUNT", "-1"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        settings_under(monkeypatch, **{name: value})


@pytest.fixture
def behind_tls_proxy(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings a deployment behind a TLS load balancer gets from PROXY_ENV."""
    loaded = settings_under(monkeypatch, **PROXY_ENV)
    for name in TLS_SETTINGS:
        setattr(settings, name, loaded[name])


@pytest.fixture
def proxied_client(behind_tls_proxy: None, owner: User) -> Client:
    """The browser's requests as the load balancer forwards them: plain HTTP, marked as HTTPS (and,
    as a browser sends, with a Host header: the test client's default would add its port 80)."""
    client = Client(headers={"X-Forwarded-Proto": "https", "Host": "testserver"})
    client.force_login(owner)
    return client


def test_proxied_https_request_is_served_with_hsts(proxied_client: Client) -> None:
    response = proxied_client.get(reverse("activities:list"))

    assert response.status_code == 200
    assert response.wsgi_request.is_secure()
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_plain_http_request_is_redirected_to_https(behind_tls_proxy: None, owner_client: Client) -> None:
    response = owner_client.get(reverse("activities:list"))

    assert response.status_code == 301
    assert response["Location"] == PUBLIC_ORIGIN + reverse("activities:list")


def test_a_login_posted_through_the_proxy_passes_the_csrf_origin_check(
    behind_tls_proxy: None, owner: User
) -> None:
    browser = Client(
        enforce_csrf_checks=True,
        headers={"X-Forwarded-Proto": "https", "Host": "testserver", "Origin": PUBLIC_ORIGIN},
    )
    browser.get(reverse("account_login"))

    response = browser.post(
        reverse("account_login"),
        {
            "login": owner.email,
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("activities:list")


def test_a_client_cannot_claim_https_without_the_setting(owner_client: Client) -> None:
    response = owner_client.get(reverse("activities:list"), headers={"X-Forwarded-Proto": "https"})

    assert not response.wsgi_request.is_secure()


# --- OAuth through the proxy --------------------------------------------------------------------------


def submit_consent(auth_url: str, *, email: str, verify: str) -> str:
    """Allow on the emulator's consent screen as a person would; returns the callback path + query."""
    split = urlsplit(auth_url)
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    form: dict[str, Any] = {key: value for key, value in query.items() if key != "scope"}
    form.update(requested_scope=query["scope"], email=email, scope=query["scope"].split(), decision="allow")
    response = requests.post(
        f"{split.scheme}://{split.netloc}{split.path}",
        data=form,
        allow_redirects=False,
        timeout=10,
        verify=verify,
    )
    assert response.status_code in {302, 303}, response.text
    callback = urlsplit(response.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == PUBLIC_ORIGIN
    return f"{callback.path}?{callback.query}"


def start_connect(client: Client, view: str) -> str:
    response = client.post(reverse(view))
    assert response.status_code == 302, response.content
    auth_url = str(response["Location"])
    [redirect_uri] = parse_qs(urlsplit(auth_url).query)["redirect_uri"]
    assert redirect_uri.startswith(PUBLIC_ORIGIN + "/"), redirect_uri
    return auth_url


@dataclass(frozen=True)
class GoogleOverTls:
    server: TlsEmulatorServer
    emulator: GoogleEmulator
    ca_bundle: Path
    user: str = "alice@example.com"


@pytest.fixture(scope="module")
def google_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoogleOverTls]:
    authority = TestAuthority()
    bundle = authority.write_ca_bundle(tmp_path_factory.mktemp("google-ca") / "ca.pem")
    emulator = GoogleEmulator()
    with TlsEmulatorServer(emulator, authority.server_context()) as server:
        assert isinstance(server, TlsEmulatorServer)
        yield GoogleOverTls(server=server, emulator=emulator, ca_bundle=bundle)


@pytest.fixture
def google_over_tls(
    google_tls_server: GoogleOverTls, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GoogleOverTls]:
    """Google's endpoints over HTTPS, the callback registered at the public https:// origin only."""
    google = google_tls_server
    google.emulator.reset()
    google.emulator.register_client(
        "proxy-client", "proxy-secret", [PUBLIC_ORIGIN + reverse("calendarsync:google_callback")]
    )
    google.emulator.add_user(google.user)
    base = google.server.url
    settings.GOOGLE_CLIENT_ID = "proxy-client"
    settings.GOOGLE_CLIENT_SECRET = "proxy-secret"
    settings.GOOGLE_AUTH_URI = f"{base}/o/oauth2/auth"
    settings.GOOGLE_TOKEN_URI = f"{base}/token"
    settings.GOOGLE_REVOKE_URI = f"{base}/revoke"
    settings.GOOGLE_API_BASE_URL = f"{base}/"
    settings.GOOGLE_BATCH_URI = f"{base}/batch/calendar/v3"
    # Production has no plain-HTTP allowance: every OAuth URL must be https://.
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    # Trust the emulator's test CA, as production trusts Google's (requests for OAuth, httplib2 for the API).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(google.ca_bundle))
    monkeypatch.setattr(httplib2, "CA_CERTS", str(google.ca_bundle))
    yield google
    google.emulator.reset()


@pytest.mark.django_db
def test_google_connect_completes_through_the_tls_proxy(
    google_over_tls: GoogleOverTls, proxied_client: Client, owner: User
) -> None:
    auth_url = start_connect(proxied_client, "calendarsync:connect_google")
    callback = submit_consent(auth_url, email=google_over_tls.user, verify=str(google_over_tls.ca_bundle))

    response = proxied_client.get(callback, follow=True)

    account = CalendarAccount.objects.get(user=owner)
    assert (account.provider, account.email, account.state) == (
        Provider.GOOGLE,
        google_over_tls.user,
        AccountState.ACTIVE,
    )
    assert account.calendars.exists()
    assert f"Connected {google_over_tls.user}." in response.content.decode()


@pytest.mark.django_db
def test_microsoft_connect_completes_through_the_tls_proxy(
    microsoft_emulator: RunningMicrosoftEmulator,  # noqa: F811
    proxied_client: Client,
    owner: User,
) -> None:
    microsoft_emulator.emulator.register_client(
        microsoft_emulator.client_id,
        microsoft_emulator.client_secret,
        [PUBLIC_ORIGIN + reverse("calendarsync:microsoft_callback")],
    )
    auth_url = start_connect(proxied_client, "calendarsync:connect_microsoft")
    callback = submit_consent(
        auth_url, email=microsoft_emulator.user, verify=str(microsoft_emulator.ca_bundle)
    )

    response = proxied_client.get(callback, follow=True)

    account = CalendarAccount.objects.get(user=owner)
    assert (account.provider, account.email, account.state) == (
        Provider.MICROSOFT,
        microsoft_emulator.user,
        AccountState.ACTIVE,
    )
    assert f"Connected {microsoft_emulator.user}." in response.content.decode()
