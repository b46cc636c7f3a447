"""Re-encrypt every stored credential with the newest key of FIELD_ENCRYPTION_KEYS (C7 key rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils.translation import ngettext

from calendarsync.crypto import rotate_text
from calendarsync.models import CalendarAccount


class Command(BaseCommand):
    help = "Re-encrypt stored calendar credentials with the first (newest) FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        table = CalendarAccount._meta.db_table
        rotated = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw SQL on purpose: the field decrypts on read, and rotation must keep the ciphertext form.
            cursor.execute(f"SELECT id, credentials FROM {table} WHERE credentials IS NOT NULL")  # noqa: S608
            for account_id, token in cursor.fetchall():
                cursor.execute(
                    f"UPDATE {table} SET credentials = %s WHERE id = %s",  # noqa: S608
                    [rotate_text(token), account_id],
                )
                rotated += 1
        self.stdout.write(
            ngettext(
                "Re-encrypted the credentials of %(count)d account with the newest key.",
                "Re-encrypted the credentials of %(count)d accounts with the newest key.",
                rotated,
            )
            % {"count": rotated}
        )
