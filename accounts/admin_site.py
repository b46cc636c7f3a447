"""CalSync's Django admin site: its login counts failed attempts with the allauth login (issue #13).

Both logins go through allauth's ``authenticate``, so a wrong password on either counts against the
one ``login_failed`` rate limit (per client address and per e-mail address), kept in the configured
cache (CACHE_URL): guessing on /admin/login/ is stopped like guessing on /accounts/login/.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """Django admin's login form, authenticating through allauth's rate-limited adapter."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            # Raises "Too many failed login attempts" once the shared limit is reached.
            self.user_cache = get_adapter(self.request).authenticate(
                self.request, email=email, password=password
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class CalSyncAdminSite(admin.AdminSite):
    login_form = ThrottledAdminAuthenticationForm
