"""Finding 14 of issue #13 in a real browser: every page runs under the Content-Security-Policy
with no violation and no missing file (the policy and headers themselves: tests/security/test_headers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Response

from accounts.models import Company, User
from activities.models import Activity
from tests.browser.conftest import log_in
from tests.calendarsync.support import connect_account
from tests.conftest import make_activity, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff(company: Company) -> User:
    return make_user(company, "root@acme.test", is_staff=True, is_superuser=True)


@pytest.fixture
def activity(owner: User) -> Activity:
    return make_activity(owner, subject="Renewal call with Initech")


# --- in a real browser --------------------------------------------------------------------------------------

RECORD_VIOLATIONS = (
    "window.__cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', function (e) {"
    "  window.__cspViolations.push(e.violatedDirective + ' ' + (e.sourceFile || '') + ' ' +"
    "                              (e.blockedURI || '') + ' ' + (e.sample || ''));"
    "});"
)


def record_failure(failures: list[str], response: Response) -> None:
    """A failed response (a 404 among them), or a page served without the policy."""
    if response.status >= 400:
        failures.append(f"{response.status} {response.url}")
    elif response.request.resource_type == "document" and "content-security-policy" not in response.headers:
        failures.append(f"no policy on {response.url}")


@pytest.fixture
def watched_page(page: Page) -> tuple[Page, list[str]]:
    """The page, recording CSP violations (in the page) and failed or unprotected responses."""
    failures: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("response", lambda response: record_failure(failures, response))
    return page, failures


def visit(tab: Page, url: str) -> list[str]:
    tab.goto(url)
    tab.wait_for_load_state("networkidle")
    violations: list[str] = tab.evaluate("window.__cspViolations")
    return violations


def test_pages_run_under_the_policy_without_a_violation_or_a_missing_file(
    live_server: Any, watched_page: tuple[Page, list[str]], owner: User, staff: User, activity: Activity
) -> None:
    tab, failures = watched_page
    base = live_server.url
    connect_account(owner)
    violations: dict[str, list[str]] = {}

    violations["login"] = visit(tab, f"{base}/accounts/login/")
    log_in(tab, base, owner)
    for path in (
        "/activities/",
        "/activities/calendar/",
        "/activities/calendar/?view=week",
        f"/activities/{activity.pk}/",
        f"/activities/{activity.pk}/edit/",
        "/activities/new/",
        "/preferences/",
        "/preferences/calendar-sync/",
        "/accounts/password/change/",
        "/accounts/email/",
    ):
        violations[path] = visit(tab, base + path)
    # htmx at work: the list's filters swap the table in place.
    tab.goto(f"{base}/activities/")
    with tab.expect_response(
        lambda response: (
            "/activities/" in response.url and response.request.headers.get("hx-request") == "true"
        )
    ):
        tab.locator("#activity-filters select, #activity-filters input[type=checkbox]").first.dispatch_event(
            "change"
        )
    violations["htmx list"] = tab.evaluate("window.__cspViolations")

    tab.context.clear_cookies()
    tab.goto(f"{base}/admin/login/")
    tab.fill("input[name=username]", staff.email)
    tab.fill("input[name=password]", "correct-horse-battery-staple")
    tab.click("input[type=submit]")
    tab.wait_for_url(f"{base}/admin/")
    for path in (
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{owner.pk}/change/",
        "/admin/accounts/user/add/",
    ):
        violations[path] = visit(tab, base + path)

    assert {where: found for where, found in violations.items() if found} == {}
    assert failures == []
