"""The Exchange adapter signs in as real Exchange Servers ask (issue #16): NTLM, Basic, 2016 and 2019.

A representative part of the provider contract runs again for each ``SignInVariant`` (an emulator
offering NTLM only, Basic only or both; reporting Exchange 2016 or 2019; the automatic choice or the
user's): the adapter is the one a connect leaves behind (``verify_login``, then the stored
credentials). The whole contract runs once, in ``test_provider_contract`` (Basic, as credentials
stored before NTLM support); these few cover listing, writing, conflicts, the change feed,
recurrences, a lost connection and a revoked password on every variant.
"""

from __future__ import annotations

import pytest

from calendarsync.providers.base import AuthRevoked, CalendarProvider
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.exchange.connect import verify_login
from calendarsync.providers.exchange.errors import AppPasswordRequired
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator
from tests.calendarsync.contract.conftest import ContractSetup
from tests.calendarsync.contract.exchange_setup import (
    SIGN_IN_VARIANTS,
    SignInVariant,
    exchange_sign_in_setup,
)

# The contract's own tests, collected here again against each sign-in variant (``contract`` below).
from tests.calendarsync.contract.test_provider_contract import (  # noqa: F401
    full_listing,
    test_delete_then_get_raises_not_found,
    test_list_calendars_includes_a_writable_primary,
    test_r7_recurring_series_comes_back_as_instances,
    test_r9_revoked_grant_raises_auth_revoked,
    test_r10_changes_since_cursor_are_reported_exactly_once,
    test_r10_create_retried_after_a_lost_connection_makes_one_event,
    test_r10_create_twice_with_one_key_gives_one_event,
    test_update_with_current_etag_then_stale_etag_conflicts,
    window,
)

pytestmark = pytest.mark.contract


@pytest.fixture(params=SIGN_IN_VARIANTS, ids=lambda variant: variant.name)
def contract(request: pytest.FixtureRequest) -> ContractSetup:
    """Overrides the suite's ``contract``: Exchange only, connected the way ``variant`` says."""
    variant: SignInVariant = request.param
    return exchange_sign_in_setup(request, variant)


@pytest.mark.parametrize("offered", [("ntlm",), ("basic",)], ids=["ntlm", "basic"])
def test_a_wrong_password_is_auth_revoked_with_the_same_message_over_ntlm_and_basic(
    exchange_emulator: RunningExchangeEmulator, offered: tuple[str, ...]
) -> None:
    exchange_emulator.emulator.set_auth_methods(offered)
    with pytest.raises(AuthRevoked) as refused:
        verify_login(exchange_emulator.user, "not-the-password", exchange_emulator.server_url)
    assert type(refused.value) is AuthRevoked  # not AppPasswordRequired: nothing hints at two factors
    assert str(refused.value) == "Exchange refused the e-mail address and password"
    assert exchange_emulator.emulator.request_counts() == {"401": 1}


def test_a_two_factor_mailbox_wants_its_app_password_over_ntlm_too(
    exchange_emulator: RunningExchangeEmulator,
) -> None:
    emulator = exchange_emulator.emulator
    emulator.set_auth_methods(["ntlm"])
    emulator.add_user(
        exchange_emulator.user, exchange_emulator.password, two_factor=True, app_password="app-1"
    )
    with pytest.raises(AppPasswordRequired):
        verify_login(exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    login = verify_login(exchange_emulator.user, "app-1", exchange_emulator.server_url)
    assert login.credentials["auth_type"] == "ntlm"


def test_a_no_change_sync_over_ntlm_is_one_request_on_the_signed_in_connection(
    exchange_emulator: RunningExchangeEmulator,
) -> None:
    """As a sync run makes it: a provider from the stored credentials, a cursor, nothing changed."""
    emulator = exchange_emulator.emulator
    emulator.set_auth_methods(["ntlm"])
    calendar_id = emulator.calendar_folder_id(exchange_emulator.user)
    login = verify_login(exchange_emulator.user, exchange_emulator.password, exchange_emulator.server_url)
    cursor = full_listing(ExchangeProvider.from_credentials(login.credentials), calendar_id).cursor
    emulator.reset_counts()
    provider: CalendarProvider = ExchangeProvider.from_credentials(login.credentials)
    page = provider.list_changes(calendar_id, cursor, **window())
    assert not page.changes
    assert emulator.request_counts() == {"SyncFolderItems": 1}  # no version or sign-in probing
    # exchangelib keeps the NTLM-signed-in connection between runs in one process: no new handshake.
    assert emulator.auth_counts() == {"ntlm-connection-reused": 1}
