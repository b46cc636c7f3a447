"""Typing help for views behind ``login_required``."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User


class AuthedHttpRequest(HttpRequest):
    """A request whose ``user`` is a signed-in CalSync user (use under ``@login_required``)."""

    user: User
