"""Record every user's address as their verified, primary allauth address (issue #13, finding 13).

Users got their address from their company's admin, never through allauth, so allauth had no
verified address for them: it let any added address become primary unverified, and sent password
resets for an address to every user who had merely added it. Unverified copies of another user's
address, as that flow let anyone add, are dropped.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def record_user_addresses(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("accounts", "User")
    email_address = apps.get_model("account", "EmailAddress")
    for user in user_model.objects.exclude(email="").iterator():
        email = user.email.strip().lower()
        email_address.objects.filter(email__iexact=email).exclude(user_id=user.pk).delete()
        others = email_address.objects.filter(user_id=user.pk).exclude(email=email)
        others.filter(verified=True).delete()
        others.filter(primary=True).update(primary=False)
        email_address.objects.update_or_create(
            user_id=user.pk, email=email, defaults={"verified": True, "primary": True}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(record_user_addresses, migrations.RunPython.noop)]
