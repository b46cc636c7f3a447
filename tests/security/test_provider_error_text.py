# ruff: noqa: F811  (the sync and emulator fixtures are imported by name, then requested by name)
"""Issue 13, finding 8: what a provider says is never stored or shown, only its error code.

A provider's error body or message may echo a token, a password or credentials. Every reason
CalSync stores (the account's state detail and last error, the run's error and counts, the item's
sync error and failure) and every page that shows them (Calendar Sync, the activity list, the
admin) carries our own words plus the provider's code: Google's reason, Graph's error.code, EWS's
ResponseCode, a token endpoint's error, or the HTTP status. The provider's own text goes to the
debug log only, with secrets redacted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httplib2  # type: ignore[import-untyped]
import pytest
from django.test import Client
from django.urls import reverse
from exchangelib import errors as ews
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from accounts.models import User
from activities.models import Activity, SyncStatus
from calendarsync.emulators.exchange_state import ItemFault
from calendarsync.emulators.google_state import EventFault as GoogleEventFault
from calendarsync.emulators.microsoft_state import EventFault as GraphEventFault
from calendarsync.models import AccountState, AuditEvent, CalendarAccount, ItemFailure, SyncRun
from calendarsync.providers.base import (
    AuthRevoked,
    CalendarProvider,
    Change,
    ChangePage,
    InvalidEvent,
    ProviderError,
    TransientError,
)
from calendarsync.providers.exchange.client import HttpStatusError
from calendarsync.providers.exchange.errors import Operation as ExchangeOperation
from calendarsync.providers.exchange.errors import map_exchange_error
from calendarsync.providers.google.errors import Operation as GoogleOperation
from calendarsync.providers.google.errors import map_google_error
from calendarsync.providers.microsoft.errors import GraphFailure, TokenRefreshFailed, map_graph_error
from calendarsync.providers.microsoft.errors import Operation as GraphOperation
from calendarsync.providers.redaction import REDACTED, error_code, redact
from calendarsync.sync import pull, runner
from calendarsync.sync.errors import RECONNECT_HELP, classify, error_summary, unconfirmed_deletion_reason
from tests.calendarsync.conftest import google_emulator, google_emulator_server  # noqa: F401
from tests.calendarsync.conftest_exchange import exchange_emulator, exchange_emulator_server  # noqa: F401
from tests.calendarsync.conftest_microsoft import (  # noqa: F401
    RunningMicrosoftEmulator,
    microsoft_emulator,
    microsoft_emulator_servers,
)
from tests.calendarsync.sync.conftest import SYNC_SETUPS, SyncEnv, soon, sync_env, sync_setup  # noqa: F401
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# What a careless provider echoes back: a Google access token, a JWT bearer token, a password.
TOKEN = "ya29.a0PlantedSecretAccessToken0123456789abcdefABCDEF"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLXNlY3JldCJ9.UGxhbnRlZFNpZ25hdHVyZTAxMjM0"
PLANTED_PASSWORD = "hunter2-planted-password"
BODY = f"Request failed for access_token={TOKEN} (Authorization: Bearer {JWT}; password={PLANTED_PASSWORD})"
SECRETS = (TOKEN, JWT, PLANTED_PASSWORD, "PlantedSecret", "UGxhbnRlZFNpZ25hdHVyZTAxMjM0", "hunter2")


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text[:300]!r}"


def stored_texts(account: CalendarAccount) -> str:
    """Every reason CalSync stored about this account, its runs and its items."""
    account.refresh_from_db()
    parts = [account.state_detail, account.last_sync_error]
    for run in SyncRun.objects.filter(account=account):
        parts += [run.error, json.dumps(run.counts)]
    parts += ItemFailure.objects.filter(account=account).values_list("reason", flat=True)
    parts += Activity.objects.filter(owner=account.user).values_list("sync_error", flat=True)
    parts += [json.dumps(event.detail) for event in AuditEvent.objects.filter(account=account)]
    return "\n".join(parts)


def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(email="root@calsync.test", password=PASSWORD))
    return client


def shown_pages(owner_client: Client, account: CalendarAccount) -> dict[str, str]:
    """The Calendar Sync page, the activity list and every admin page showing the stored reasons."""
    admin = superuser_client()
    urls: dict[str, tuple[Client, str]] = {
        "calendar sync page": (owner_client, reverse("calendarsync:page")),
        "activity list": (owner_client, reverse("activities:list")),
        "account admin": (admin, reverse("admin:calendarsync_calendaraccount_change", args=[account.pk])),
        "runs admin": (admin, reverse("admin:calendarsync_syncrun_changelist")),
    }
    for run in SyncRun.objects.filter(account=account):
        urls[f"run {run.pk} admin"] = (admin, reverse("admin:calendarsync_syncrun_change", args=[run.pk]))
    for activity in Activity.objects.filter(owner=account.user):
        urls[f"activity {activity.pk} admin"] = (
            admin,
            reverse("admin:activities_activity_change", args=[activity.pk]),
        )
    pages = {}
    for name, (client, url) in urls.items():
        response = client.get(url)
        assert response.status_code == 200, name
        pages[name] = response.content.decode()
    return pages


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"access_token={TOKEN}&expires_in=3599", TOKEN),
        ('{"refresh_token": "1//0gPlantedRefresh-Token_value"}', "1//0gPlantedRefresh-Token_value"),
        (f"Authorization: Bearer {JWT}", JWT),
        ("Authorization: Basic dXNlcjpodW50ZXIyLXBsYW50ZWQ=", "dXNlcjpodW50ZXIyLXBsYW50ZWQ="),
        (f"password={PLANTED_PASSWORD}", PLANTED_PASSWORD),
        ("{'client_secret': 'GOCSPX-planted_client_secret'}", "GOCSPX-planted_client_secret"),
        (f"the token {JWT} was refused", JWT),
        (f"unknown value {TOKEN}", TOKEN),
        ("signature AAMkAGI2TG93AAA1BBcdEfGhIjKlMnOpQrStUvWxYz0123456789 end", "AAMkAGI2TG93AAA1BBcdEf"),
    ],
)
def test_8_redact_removes_planted_secrets(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_8_redact_keeps_what_is_no_secret() -> None:
    text = "Google Calendar answered 403 (forbiddenForNonOrganizer) for /calendar/v3/calendars/primary/events"
    assert redact(text) == text


@pytest.mark.parametrize(
    "body", ["a-" * 50_000, "token" + " " * 100_000, 'token="' * 20_000, "aB3-" * 30_000]
)
def test_8_redact_takes_one_pass_over_any_body(body: str) -> None:
    """A server answers what it likes (an Exchange URL is the user's choice): no body may stall a worker."""
    started = time.monotonic()
    redact(body)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        ("forbiddenForNonOrganizer", "forbiddenForNonOrganizer"),
        ("ErrorAccessDenied", "ErrorAccessDenied"),
        (403, "403"),
        (f"access_token={TOKEN}", None),
        (TOKEN, None),
        (f"Bearer {JWT}", None),
        ("x" * 65, None),
        ("", None),
    ],
)
def test_8_only_a_short_plain_error_code_is_kept(code: object, kept: str | None) -> None:
    assert error_code(code) == kept
    assert ProviderError("anything", code=code).code == kept  # type: ignore[arg-type]


def test_8_a_provider_errors_str_and_repr_are_redacted() -> None:
    error = InvalidEvent(BODY, code="ErrorAccessDenied")
    assert_clean(str(error), repr(error))
    assert "ErrorAccessDenied" in repr(error)


# --------------------------------------------------------------------------- each provider's error map


def google_http_error(status: int, reasons: list[str], *, top_status: str | None = None) -> HttpError:
    response = httplib2.Response({"status": status})
    response.reason = f"Refused {BODY}"
    error: dict[str, Any] = {
        "code": status,
        "message": BODY,
        "errors": [{"domain": "global", "reason": reason, "message": BODY} for reason in reasons],
    }
    if top_status is not None:
        error["status"] = top_status
    return HttpError(response, json.dumps({"error": error}).encode())


def google_item_refusal() -> ProviderError:
    error = google_http_error(403, ["forbiddenForNonOrganizer"], top_status=f"access_token={TOKEN}")
    return map_google_error(error, GoogleOperation.WRITE)


def google_refresh_refused() -> ProviderError:
    error = RefreshError(BODY, {"error": "invalid_grant", "error_description": BODY})
    return map_google_error(error, GoogleOperation.CHANGES)


def graph_item_refusal() -> ProviderError:
    return map_graph_error(GraphFailure(403, "ErrorAccessDenied", BODY), GraphOperation.WRITE)


def graph_busy_with_a_secret_for_code() -> ProviderError:
    return map_graph_error(GraphFailure(503, f"access_token={TOKEN}", BODY), GraphOperation.CHANGES)


def graph_refresh_refused() -> ProviderError:
    return map_graph_error(TokenRefreshFailed(f"Bearer {JWT}", BODY), GraphOperation.CHANGES)


def exchange_item_refusal() -> ProviderError:
    return map_exchange_error(ews.ErrorInvalidValueForProperty(BODY), ExchangeOperation.CREATE)


def exchange_http_status() -> ProviderError:
    return map_exchange_error(HttpStatusError(503, retry_after=BODY), ExchangeOperation.CHANGES)


# Each case: the failure, the error it maps to, the code kept, and whether it carries the planted text.
MAPPED: dict[str, tuple[Callable[[], ProviderError], type[ProviderError], str | None, bool]] = {
    "google item refusal": (google_item_refusal, InvalidEvent, "forbiddenForNonOrganizer", True),
    "google refresh refused": (google_refresh_refused, AuthRevoked, "invalid_grant", True),
    "graph item refusal": (graph_item_refusal, InvalidEvent, "ErrorAccessDenied", True),
    "graph busy, secret code": (graph_busy_with_a_secret_for_code, TransientError, "503", True),
    "graph refresh refused": (graph_refresh_refused, AuthRevoked, None, True),
    "exchange item refusal": (exchange_item_refusal, InvalidEvent, "ErrorInvalidValueForProperty", True),
    "exchange http status": (exchange_http_status, TransientError, "503", False),
}


@pytest.mark.parametrize("case", sorted(MAPPED))
def test_8_each_provider_maps_its_failure_to_a_code_and_never_to_its_text(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, kind, code, carries_text = MAPPED[case]
    with caplog.at_level(logging.DEBUG, logger="calendarsync"):
        error = make()
    assert type(error) is kind
    assert error.code == code
    outcome = classify(error)
    stored = (outcome.account_detail, outcome.item_reason, error_summary(error))
    assert_clean(*stored, str(error), repr(error), caplog.text)
    if code is not None:
        shown = f"HTTP {code}" if code.isdigit() else code
        assert f"({shown})" in error_summary(error)
    if carries_text:
        # The provider's text did reach the debug log, redacted.
        assert REDACTED in caplog.text


def test_8_the_catalogue_texts() -> None:
    assert (
        classify(google_item_refusal()).item_reason
        == "The calendar refused this item (forbiddenForNonOrganizer)"
    )
    assert classify(graph_busy_with_a_secret_for_code()).account_detail == (
        "The calendar is busy or unreachable; retrying (HTTP 503)"
    )
    refused = google_refresh_refused()
    assert classify(refused).account_detail == RECONNECT_HELP
    assert error_summary(refused) == "The calendar refused CalSync's sign-in (invalid_grant)"
    assert error_summary(graph_refresh_refused()) == "The calendar refused CalSync's sign-in"
    assert unconfirmed_deletion_reason(graph_item_refusal()) == (
        "Missing from the calendar's listing, but could not be read (ErrorAccessDenied)"
    )


# --------------------------------------------------------------------------- through a real sync


def plant_item_refusal(sync_env: SyncEnv, external_id: str) -> str:
    """The emulator refuses the next write to this event, its error text carrying the secrets;
    returns the provider's code for it."""
    emulator: Any = sync_env.control.emulator  # type: ignore[attr-defined]
    provider = sync_env.setup.provider
    with emulator.state.lock:
        if provider == "google":
            emulator.state.event_faults[external_id] = GoogleEventFault(403, "forbiddenForNonOrganizer", BODY)
            return "forbiddenForNonOrganizer"
        if provider == "microsoft":
            emulator.state.event_faults[external_id] = GraphEventFault(403, "ErrorAccessDenied", BODY)
            return "ErrorAccessDenied"
        emulator.state.item_faults[external_id] = ItemFault("ErrorInvalidValueForProperty", BODY)
        return "ErrorInvalidValueForProperty"


def test_8_an_item_the_calendar_refuses_stores_our_words_and_the_providers_code(
    sync_env: SyncEnv, owner_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    sync_env.start()
    refused = sync_env.activity(subject="Board meeting", start_at=soon(2, 9))
    sync_env.sync()
    refused.location = "Room 1"
    refused.save()
    code = plant_item_refusal(sync_env, sync_env.link_of(refused).external_id)

    with caplog.at_level(logging.DEBUG):
        sync_env.sync()

    expected = f"The calendar refused this item ({code})"
    refused.refresh_from_db()
    assert (refused.sync_status, refused.sync_error) == (SyncStatus.ERROR, expected)
    assert ItemFailure.objects.get(account=sync_env.account, activity=refused).reason == expected
    run = SyncRun.objects.filter(account=sync_env.account).first()
    assert run is not None
    assert run.counts["pushed"]["errors"] == [{"item": f"activity {refused.pk}", "reason": expected}]
    pages = shown_pages(owner_client, sync_env.account)
    assert_clean(stored_texts(sync_env.account), *pages.values(), caplog.text)
    assert code in pages[f"activity {refused.pk} admin"]


class FailingListing:
    """The real adapter, except that listing changes fails with ``error``."""

    def __init__(self, inner: CalendarProvider, error: ProviderError) -> None:
        self._inner = inner
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_changes(self, *args: Any, **kwargs: Any) -> ChangePage:
        raise self._error


ACCOUNT_FAILURES: dict[str, tuple[Callable[[], ProviderError], str]] = {
    "google": (
        lambda: map_google_error(
            google_http_error(400, ["badRequest"], top_status=f"Bearer {JWT}"), GoogleOperation.CHANGES
        ),
        "badRequest",
    ),
    "microsoft": (
        lambda: map_graph_error(GraphFailure(400, f"access_token={TOKEN}", BODY), GraphOperation.CHANGES),
        "HTTP 400",
    ),
    "exchange": (
        lambda: map_exchange_error(ews.ErrorQuotaExceeded(BODY), ExchangeOperation.CHANGES),
        "ErrorQuotaExceeded",
    ),
}


@pytest.fixture
def google_env(request: pytest.FixtureRequest, owner: User) -> SyncEnv:
    """One account on the Google emulator: the failures below are each provider's own, mapped."""
    return SyncEnv(SYNC_SETUPS["google"](request), owner)


@pytest.mark.parametrize("provider", sorted(ACCOUNT_FAILURES))
def test_8_a_failed_run_stores_our_words_and_the_providers_code(
    google_env: SyncEnv, owner_client: Client, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, code = ACCOUNT_FAILURES[provider]
    google_env.start()
    google_env.sync()

    with caplog.at_level(logging.DEBUG):
        error = make()
        outcome = runner.run_account_sync(
            google_env.account.pk,
            provider_factory=lambda account: FailingListing(
                google_env.setup.provider_factory(account), error
            ),
        )

    assert outcome.status == runner.RunStatus.FAILED
    expected = f"Calendar sync failed ({code})"
    account = google_env.account
    account.refresh_from_db()
    assert (account.state, account.state_detail, account.last_sync_error) == (
        AccountState.ERROR,
        expected,
        expected,
    )
    run = SyncRun.objects.filter(account=account).first()
    assert run is not None
    assert run.error == expected
    pages = shown_pages(owner_client, account)
    assert expected in pages["calendar sync page"]
    assert expected in pages["account admin"]
    assert_clean(stored_texts(account), *pages.values(), caplog.text)
    assert REDACTED in caplog.text


class ListsUnreadableChanges:
    """The real adapter, whose listings also carry changes it could not read (as adapters report them)."""

    def __init__(self, inner: CalendarProvider) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_changes(self, *args: Any, **kwargs: Any) -> ChangePage:
        page: ChangePage = self._inner.list_changes(*args, **kwargs)
        unreadable = (
            Change(
                external_id="unreadable-1", event=None, error=f"start.dateTime is not a timestamp: {TOKEN!r}"
            ),
            Change(
                external_id="unconfirmed-1",
                event=None,
                error=f"Could not confirm the removal of this event: {BODY}",
                code="ErrorAccessDenied",
            ),
        )
        return ChangePage(
            changes=(*page.changes, *unreadable), cursor=page.cursor, full_listing=page.full_listing
        )


def test_8_skipped_calendar_changes_store_our_words(
    google_env: SyncEnv,
    owner_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    google_env.start()
    google_env.sync()
    bad_id = google_env.control.create_event("Broken", soon(2, 9), soon(2, 10))
    real_import = pull._import

    def import_or_fail(ctx: Any, event: Any) -> None:
        if event.external_id == bad_id:
            raise ValueError(f"Invalid isoformat string: {TOKEN!r}")
        real_import(ctx, event)

    monkeypatch.setattr(pull, "_import", import_or_fail)
    with caplog.at_level(logging.DEBUG):
        outcome = runner.run_account_sync(
            google_env.account.pk,
            provider_factory=lambda account: ListsUnreadableChanges(
                google_env.setup.provider_factory(account)
            ),
        )

    assert outcome.result is not None
    pulled = outcome.result.pulled
    assert [(skip.item, skip.reason) for skip in pulled.errors] == [
        (bad_id, "CalSync could not apply this calendar change (ValueError)")
    ]
    assert sorted((skip.item, skip.reason) for skip in pulled.skipped) == [
        ("unconfirmed-1", "The calendar sent an event CalSync cannot read (ErrorAccessDenied)"),
        ("unreadable-1", "The calendar sent an event CalSync cannot read"),
    ]
    pages = shown_pages(owner_client, google_env.account)
    assert_clean(stored_texts(google_env.account), *pages.values(), caplog.text)


# --------------------------------------------------------------------------- connect flows


def callback_state(auth_url: str) -> str:
    return parse_qs(urlsplit(auth_url).query)["state"][0]


@pytest.mark.parametrize(
    ("error", "shown"),
    [(f"access_token={TOKEN}", "Google sign-in did not complete. "), ("invalid_scope", "(invalid_scope)")],
)
def test_8_a_google_sign_in_error_shows_only_its_code(
    google_emulator: Any, owner_client: Client, owner: User, error: str, shown: str
) -> None:
    auth_url = str(owner_client.post(reverse("calendarsync:connect_google")).headers["Location"])
    response = owner_client.get(
        reverse("calendarsync:google_callback"),
        {"state": callback_state(auth_url), "error": error},
        follow=True,
    )
    html = response.content.decode()
    assert shown in html
    assert_clean(html)
    assert not CalendarAccount.objects.filter(user=owner).exists()


@pytest.mark.parametrize(
    ("error", "shown"),
    [(f"Bearer {JWT}", "Microsoft sign-in did not complete. "), ("invalid_request", "(invalid_request)")],
)
def test_8_a_microsoft_sign_in_error_shows_only_its_code(
    microsoft_emulator: RunningMicrosoftEmulator, owner_client: Client, owner: User, error: str, shown: str
) -> None:
    auth_url = str(owner_client.post(reverse("calendarsync:connect_microsoft")).headers["Location"])
    response = owner_client.get(
        reverse("calendarsync:microsoft_callback"),
        {"state": callback_state(auth_url), "error": error, "error_description": BODY},
        follow=True,
    )
    html = response.content.decode()
    assert shown in html
    assert_clean(html)
    assert not CalendarAccount.objects.filter(user=owner).exists()
