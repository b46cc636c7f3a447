"""Finding 9 of issue #13: error reports never show a password, an OAuth code's verifier or a token.

Every view that takes a password marks it with ``sensitive_post_parameters``; the Exchange connect
view and the OAuth callbacks also hide the local variables of every frame below them
(``sensitive_variables``), where the password or the tokens sit. The report checked is Django's
own (what a 500 e-mail to ADMINS, or the debug page, would show).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.signals import got_request_exception
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from accounts.models import Company, User
from calendarsync.connect import google as google_connect
from calendarsync.connect import microsoft as microsoft_connect
from calendarsync.connect.forms import ExchangeConnectForm
from calendarsync.providers.google import oauth as google_oauth
from calendarsync.providers.microsoft import oauth as microsoft_oauth
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

EXCHANGE_PASSWORD = "exchange-Pa55word-never-shown"
REFRESH_TOKEN = "1//refresh-token-never-shown"


@pytest.fixture
def superuser(company: Company) -> User:
    return make_user(company, "root@acme.test", is_staff=True, is_superuser=True)


def _client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# Every form that takes a password or a code: (who posts, URL, the secret fields). allauth's own
# reauthentication, password reset and login code views did not mark theirs.
PASSWORD_FORMS: list[tuple[str, Callable[[User], str], tuple[str, ...]]] = [
    ("anonymous", lambda _user: reverse("account_login"), ("password",)),
    ("anonymous", lambda _user: reverse("admin:login"), ("password",)),
    ("owner", lambda _user: reverse("account_change_password"), ("oldpassword", "password1", "password2")),
    ("owner", lambda _user: reverse("account_reauthenticate"), ("password",)),
    (
        "anonymous",
        lambda user: reverse(
            "account_reset_password_from_key", kwargs={"uidb36": "1", "key": "set-password"}
        ),
        ("password1", "password2"),
    ),
    ("anonymous", lambda _user: reverse("account_confirm_login_code"), ("code",)),
    ("owner", lambda _user: reverse("calendarsync:connect_exchange"), ("password",)),
    ("superuser", lambda _user: reverse("admin:accounts_user_add"), ("password1", "password2")),
    (
        "superuser",
        lambda user: reverse("admin:auth_user_password_change", args=[user.pk]),
        ("password1", "password2"),
    ),
]


@pytest.mark.parametrize(("who", "url", "fields"), PASSWORD_FORMS)
def test_every_password_form_marks_its_password_sensitive(
    request: pytest.FixtureRequest,
    owner: User,
    who: str,
    url: Callable[[User], str],
    fields: tuple[str, ...],
) -> None:
    user = None if who == "anonymous" else request.getfixturevalue(who)
    data = dict.fromkeys(fields, "wrong-password-1") | {"login": owner.email, "username": owner.email}

    response = _client_for(user).post(url(user or owner), data)

    hidden = getattr(response.wsgi_request, "sensitive_post_parameters", None)
    assert hidden is not None, f"{url(user or owner)} does not hide its POST parameters"
    assert hidden == "__ALL__" or set(fields) <= set(hidden)


@pytest.fixture
def error_reports() -> Iterator[list[str]]:
    """The HTML report Django writes for every unhandled exception (the debug page, the ADMINS mail)."""
    reports: list[str] = []

    def report(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        exc_type, exc_value, traceback = sys.exc_info()
        reporter = ExceptionReporter(request, exc_type, exc_value, traceback, is_email=True)
        reports.append(reporter.get_traceback_html())

    got_request_exception.connect(report)
    yield reports
    got_request_exception.disconnect(report)


def test_exchange_connect_error_report_hides_the_password(
    error_reports: list[str], owner_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def breaking_check(self: ExchangeConnectForm) -> dict[str, Any]:
        password = self.data["password"]  # a callee holding the password when something breaks
        raise RuntimeError(f"the connect check broke ({len(password)} characters)")

    monkeypatch.setattr(ExchangeConnectForm, "clean", breaking_check)
    client = Client(raise_request_exception=False)
    client.cookies = owner_client.cookies

    response = client.post(
        reverse("calendarsync:connect_exchange"),
        {"email": "owner@exchange.test", "password": EXCHANGE_PASSWORD, "server_url": ""},
    )

    assert response.status_code == 500
    [report] = error_reports
    assert "the connect check broke" in report  # the report is there, and it is this one
    assert EXCHANGE_PASSWORD not in report


def _raise_holding_a_token(*args: Any) -> Any:
    refresh_token = REFRESH_TOKEN  # what a token exchange holds when something breaks
    raise RuntimeError(f"the token exchange broke ({len(refresh_token)} characters)")


@pytest.mark.parametrize(
    ("oauth_module", "session_key", "callback"),
    [
        (google_oauth, google_connect.GOOGLE_SESSION_KEY, "calendarsync:google_callback"),
        (microsoft_oauth, microsoft_connect.MICROSOFT_SESSION_KEY, "calendarsync:microsoft_callback"),
    ],
)
def test_oauth_callback_error_report_hides_tokens(
    error_reports: list[str],
    owner_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    oauth_module: Any,
    session_key: str,
    callback: str,
) -> None:
    monkeypatch.setattr(oauth_module, "finish_authorization", _raise_holding_a_token)
    session = owner_client.session
    session[session_key] = {"state": "s", "code_verifier": "v", "redirect_uri": "http://testserver/"}
    session.save()
    client = Client(raise_request_exception=False)
    client.cookies = owner_client.cookies

    response = client.get(reverse(callback), {"state": "s", "code": "c"})

    assert response.status_code == 500
    [report] = error_reports
    assert "the token exchange broke" in report
    assert REFRESH_TOKEN not in report


def test_reports_still_show_what_is_not_secret(
    error_reports: list[str], owner_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter is Django's: the e-mail address and the server URL stay readable for debugging."""

    def breaking_check(self: ExchangeConnectForm) -> dict[str, Any]:
        raise RuntimeError("the connect check broke")

    monkeypatch.setattr(ExchangeConnectForm, "clean", breaking_check)
    client = Client(raise_request_exception=False)
    client.cookies = owner_client.cookies

    client.post(
        reverse("calendarsync:connect_exchange"),
        {"email": "owner@exchange.test", "password": PASSWORD, "server_url": "https://mail.example.test/"},
    )

    [report] = error_reports
    assert "owner@exchange.test" in report
    assert "https://mail.example.test/" in report
    assert PASSWORD not in report
