"""Helpers for the Calendar Sync browser tests (no tests here): run a sync as a worker would, in the test,
and serve the pages under the coming Content-Security-Policy.

``sync_in_background`` runs one sync in a thread, held just before it sends the CRM's new events,
so a test can watch the page show the progress of a run that is still working.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from playwright.sync_api import Page, Route

from calendarsync.models import CalendarAccount
from calendarsync.providers.base import CalendarProvider
from calendarsync.sync import runner
from calendarsync.sync.accounts import provider_for


class HeldProvider:
    """The account's real adapter, holding the run before its creates until ``release`` is set."""

    def __init__(self, inner: CalendarProvider, release: threading.Event) -> None:
        self.inner = inner
        self.release = release

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_events(self, calendar_id: str, items: Any, **options: Any) -> Any:
        if not self.release.wait(timeout=60):
            raise TimeoutError("the test never released the sync")
        return self.inner.create_events(calendar_id, items, **options)


@contextmanager
def sync_in_background(account: CalendarAccount) -> Iterator[threading.Event]:
    """One sync of ``account`` in a worker thread; set the yielded event to let it send its creates."""
    release = threading.Event()
    outcomes: list[runner.RunOutcome] = []

    def work() -> None:
        try:
            outcomes.append(
                runner.run_account_sync(
                    account.pk, provider_factory=lambda held: HeldProvider(provider_for(held), release)
                )
            )
        finally:
            connection.close()  # the thread's own database connection

    thread = threading.Thread(target=work, name="sync-worker", daemon=True)
    thread.start()
    try:
        yield release
    finally:
        release.set()
        thread.join(timeout=60)
    assert [outcome.status for outcome in outcomes] == [runner.RunStatus.OK], outcomes


def sync_now(account: CalendarAccount, expect: runner.RunStatus = runner.RunStatus.OK) -> None:
    """One sync of ``account`` right here, as the worker would run it."""
    outcome = runner.run_account_sync(account.pk)
    assert outcome.status == expect, outcome


# What the coming Content-Security-Policy allows: our own files only, nothing inline, no eval.
STRICT_CSP = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'"


def serve_with_strict_csp(page: Page, base_url: str) -> None:
    """Serve every page of the app with ``STRICT_CSP``; ``csp_violations`` lists what the browser refused."""

    def add_policy(route: Route) -> None:
        if route.request.resource_type != "document" or route.request.method != "GET":
            route.fallback()
            return
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(f"{base_url}/**", add_policy)
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', function (e) {"
        "  window.__cspViolations.push({directive: e.violatedDirective, source: e.sourceFile || '',"
        "                                sample: e.sample || ''});"
        "});"
    )


def csp_violations(page: Page) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.evaluate("window.__cspViolations")
    # htmx injects its own indicator <style>: the base template's business, not this page's.
    return [violation for violation in found if "htmx" not in violation["source"]]
