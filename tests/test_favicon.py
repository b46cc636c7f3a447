"""Every page links a favicon, and /favicon.ico answers (browsers ask for it; it used to log a 404)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

STATIC_DIR = settings.BASE_DIR / "static"


def test_favicon_ico_redirects_to_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("favicon.ico")
    assert (STATIC_DIR / "favicon.ico").read_bytes().startswith(b"\x00\x00\x01\x00")  # an ICO file


@pytest.mark.parametrize(
    ("who", "name"),
    [
        ("client", "account_login"),
        ("owner_client", "activities:list"),
        ("owner_client", "activities:calendar"),
    ],
)
def test_pages_link_the_icons(request: pytest.FixtureRequest, who: str, name: str) -> None:
    html = request.getfixturevalue(who).get(reverse(name)).content.decode()
    links = re.findall(r'<link rel="icon" href="([^"]+)"', html)
    assert links == [static("favicon.ico"), static("favicon.svg")]
    for name_on_disk in ("favicon.ico", "favicon.svg"):
        assert (STATIC_DIR / name_on_disk).is_file()
