from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True  # apps.py holds the admin's config too
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"


class CalSyncAdminConfig(admin_apps.AdminConfig):
    """Django admin with CalSync's site (accounts.admin_site): its login shares the login rate limit."""

    default = False
    default_site = "accounts.admin_site.CalSyncAdminSite"
