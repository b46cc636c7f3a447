"""Finding 14 of issue #13: a Content-Security-Policy, private pages, a favicon.

Every page is served with a policy allowing our own static files only (htmx is one of them):
nothing inline, no eval, no plugins, no framing. A page rendered for a signed-in user carries
``Cache-Control: private, no-store``: it shows CRM data that no shared or disk cache may keep. A
real browser loading the pages under that policy reports no violation and no missing file
(tests/browser/test_headers_browser.py, beside the other browser tests: one Playwright session).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils.cache import get_max_age

from accounts.models import Company, User
from activities.models import Activity
from tests.calendarsync.support import connect_account
from tests.conftest import make_activity, make_user

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


@pytest.fixture
def staff(company: Company) -> User:
    return make_user(company, "root@acme.test", is_staff=True, is_superuser=True)


@pytest.fixture
def activity(owner: User) -> Activity:
    return make_activity(owner, subject="Renewal call with Initech")


# --- Content-Security-Policy ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/accounts/login/"),
        ("owner", "/activities/"),
        ("owner", "/activities/calendar/"),
        ("owner", "/activities/new/"),
        ("owner", "/preferences/"),
        ("owner", "/preferences/calendar-sync/"),
        ("staff", "/admin/"),
        ("staff", "/admin/accounts/user/"),
    ],
)
def test_every_page_allows_only_our_own_scripts_and_styles(
    request: pytest.FixtureRequest, who: str | None, path: str
) -> None:
    client = Client()
    if who is not None:
        client.force_login(request.getfixturevalue(who))

    response = client.get(path)

    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in response["Content-Security-Policy"]


INLINE_CODE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on* event handler"),
    (re.compile(r"\bhx-on\b|hx-on[:-]", re.I), "an hx-on handler (needs eval)"),
    (re.compile(r"=\s*[\"']?\s*javascript:", re.I), "a javascript: URL"),
]
TEMPLATE_COMMENTS = re.compile(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", re.S)


def test_templates_hold_no_inline_code() -> None:
    """What the policy would block: every script and style comes from a static file."""
    found = [
        f"{path.relative_to(TEMPLATES)}: {what}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for pattern, what in INLINE_CODE
        if pattern.search(TEMPLATE_COMMENTS.sub("", path.read_text()))
    ]
    assert found == []


# --- Cache-Control: private, no-store -------------------------------------------------------------------


def cache_directives(response: Any) -> set[str]:
    return {part.strip().lower() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/activities/", {}),
        ("/activities/", {"HX-Request": "true"}),
        ("/activities/export.csv", {}),
        ("/activities/calendar/", {}),
        ("/activities/calendar/", {"HX-Request": "true"}),
        ("/activities/{activity}/", {}),
        ("/activities/{activity}/edit/", {}),
        ("/activities/new/", {}),
        ("/preferences/", {}),
        ("/preferences/calendar-sync/", {}),
        ("/preferences/calendar-sync/accounts/{account}/status/", {}),
    ],
)
def test_pages_with_crm_data_are_private_and_not_stored(
    owner_client: Client, owner: User, activity: Activity, path: str, headers: dict[str, str]
) -> None:
    account = connect_account(owner)

    response = owner_client.get(path.format(activity=activity.pk, account=account.pk), headers=headers)

    assert response.status_code == 200
    assert {"private", "no-store"} <= cache_directives(response)
    assert "public" not in cache_directives(response)


@pytest.mark.django_db
def test_admin_pages_stay_uncached(staff: User) -> None:
    client = Client()
    client.force_login(staff)

    response = client.get("/admin/accounts/user/")

    assert {"private", "no-store"} <= cache_directives(response)
    assert get_max_age(response) == 0


@pytest.mark.django_db
def test_static_files_keep_their_own_caching(owner_client: Client) -> None:
    response = owner_client.get("/static/css/app.css")

    assert response.status_code == 200
    assert "no-store" not in cache_directives(response)


# --- favicon ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_favicon_answers_with_an_icon(client: Client) -> None:
    response = client.get("/favicon.ico", follow=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/")
