"""The Microsoft 365 emulator speaks the identity platform's and Graph's wire protocol (msal, requests)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from typing import Any

import msal
import pytest
import requests

from calendarsync.emulators.microsoft_graph import MAX_BATCH_REQUESTS
from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator

# msal recommends form_post; the app uses the query on purpose (see providers/microsoft/oauth.py).
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

ALICE = "alice@contoso.test"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
REDIRECT_URI = "http://127.0.0.1:8000/calendar/microsoft/callback"
TAG_ID = "String {c32b2878-66be-47e8-959e-c5c19f266353} Name calsync_activity_id"
TOMORROW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def at(moment: dt.datetime, zone: str = "UTC") -> dict[str, str]:
    return {"dateTime": moment.replace(tzinfo=None).isoformat(), "timeZone": zone}


def event_body(
    subject: str = "Review", start: dt.datetime = TOMORROW, minutes: int = 30, **extra: Any
) -> dict[str, Any]:
    return {"subject": subject, "start": at(start), "end": at(start + dt.timedelta(minutes=minutes)), **extra}


class Graph:
    """A tiny Graph client over requests (the adapter has its own; this one checks the wire)."""

    def __init__(self, ms: RunningMicrosoftEmulator, scopes: list[str] | None = None) -> None:
        issued = ms.emulator.issue_tokens(ALICE, scopes or SCOPES, ms.client_id)
        self.base = ms.graph_base_url
        self.tokens = issued
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {issued['access_token']}"

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        url = path if path.startswith("http") else self.base + path.lstrip("/")
        return self.session.request(method, url, json=body, headers=headers, timeout=10)

    def ok(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        response = self.call(method, path, body, **headers)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


@pytest.fixture
def ms(microsoft_emulator: RunningMicrosoftEmulator) -> RunningMicrosoftEmulator:
    return microsoft_emulator


@pytest.fixture
def graph(ms: RunningMicrosoftEmulator) -> Graph:
    return Graph(ms)


def calendar_path(ms: RunningMicrosoftEmulator, *rest: str) -> str:
    return "/".join(["me", "calendars", urllib.parse.quote(ms.calendar_id, safe=""), *rest])


# --------------------------------------------------------------------------- identity platform


def msal_app(ms: RunningMicrosoftEmulator) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.verify = str(ms.ca_bundle)
    session.trust_env = False  # REQUESTS_CA_BUNDLE on this machine would override verify
    return msal.ConfidentialClientApplication(
        ms.client_id,
        client_credential=ms.client_secret,
        authority=ms.authority,
        instance_discovery=False,
        http_client=session,
    )


def sign_in(
    ms: RunningMicrosoftEmulator, *, granted: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """msal's flow and the callback query after consenting on the emulator's page."""
    app = msal_app(ms)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    split = urllib.parse.urlsplit(flow["auth_uri"])
    query = {key: values[0] for key, values in urllib.parse.parse_qs(split.query).items()}
    page = requests.get(flow["auth_uri"], verify=str(ms.ca_bundle), timeout=10)
    assert page.status_code == 200
    for scope in query["scope"].split():
        assert f"value='{scope}' checked> {scope}</label>" in page.text  # one checkbox per scope
    form: dict[str, Any] = {key: value for key, value in query.items() if key != "scope"}
    form.update(requested_scope=query["scope"], email=ALICE, decision="allow")
    form["scope"] = query["scope"].split() if granted is None else granted
    answer = requests.post(
        f"{split.scheme}://{split.netloc}{split.path}",
        data=form,
        allow_redirects=False,
        verify=str(ms.ca_bundle),
        timeout=10,
    )
    assert answer.status_code == 302
    callback = urllib.parse.urlsplit(answer.headers["Location"])
    return flow, {key: values[0] for key, values in urllib.parse.parse_qs(callback.query).items()}


def test_identity_is_https_only_with_the_test_ca(ms: RunningMicrosoftEmulator) -> None:
    assert ms.identity_url.startswith("https://")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{ms.authority}/v2.0/.well-known/openid-configuration", verify=True, timeout=10)
    config = requests.get(
        f"{ms.authority}/v2.0/.well-known/openid-configuration", verify=str(ms.ca_bundle), timeout=10
    ).json()
    assert config["token_endpoint"] == f"{ms.authority}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{ms.authority}/oauth2/v2.0/authorize"
    assert config["issuer"].startswith(ms.identity_url)
    assert config["issuer"].endswith("/v2.0")


def test_msal_code_flow_with_pkce_nonce_and_unsigned_id_token(ms: RunningMicrosoftEmulator) -> None:
    flow, callback = sign_in(ms)
    assert "client_info" in callback
    result = msal_app(ms).acquire_token_by_auth_code_flow(flow, callback)
    assert "error" not in result, result
    claims = result["id_token_claims"]  # msal decoded the unsigned id_token and checked its nonce
    config = requests.get(
        f"{ms.authority}/v2.0/.well-known/openid-configuration", verify=str(ms.ca_bundle), timeout=10
    ).json()
    assert claims["iss"] == config["issuer"]
    assert claims["aud"] == ms.client_id
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert claims["preferred_username"] == ALICE
    assert claims["exp"] > claims["iat"]
    assert {"oid", "tid"} <= set(claims)
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": claims["oid"], "utid": claims["tid"]}
    assert "Calendars.ReadWrite" in result["scope"]
    assert result["refresh_token"]
    me = requests.get(
        ms.graph_base_url + "me", headers={"Authorization": f"Bearer {result['access_token']}"}, timeout=10
    )
    assert me.json()["userPrincipalName"] == ALICE


def test_code_is_single_use_and_bound_to_the_pkce_verifier(ms: RunningMicrosoftEmulator) -> None:
    flow, callback = sign_in(ms)
    tampered = {**flow, "code_verifier": "A" * 43}
    assert msal_app(ms).acquire_token_by_auth_code_flow(tampered, dict(callback))["error"] == "invalid_grant"
    flow, callback = sign_in(ms)
    assert "access_token" in msal_app(ms).acquire_token_by_auth_code_flow(dict(flow), dict(callback))
    again = msal_app(ms).acquire_token_by_auth_code_flow(dict(flow), dict(callback))
    assert again["error"] == "invalid_grant"
    assert "AADSTS54005" in again["error_description"]


def test_refresh_rotates_and_revocation_kills_the_grant(ms: RunningMicrosoftEmulator) -> None:
    issued = ms.emulator.issue_tokens(ALICE, SCOPES, ms.client_id)
    fresh = msal_app(ms).acquire_token_by_refresh_token(issued["refresh_token"], SCOPES)
    assert fresh["access_token"] != issued["access_token"]
    assert fresh["refresh_token"] != issued["refresh_token"]
    ms.emulator.revoke_tokens(ALICE)
    refused = msal_app(ms).acquire_token_by_refresh_token(fresh["refresh_token"], SCOPES)
    assert refused["error"] == "invalid_grant"
    assert "AADSTS50173" in refused["error_description"]


def test_wrong_client_secret_is_refused(ms: RunningMicrosoftEmulator) -> None:
    issued = ms.emulator.issue_tokens(ALICE, SCOPES, ms.client_id)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ms.ca_bundle)
    app = msal.ConfidentialClientApplication(
        ms.client_id,
        client_credential="wrong",
        authority=ms.authority,
        instance_discovery=False,
        http_client=session,
    )
    assert app.acquire_token_by_refresh_token(issued["refresh_token"], SCOPES)["error"] == "invalid_client"


def test_denied_consent_redirects_with_access_denied(ms: RunningMicrosoftEmulator) -> None:
    flow = msal_app(ms).initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    split = urllib.parse.urlsplit(flow["auth_uri"])
    query = {key: values[0] for key, values in urllib.parse.parse_qs(split.query).items()}
    form = {
        **{k: v for k, v in query.items() if k != "scope"},
        "requested_scope": query["scope"],
        "decision": "deny",
    }
    answer = requests.post(
        f"{split.scheme}://{split.netloc}{split.path}",
        data=form,
        allow_redirects=False,
        verify=str(ms.ca_bundle),
        timeout=10,
    )
    callback = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
    assert callback["error"] == ["access_denied"]
    assert callback["state"] == [flow["state"]]


def test_unregistered_redirect_uri_gets_an_error_page(ms: RunningMicrosoftEmulator) -> None:
    ms.emulator.register_client(ms.client_id, ms.client_secret, ["http://127.0.0.1:8000/ok"])
    flow = msal_app(ms).initiate_auth_code_flow(SCOPES, redirect_uri="http://127.0.0.1:8000/evil")
    page = requests.get(flow["auth_uri"], verify=str(ms.ca_bundle), timeout=10)
    assert page.status_code == 400
    assert "AADSTS50011" in page.text


# --------------------------------------------------------------------------- Graph: auth and scopes


def test_graph_401_for_missing_expired_and_revoked_tokens(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    assert requests.get(ms.graph_base_url + "me/calendars", timeout=10).status_code == 401
    assert graph.call("GET", "me/calendars").status_code == 200
    ms.emulator.expire_access_tokens(ALICE)
    expired = graph.call("GET", "me/calendars")
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "WWW-Authenticate" in expired.headers


def test_graph_403_without_calendars_permission(ms: RunningMicrosoftEmulator) -> None:
    limited = Graph(ms, ["User.Read"])
    assert limited.call("GET", "me").status_code == 200
    forbidden = limited.call("GET", "me/calendars")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "ErrorAccessDenied"
    read_only = Graph(ms, ["Calendars.Read"])
    assert read_only.call("GET", calendar_path(ms, "events")).status_code == 200
    assert read_only.call("POST", calendar_path(ms, "events"), event_body()).status_code == 403


def test_calendars_list_the_default_one_first(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    ms.emulator.add_calendar(ALICE, None, "Team")
    calendars = graph.ok("GET", "me/calendars")["value"]
    assert [(c["name"], c["isDefaultCalendar"], c["canEdit"]) for c in calendars] == [
        ("Calendar", True, True),
        ("Team", False, True),
    ]


# --------------------------------------------------------------------------- Graph: events


def test_event_round_trip_with_sensitivity_show_as_body_and_extended_property(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    created = graph.ok(
        "POST",
        calendar_path(ms, "events"),
        event_body(
            "Board meeting",
            sensitivity="private",
            showAs="free",
            body={"contentType": "text", "content": "Line one\nLine <two>"},
            location={"displayName": "Room 1"},
            attendees=[{"emailAddress": {"address": "kim@client.test", "name": "Kim"}, "type": "optional"}],
            singleValueExtendedProperties=[{"id": TAG_ID, "value": "act-1"}],
        ),
    )
    assert created["type"] == "singleInstance"
    assert created["@odata.etag"].startswith('W/"')
    assert "singleValueExtendedProperties" not in created  # only when expanded
    assert created["body"]["contentType"] == "html"  # Graph answers HTML unless asked for text
    event_id = urllib.parse.quote(created["id"], safe="")
    text = graph.ok("GET", f"me/events/{event_id}", Prefer='outlook.body-content-type="text"')
    assert text["body"] == {"contentType": "text", "content": "Line one\nLine <two>"}
    assert (text["sensitivity"], text["showAs"]) == ("private", "free")
    assert text["start"] == {"dateTime": TOMORROW.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}
    assert text["attendees"][0]["type"] == "optional"
    expand = f"singleValueExtendedProperties($filter=id eq '{TAG_ID}')"
    expanded = graph.ok("GET", f"me/events/{event_id}?$expand={urllib.parse.quote(expand)}")
    assert expanded["singleValueExtendedProperties"] == [{"id": TAG_ID, "value": "act-1"}]
    berlin = graph.ok("GET", f"me/events/{event_id}", Prefer='outlook.timezone="Europe/Berlin"')
    assert berlin["start"]["timeZone"] == "Europe/Berlin"


def test_web_link_opens_the_event_in_outlook_on_the_web_and_follows_select(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    created = graph.ok("POST", calendar_path(ms, "events"), event_body("Linked"))
    event_id = urllib.parse.quote(created["id"], safe="")
    # The id goes into the link URL-encoded, as Graph writes it ("=" as %3D).
    assert created["webLink"] == (
        f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item"
    )
    assert "=" in created["id"]
    assert "%3D" in created["webLink"]
    assert graph.ok("PATCH", f"me/events/{event_id}", {"subject": "Renamed"})["webLink"] == created["webLink"]
    # $select names properties case-insensitively; what it leaves out is not sent.
    selected = graph.ok("GET", f"me/events/{event_id}?$select=subject,WebLink")
    assert set(selected) == {"@odata.etag", "id", "subject", "webLink"}
    assert selected["webLink"] == created["webLink"]
    assert "webLink" not in graph.ok("GET", f"me/events/{event_id}?$select=subject")


def test_filter_on_the_extended_property_finds_our_event(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    graph.ok(
        "POST",
        calendar_path(ms, "events"),
        event_body("Ours", singleValueExtendedProperties=[{"id": TAG_ID, "value": "it's-1"}]),
    )
    graph.ok("POST", calendar_path(ms, "events"), event_body("Not ours"))
    flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' and ep/value eq 'it''s-1')"
    found = graph.ok(
        "GET",
        calendar_path(ms, "events")
        + "?"
        + urllib.parse.urlencode({"$filter": flt}, quote_via=urllib.parse.quote),
    )
    assert [e["subject"] for e in found["value"]] == ["Ours"]


def test_all_day_events_need_midnights_and_float(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    day = TOMORROW.date()
    bad = graph.call("POST", calendar_path(ms, "events"), {**event_body(), "isAllDay": True})
    assert bad.status_code == 400
    created = graph.ok(
        "POST",
        calendar_path(ms, "events"),
        {
            "subject": "Offsite",
            "isAllDay": True,
            "start": {"dateTime": f"{day}T00:00:00", "timeZone": "Pacific Standard Time"},
            "end": {
                "dateTime": f"{day + dt.timedelta(days=2)}T00:00:00",
                "timeZone": "Pacific Standard Time",
            },
        },
    )
    # Read in UTC, an all-day event is still midnight to midnight on its own dates.
    assert created["start"] == {"dateTime": f"{day}T00:00:00.0000000", "timeZone": "UTC"}
    assert created["end"]["dateTime"].startswith(str(day + dt.timedelta(days=2)))
    assert created["originalStartTimeZone"] == "Pacific Standard Time"


def test_stale_if_match_answers_412(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    created = graph.ok("POST", calendar_path(ms, "events"), event_body())
    path = "me/events/" + urllib.parse.quote(created["id"], safe="")
    updated = graph.ok("PATCH", path, {"subject": "Moved"}, **{"If-Match": created["@odata.etag"]})
    assert updated["@odata.etag"] != created["@odata.etag"]
    stale = graph.call("PATCH", path, {"subject": "Stale"}, **{"If-Match": created["@odata.etag"]})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert graph.call("DELETE", path, **{"If-Match": created["@odata.etag"]}).status_code == 412
    assert graph.call("DELETE", path).status_code == 204
    assert graph.call("GET", path).json()["error"]["code"] == "ErrorItemNotFound"


def test_transaction_id_makes_a_repeated_create_return_the_first_event(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    body = event_body(transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")
    first = graph.ok("POST", calendar_path(ms, "events"), body)
    again = graph.call("POST", calendar_path(ms, "events"), body)
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    other = graph.call("POST", calendar_path(ms, "events"), {**body, "subject": "Different"})
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    ms.emulator.user_delete_event(ALICE, first["id"])
    assert (
        graph.call("POST", calendar_path(ms, "events"), body).json()["error"]["code"]
        == "ErrorDuplicateTransactionId"
    )
    assert len(ms.emulator.user_list_events(ALICE)) == 0


def test_recurring_series_and_its_occurrences(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    series = ms.emulator.user_create_event(
        ALICE,
        event_body(
            "Stand-up",
            recurrence={
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [TOMORROW.strftime("%A").lower()]},
                "range": {
                    "type": "numbered",
                    "startDate": TOMORROW.date().isoformat(),
                    "numberOfOccurrences": 3,
                },
            },
        ),
    )
    assert series["type"] == "seriesMaster"
    page = delta_round(ms, graph)
    occurrences = [item for item in page if item.get("seriesMasterId") == series["id"]]
    assert [item["type"] for item in occurrences] == ["occurrence"] * 3
    assert [item["start"]["dateTime"][:10] for item in occurrences] == [
        str((TOMORROW + dt.timedelta(weeks=n)).date()) for n in range(3)
    ]
    one = graph.ok("GET", "me/events/" + urllib.parse.quote(occurrences[1]["id"], safe=""))
    assert one["seriesMasterId"] == series["id"]


# --------------------------------------------------------------------------- Graph: delta


def delta_round(
    ms: RunningMicrosoftEmulator, graph: Graph, link: str | None = None, page_size: int = 3
) -> list[dict[str, Any]]:
    items, _ = delta_round_with_link(ms, graph, link, page_size)
    return items


def delta_round_with_link(
    ms: RunningMicrosoftEmulator, graph: Graph, link: str | None = None, page_size: int = 3
) -> tuple[list[dict[str, Any]], str]:
    if link is None:
        window = {
            "startDateTime": (TOMORROW - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": (TOMORROW + dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        link = calendar_path(ms, "calendarView", "delta") + "?" + urllib.parse.urlencode(window)
    items: list[dict[str, Any]] = []
    while True:
        page = graph.ok("GET", link, Prefer=f"odata.maxpagesize={page_size}")
        assert len(page["value"]) <= page_size
        items.extend(page["value"])
        if "@odata.nextLink" in page:
            link = page["@odata.nextLink"]
            continue
        return items, page["@odata.deltaLink"]


def test_delta_pages_then_reports_changes_and_removals(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    ids = [
        ms.emulator.user_create_event(ALICE, event_body(f"E{n}", TOMORROW + dt.timedelta(hours=n)))["id"]
        for n in range(7)
    ]
    ms.emulator.user_create_event(ALICE, event_body("Far away", TOMORROW + dt.timedelta(days=400)))
    first, delta_link = delta_round_with_link(ms, graph)
    assert [item["subject"] for item in first] == [f"E{n}" for n in range(7)]  # the window is respected
    assert "singleValueExtendedProperties" not in first[0]
    ms.emulator.user_update_event(ALICE, ids[0], {"subject": "E0 renamed"})
    ms.emulator.user_delete_event(ALICE, ids[1])
    new = ms.emulator.user_create_event(ALICE, event_body("New", TOMORROW + dt.timedelta(days=3)))
    changes, delta_link = delta_round_with_link(ms, graph, delta_link)
    by_id = {item["id"]: item for item in changes}
    assert set(by_id) == {ids[0], ids[1], new["id"]}
    assert by_id[ids[0]]["subject"] == "E0 renamed"
    assert by_id[ids[1]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": ids[1],
        "@removed": {"reason": "deleted"},
    }
    assert delta_round(ms, graph, delta_link) == []


def test_delta_window_is_fixed_and_moves_out_come_as_removed(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    moving = ms.emulator.user_create_event(ALICE, event_body("Moves"))
    _, link = delta_round_with_link(ms, graph)
    later = TOMORROW + dt.timedelta(days=300)
    ms.emulator.user_update_event(
        ALICE, moving["id"], {"start": at(later), "end": at(later + dt.timedelta(hours=1))}
    )
    changes = delta_round(ms, graph, link)
    assert changes == [
        {"@odata.type": "#microsoft.graph.event", "id": moving["id"], "@removed": {"reason": "deleted"}}
    ]


def test_expired_delta_token_answers_410(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    _, link = delta_round_with_link(ms, graph)
    ms.emulator.expire_sync_tokens(ALICE)
    gone = graph.call("GET", link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"


def test_delta_refuses_expand(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    path = (
        calendar_path(ms, "calendarView", "delta")
        + "?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z&$expand=singleValueExtendedProperties"
    )
    assert graph.call("GET", path).status_code == 400


# --------------------------------------------------------------------------- batching, faults, control


def test_json_batch_answers_each_request_by_id(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    requests_ = [
        {
            "id": str(n),
            "method": "POST",
            "url": "/" + calendar_path(ms, "events"),
            "headers": {"Content-Type": "application/json"},
            "body": event_body(f"B{n}"),
        }
        for n in range(3)
    ] + [{"id": "missing", "method": "GET", "url": "/me/events/nope"}]
    answer = graph.ok("POST", "$batch", {"requests": requests_})
    by_id = {r["id"]: r for r in answer["responses"]}
    assert {by_id[str(n)]["status"] for n in range(3)} == {201}
    assert by_id["2"]["body"]["subject"] == "B2"
    assert by_id["missing"]["status"] == 404
    assert ms.emulator.request_counts()["batch"] == 1
    assert ms.emulator.request_counts()["events.create"] == 3


def test_json_batch_limits(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    too_many = [{"id": str(n), "method": "GET", "url": "/me"} for n in range(MAX_BATCH_REQUESTS + 1)]
    assert graph.call("POST", "$batch", {"requests": too_many}).status_code == 400
    no_type = [{"id": "1", "method": "POST", "url": "/me/events", "body": event_body()}]
    assert graph.call("POST", "$batch", {"requests": no_type}).status_code == 400
    ms.emulator.expire_access_tokens()
    assert (
        graph.call("POST", "$batch", {"requests": [{"id": "1", "method": "GET", "url": "/me"}]}).status_code
        == 401
    )


def test_faults_429_with_retry_after_and_connection_reset(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    ms.emulator.inject_faults("429", count=1, retry_after=7)
    throttled = graph.call("GET", "me/calendars")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    ms.emulator.inject_faults("reset", count=1)
    with pytest.raises(requests.ConnectionError):
        graph.call("GET", "me/calendars")
    assert graph.call("GET", "me/calendars").status_code == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        ms.emulator.inject_faults("teapot")


def test_faults_inside_a_batch_hit_matching_parts_only(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    ms.emulator.inject_faults("429", count=1, path_contains="/events", method="POST", retry_after=3)
    parts = [
        {
            "id": str(n),
            "method": "POST",
            "url": "/" + calendar_path(ms, "events"),
            "headers": {"Content-Type": "application/json"},
            "body": event_body(f"P{n}"),
        }
        for n in range(2)
    ]
    answer = graph.ok("POST", "$batch", {"requests": parts})
    statuses = sorted((r["status"], r["headers"].get("Retry-After")) for r in answer["responses"])
    assert statuses == [(201, None), (429, "3")]


def test_control_api_and_demo_page(ms: RunningMicrosoftEmulator) -> None:
    base = ms.graph_url
    assert requests.post(f"{base}/_control/users", json={"email": "bob@contoso.test"}, timeout=10).json() == {
        "ok": True
    }
    calendar = requests.post(
        f"{base}/_control/calendars", json={"email": "bob@contoso.test", "name": "Team"}, timeout=10
    ).json()
    created = requests.post(
        f"{base}/_control/events",
        json={"email": "bob@contoso.test", "calendar_id": calendar["id"], "body": event_body("From control")},
        timeout=10,
    ).json()
    listed = requests.get(
        f"{base}/_control/events",
        params={"email": "bob@contoso.test", "calendar_id": calendar["id"]},
        timeout=10,
    ).json()
    assert [e["id"] for e in listed["value"]] == [created["id"]]
    page = requests.get(f"{base}/", timeout=10)
    assert "Microsoft 365 emulator" in page.text
    assert "From control" in page.text
    made = requests.post(
        f"{base}/_demo/events/create",
        data={
            "email": ALICE,
            "subject": "Demo made",
            "start": TOMORROW.strftime("%Y-%m-%dT%H:%M"),
            "end": (TOMORROW + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert made.status_code == 303
    assert [e["subject"] for e in ms.emulator.user_list_events(ALICE)] == ["Demo made"]


def test_reset_forgets_everything(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    graph.ok("GET", "me/calendars")
    ms.emulator.reset()
    assert ms.emulator.user_emails() == []
    assert ms.emulator.request_counts() == {}
