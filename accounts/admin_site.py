"""CalSync's Django admin site.

Its login counts failed attempts with the allauth login (issue #13): both logins go through
allauth's ``authenticate``, so a wrong password on either counts against the one ``login_failed``
rate limit (per client address and per e-mail address), kept in the configured cache (CACHE_URL):
guessing on /admin/login/ is stopped like guessing on /accounts/login/.

Its index shows the small panels registered model admins offer (``index_panel``), above the list
of apps: an app adds a summary there (calendar sync counts) without this module knowing the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from allauth.account.adapter import get_adapter
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.template.response import TemplateResponse


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


@dataclass(frozen=True)
class IndexLink:
    text: str
    url: str


@dataclass(frozen=True)
class IndexPanel:
    """A one-line summary on the admin index: a title linking to a page, then a few links."""

    title: str
    url: str
    links: tuple[IndexLink, ...]
    html_id: str = ""


@runtime_checkable
class OffersIndexPanel(Protocol):
    """A model admin with a summary for the index; None when this user gets none."""

    def index_panel(self, request: HttpRequest) -> IndexPanel | None: ...


class CalSyncAdminSite(admin.AdminSite):
    login_form = ThrottledAdminAuthenticationForm

    def index_panels(self, request: HttpRequest) -> list[IndexPanel]:
        panels = []
        for model_admin in self._registry.values():
            if isinstance(model_admin, OffersIndexPanel):
                panel = model_admin.index_panel(request)
                if panel is not None:
                    panels.append(panel)
        return panels

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"index_panels": self.index_panels(request), **(extra_context or {})}
        return super().index(request, context)
