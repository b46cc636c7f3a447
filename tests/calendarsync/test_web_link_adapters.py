"""The adapters' web calendar links (``RemoteEvent.web_url``): one safety check for every provider,
Google's htmlLink, Graph's webLink, and Exchange's Outlook on the web link built from the item's
WebClientReadFormQueryString. Against the emulators, the contract suite checks the same for created,
fetched, updated and listed events (test_provider_contract.py)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.exchange.mapping import owa_base_url, parse_item, web_url_of
from calendarsync.providers.google.mapping import parse_event as parse_google_event
from calendarsync.providers.microsoft.mapping import parse_event as parse_graph_event
from calendarsync.providers.web_links import MAX_WEB_URL_LENGTH, safe_web_url
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

GOOGLE_LINK = "https://www.google.com/calendar/event?eid=YWJjMTIzIGFsaWNlQGV4YW1wbGUuY29t"
GRAPH_LINK = "https://outlook.office365.com/owa/?itemid=AAMkAGI2%3D&exvsurl=1&path=/calendar/item"
EWS_QUERY = "?ItemID=AAMkAD%2Bx%3D&exvsurl=1&viewmodel=ReadMessageItem"

# --------------------------------------------------------------------------- safe_web_url


@pytest.mark.parametrize("link", [GOOGLE_LINK, GRAPH_LINK, "https://mail.example.com:8443/owa/?ItemID=a%2Fb"])
def test_a_providers_https_link_is_kept_as_it_is(link: str) -> None:
    assert safe_web_url(link) == link


def test_a_link_of_exactly_the_maximum_length_is_kept_and_one_more_character_is_not() -> None:
    base = "https://example.com/?q="
    longest = base + "a" * (MAX_WEB_URL_LENGTH - len(base))
    assert len(longest) == 2048
    assert safe_web_url(longest) == longest
    assert safe_web_url(longest + "a") is None


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0Aalert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "http://www.google.com/calendar/event?eid=abc",  # plain http
        "ftp://example.com/event",
        "/owa/?ItemID=abc",  # relative
        "?ItemID=abc&exvsurl=1",
        "//evil.example/path",  # scheme-relative
        "https:///path-without-host",
        "https://",
        "",
        "https://example.com/a b",  # whitespace
        "https://example.com/\tx",
        "https://example.com/\nSet-Cookie:x",
        " https://example.com/",
        "https://example.com/\x00",
        "https://example.com/\u202ephishing",  # bidi override
        "https://exämple.com/",  # not percent-encoded ASCII
        "https://example.com\\@evil.example/",  # browsers read the backslash as a slash
        'https://example.com/"onmouseover="x',
        "https://example.com/<script>",
        "https://bank.example@evil.example/",  # a user part disguises the host
        "https://example.com:99999/",  # no such port
        "https://example.com:http/",
        "https://[::1/",  # broken IPv6 host
    ],
)
def test_anything_but_a_plain_absolute_https_link_becomes_none(value: str) -> None:
    assert safe_web_url(value) is None


@pytest.mark.parametrize(
    "value", [None, 42, b"https://example.com/", ["https://example.com/"], {"href": "x"}]
)
def test_a_link_that_is_not_text_becomes_none(value: object) -> None:
    assert safe_web_url(value) is None


def test_a_link_far_too_long_becomes_none() -> None:
    assert safe_web_url("https://example.com/" + "a" * 100_000) is None


# --------------------------------------------------------------------------- Google (htmlLink)


def google_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "abc123",
        "etag": '"1"',
        "status": "confirmed",
        "summary": "Review",
        "updated": "2030-03-01T10:00:00.000Z",
        "start": {"dateTime": "2030-03-10T09:00:00Z"},
        "end": {"dateTime": "2030-03-10T09:30:00Z"},
        "htmlLink": GOOGLE_LINK,
    }
    event.update(fields)
    return event


def test_google_event_carries_its_html_link() -> None:
    assert parse_google_event(google_event()).web_url == GOOGLE_LINK


@pytest.mark.parametrize(
    "bad", ["javascript:alert(1)", "http://www.google.com/calendar/event?eid=x", 7, None]
)
def test_google_event_with_a_bad_html_link_still_syncs_without_one(bad: object) -> None:
    event = parse_google_event(google_event(htmlLink=bad))
    assert event.web_url is None
    assert event.subject == "Review"


def test_google_event_without_html_link_has_none() -> None:
    raw = google_event()
    del raw["htmlLink"]
    assert parse_google_event(raw).web_url is None


# --------------------------------------------------------------------------- Microsoft Graph (webLink)


def graph_event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "@odata.etag": 'W/"abc"',
        "id": "AAMkAGI2=",
        "lastModifiedDateTime": "2030-01-02T03:04:05.1234567Z",
        "type": "singleInstance",
        "subject": "Review",
        "isAllDay": False,
        "start": {"dateTime": "2030-01-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-10T09:30:00.0000000", "timeZone": "UTC"},
        "webLink": GRAPH_LINK,
    }
    raw.update(overrides)
    return raw


def test_graph_event_carries_its_web_link() -> None:
    assert parse_graph_event(graph_event()).web_url == GRAPH_LINK


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "owa/?itemid=x", ["https://x.example/"], None])
def test_graph_event_with_a_bad_web_link_still_syncs_without_one(bad: object) -> None:
    event = parse_graph_event(graph_event(webLink=bad))
    assert event.web_url is None
    assert event.subject == "Review"


# --------------------------------------------------------------------------- Exchange (Outlook on the web)


@pytest.mark.parametrize(
    ("server_url", "base"),
    [
        ("https://mail.example.com/EWS/Exchange.asmx", "https://mail.example.com/owa/"),
        ("https://mail.example.com:443/EWS/Exchange.asmx", "https://mail.example.com/owa/"),
        ("https://mail.example.com:8443/EWS/Exchange.asmx", "https://mail.example.com:8443/owa/"),
        ("https://user:pw@mail.example.com/EWS/Exchange.asmx", "https://mail.example.com/owa/"),
        # Outlook on the web is https only: a plain-http endpoint's port is not its port.
        ("http://127.0.0.1:8123/EWS/Exchange.asmx", "https://127.0.0.1/owa/"),
        ("https://[2001:db8::1]:8443/EWS/Exchange.asmx", "https://[2001:db8::1]:8443/owa/"),
    ],
)
def test_owa_lives_on_the_ews_host(server_url: str, base: str) -> None:
    assert owa_base_url(server_url) == base


@pytest.mark.parametrize("server_url", ["", "not a url", "/EWS/Exchange.asmx", "https://mail.example.com:x/"])
def test_no_owa_without_a_host(server_url: str) -> None:
    assert owa_base_url(server_url) is None


def test_exchange_read_form_query_is_appended_to_owa() -> None:
    base = "https://mail.example.com/owa/"
    assert web_url_of(EWS_QUERY, base) == base + EWS_QUERY


def test_exchange_read_form_link_that_is_whole_already_is_taken_as_it_is() -> None:
    whole = "https://outlook.office365.com/owa/" + EWS_QUERY
    assert web_url_of(whole, "https://mail.example.com/owa/") == whole
    assert web_url_of(whole, None) == whole


@pytest.mark.parametrize(
    ("query", "base"),
    [
        (EWS_QUERY, None),  # no server to append it to
        ("owa/?ItemID=x", "https://mail.example.com/owa/"),  # neither a query nor a URL
        ("javascript:alert(1)", "https://mail.example.com/owa/"),
        ("http://mail.example.com/owa/" + EWS_QUERY, "https://mail.example.com/owa/"),
        ("?ItemID=a b", "https://mail.example.com/owa/"),
        ("?ItemID=" + "a" * 3000, "https://mail.example.com/owa/"),
        ("", "https://mail.example.com/owa/"),
        (None, "https://mail.example.com/owa/"),
        (42, "https://mail.example.com/owa/"),
    ],
)
def test_exchange_bad_read_form_query_gives_no_link(query: object, base: str | None) -> None:
    assert web_url_of(query, base) is None


def ews_item(**overrides: Any) -> Any:
    """What exchangelib hands the mapping for a plain appointment (only the fields it reads)."""
    start = dt.datetime(2030, 1, 10, 9, 0, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "id": "AAMkAD+x=",
        "changekey": "CQAAAA==",
        "type": "Single",
        "uid": "uid-1",
        "is_all_day": False,
        "start": start,
        "end": start + dt.timedelta(minutes=30),
        "subject": "Review",
        "location": None,
        "body": None,
        "required_attendees": None,
        "optional_attendees": None,
        "legacy_free_busy_status": "Busy",
        "sensitivity": "Normal",
        "last_modified_time": start,
        "organizer": None,
        "my_response_type": "Organizer",
        "is_cancelled": False,
        "calsync_tag": None,
        "web_client_read_form_query_string": EWS_QUERY,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_exchange_item_carries_its_owa_link() -> None:
    event = parse_item(ews_item(), owa_base="https://mail.example.com/owa/")
    assert event.web_url == "https://mail.example.com/owa/" + EWS_QUERY


def test_exchange_item_with_a_bad_read_form_query_still_syncs_without_a_link() -> None:
    event = parse_item(
        ews_item(web_client_read_form_query_string="javascript:x"), owa_base="https://m.example/owa/"
    )
    assert event.web_url is None
    assert event.subject == "Review"
    assert parse_item(ews_item(), owa_base=None).web_url is None


def test_exchange_adapter_reads_the_link_from_the_server(exchange_emulator: RunningExchangeEmulator) -> None:
    """The real adapter asks GetItem for WebClientReadFormQueryString and builds the link on the EWS host."""
    adapter = ExchangeProvider.from_credentials(exchange_emulator.credentials(), sleep=lambda _: None)
    calendar_id = exchange_emulator.emulator.calendar_folder_id(exchange_emulator.user)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    item_id = str(
        exchange_emulator.emulator.user_create_event(
            exchange_emulator.user,
            {"subject": "Linked", "start": start, "end": start + dt.timedelta(hours=1)},
        )["id"]
    )
    event = adapter.get_event(calendar_id, item_id)
    assert event.web_url is not None
    host = urlsplit(exchange_emulator.url).hostname
    assert event.web_url.startswith(f"https://{host}/owa/?ItemID=")
    assert event.web_url.endswith("&exvsurl=1&viewmodel=ReadMessageItem")
    assert safe_web_url(event.web_url) == event.web_url
