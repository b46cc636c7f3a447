"""C7: credentials are encrypted at rest and keys rotate without losing anything."""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from pytest_django.fixtures import Settings

from accounts.models import User
from calendarsync.models import CalendarAccount, Provider


def raw_credentials(account: CalendarAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendarsync_calendaraccount WHERE id = %s", [account.pk])
        return str(cursor.fetchone()[0])


def test_c7_rotation_re_encrypts_with_the_newest_key(owner: User, settings: Settings) -> None:
    account = CalendarAccount.objects.create(
        user=owner, provider=Provider.GOOGLE, email="o@example.com", credentials={"refresh_token": "R-123"}
    )
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_credentials")
    stored = raw_credentials(account)
    assert "R-123" not in stored
    assert b"R-123" in Fernet(new_key.encode()).decrypt(stored.encode())
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can now be retired
    reloaded = CalendarAccount.objects.get(pk=account.pk)
    assert reloaded.credentials == {"refresh_token": "R-123"}
