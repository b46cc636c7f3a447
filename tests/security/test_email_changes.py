"""Issue 13, finding 13: changing one's e-mail needs the current password and the new address's
verification before it becomes the login; another user's address is refused, never a 500.

Users get their address from their company's admin, so it counts as verified; a user changes it
with allauth's "change e-mail" flow (ACCOUNT_CHANGE_EMAIL): the new address waits, unverified,
until the link mailed to it is followed, then replaces the old one.
"""

from __future__ import annotations

import importlib
import re

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.apps import apps
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.http import int_to_base36

from accounts.models import User
from tests.conftest import PASSWORD

NEW_ADDRESS = "owner.new@acme.test"
CONFIRM_LINK = re.compile(r"/accounts/confirm-email/([^/\s]+)/")


def reauthenticate(client: Client, password: str = PASSWORD) -> None:
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content.decode()[:500]


def change_email(client: Client, email: str) -> object:
    return client.post(reverse("account_email"), {"action_add": "", "email": email})


def addresses(user: User) -> list[tuple[str, bool, bool]]:
    return list(
        EmailAddress.objects.filter(user=user).order_by("email").values_list("email", "verified", "primary")
    )


def confirm_link_key(to: str) -> str:
    [message] = [m for m in mail.outbox if m.to == [to]]
    found = CONFIRM_LINK.search(str(message.body))
    assert found is not None, message.body
    return found.group(1)


def test_13_changing_the_email_asks_for_the_current_password_first(owner: User, owner_client: Client) -> None:
    response = change_email(owner_client, NEW_ADDRESS)

    assert response.status_code == 302  # type: ignore[attr-defined]
    location = response["Location"]  # type: ignore[index]
    assert location.startswith(reverse("account_reauthenticate"))
    assert not EmailAddress.objects.filter(email=NEW_ADDRESS).exists()

    wrong = owner_client.post(location, {"password": "not-my-password"})
    assert wrong.status_code == 200
    assert not EmailAddress.objects.filter(email=NEW_ADDRESS).exists()

    owner_client.post(location, {"password": PASSWORD})  # resumes the change it interrupted
    assert addresses(owner) == [(NEW_ADDRESS, False, False), (owner.email, True, True)]


def test_13_the_new_address_becomes_the_login_only_after_its_verification(
    owner: User, owner_client: Client
) -> None:
    old_address = owner.email
    reauthenticate(owner_client)

    change_email(owner_client, NEW_ADDRESS)

    owner.refresh_from_db()
    assert owner.email == old_address  # pending until verified
    key = confirm_link_key(NEW_ADDRESS)
    assert owner_client.post(reverse("account_confirm_email", args=[key])).status_code == 302
    owner.refresh_from_db()
    assert owner.email == NEW_ADDRESS
    assert addresses(owner) == [(NEW_ADDRESS, True, True)]  # the old address no longer reaches the account
    assert any(message.to == [old_address] for message in mail.outbox)  # and was told of the change
    assert (
        Client().post(reverse("account_login"), {"login": NEW_ADDRESS, "password": PASSWORD}).status_code
        == 302
    )


def test_13_an_unverified_address_can_never_be_made_primary(owner: User, owner_client: Client) -> None:
    old_address = owner.email
    reauthenticate(owner_client)
    change_email(owner_client, NEW_ADDRESS)

    response = owner_client.post(reverse("account_email"), {"action_primary": "", "email": NEW_ADDRESS})

    assert response.status_code in {200, 302}
    owner.refresh_from_db()
    assert owner.email == old_address
    assert EmailAddress.objects.get(user=owner, email=NEW_ADDRESS).primary is False


@pytest.mark.parametrize("spelling", ["colleague@acme.test", "Colleague@ACME.test"])
def test_13_a_colleagues_address_is_refused_with_a_clear_form_error(
    spelling: str, owner: User, colleague: User, owner_client: Client
) -> None:
    reauthenticate(owner_client)

    response = change_email(owner_client, spelling)

    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "already used by another CalSync user" in response.content.decode()  # type: ignore[attr-defined]
    assert not EmailAddress.objects.filter(user=owner, email__iexact=colleague.email).exists()
    assert mail.outbox == []


def test_13_a_colleagues_address_left_by_the_old_flow_never_becomes_primary_nor_gives_a_500(
    owner: User, colleague: User, owner_client: Client
) -> None:
    """An unverified copy of a colleague's address, as the old flow let anyone add."""
    stale = EmailAddress.objects.create(user=owner, email=colleague.email, verified=False, primary=False)
    reauthenticate(owner_client)

    made_primary = owner_client.post(
        reverse("account_email"), {"action_primary": "", "email": colleague.email}
    )
    confirmed = owner_client.post(reverse("account_confirm_email", args=[EmailConfirmationHMAC(stale).key]))

    assert made_primary.status_code in {200, 302}
    assert confirmed.status_code in {200, 302}
    owner.refresh_from_db()
    colleague.refresh_from_db()
    assert (owner.email, colleague.email) == ("owner@acme.test", "colleague@acme.test")
    assert EmailAddress.objects.get(pk=stale.pk).verified is False


def test_13_a_password_reset_link_goes_only_to_the_account_that_owns_the_address(
    owner: User, colleague: User
) -> None:
    EmailAddress.objects.create(user=owner, email=colleague.email, verified=False, primary=False)

    Client().post(reverse("account_reset_password"), {"email": colleague.email})

    [message] = mail.outbox
    assert message.to == [colleague.email]
    assert f"/key/{int_to_base36(colleague.pk)}-" in str(message.body)
    assert f"/key/{int_to_base36(owner.pk)}-" not in str(message.body)


def test_13_an_address_set_by_the_admin_or_at_sign_up_counts_as_verified(owner: User) -> None:
    assert addresses(owner) == [(owner.email, True, True)]

    owner.email = "renamed@acme.test"  # as the user admin saves it
    owner.save()

    assert addresses(owner) == [("renamed@acme.test", True, True)]


def test_13_existing_users_addresses_are_recorded_as_verified(owner: User, colleague: User) -> None:
    EmailAddress.objects.filter(user__in=[owner, colleague]).delete()  # as before this change
    EmailAddress.objects.create(user=owner, email=colleague.email, verified=False, primary=False)
    migration = importlib.import_module("accounts.migrations.0002_record_user_addresses_as_verified")

    migration.record_user_addresses(apps, None)

    assert addresses(owner) == [(owner.email, True, True)]  # the colleague's copy is gone
    assert addresses(colleague) == [(colleague.email, True, True)]
