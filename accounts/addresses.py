"""A user's e-mail addresses as allauth keeps them (issue #13, finding 13).

The address in ``User.email`` is trusted: the company's admin entered it, or allauth set it after
the user followed the verification link mailed to it. allauth's change-e-mail flow relies on
that address being recorded as verified and primary: only then does it refuse to make an
unverified address primary, and only then does a password reset go to the verified owner alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from allauth.account.models import EmailAddress
from django.db import transaction


class UserWithEmail(Protocol):
    pk: Any
    email: str


@transaction.atomic
def record_own_address(user: UserWithEmail) -> None:
    """Record ``user.email`` as the user's one verified, primary address.

    Other verified addresses of the user go: an address the admin replaced must no longer reach
    the account (password reset). A pending change (unverified) stays for the user to confirm.
    """
    email = user.email.strip().lower()
    rows = list(EmailAddress.objects.filter(user_id=user.pk).values_list("email", "verified", "primary"))
    if not email or _already_recorded(email, rows):
        return
    others = EmailAddress.objects.filter(user_id=user.pk).exclude(email=email)
    others.filter(verified=True).delete()
    others.filter(primary=True).update(primary=False)
    EmailAddress.objects.update_or_create(
        user_id=user.pk, email=email, defaults={"verified": True, "primary": True}
    )


def _already_recorded(email: str, rows: list[tuple[str, bool, bool]]) -> bool:
    """The address is the one verified primary; anything else is a pending (unverified) change."""
    return (email, True, True) in rows and not any(
        verified or primary for address, verified, primary in rows if address != email
    )
