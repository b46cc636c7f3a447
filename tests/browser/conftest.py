"""Real-browser fixtures: Playwright drives Debian's Chromium (it cannot download its own)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.models import User
from tests.calendarsync.conftest import google_emulator, google_emulator_server  # noqa: F401  (shared fixtures)
from tests.calendarsync.conftest_exchange import exchange_emulator, exchange_emulator_server  # noqa: F401
from tests.calendarsync.conftest_microsoft import microsoft_emulator, microsoft_emulator_servers  # noqa: F401
from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in this thread from here on, and
    # pytest-django sets up the test database lazily inside it: let the ORM run there.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Playwright gives every launch a fresh, empty profile of its own.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser: Browser, browser_env: None) -> Iterator[Page]:
    context = browser.new_context(timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def log_in(page: Page, base_url: str, user: User) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/activities/**")
