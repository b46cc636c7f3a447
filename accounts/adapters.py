from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class CompanyAccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]  # allauth ships no types
    """Users are invited by their company's admin (Django admin); there is no public sign-up."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False
