"""The Exchange emulator speaks EWS as Exchange 2016 does: checked on the wire and with exchangelib itself."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
import requests
from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorInvalidSyncStateData, ErrorIrresolvableConflict, ErrorServerBusy
from exchangelib.folders import Calendar, Root
from exchangelib.items import ALWAYS_OVERWRITE, NEVER_OVERWRITE, CalendarItem
from exchangelib.properties import CalendarView, ItemId
from exchangelib.services import FindItem, GetItem, SyncFolderItems

from calendarsync.emulators.exchange import MFA_DIAGNOSTICS
from calendarsync.providers.exchange import client as exchange_client
from calendarsync.providers.exchange.services import fields
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

UTC = EWSTimeZone("UTC")
TOMORROW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
GET_FOLDER = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
  <s:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>
  <m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder></s:Body>
</s:Envelope>"""


@pytest.fixture
def ews(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    return exchange_emulator


def account_for(ews: RunningExchangeEmulator) -> Any:
    return connected(ews)[0]


def connected(ews: RunningExchangeEmulator) -> tuple[Any, Any]:
    """An exchangelib Account on the emulator, and its calendar folder (distinguished id set up front)."""
    client = exchange_client.ExchangeClient(exchange_client.ExchangeLogin.from_credentials(ews.credentials()))
    return client.account, client.calendar_folder("calendar")


def soap(ews: RunningExchangeEmulator, body: str, password: str | None = None) -> requests.Response:
    return requests.post(
        ews.server_url,
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        auth=(ews.user, password or ews.password),
        timeout=5,
    )


def test_responses_carry_the_server_version_and_the_m_t_namespaces(ews: RunningExchangeEmulator) -> None:
    response = soap(ews, GET_FOLDER)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    text = response.text
    # Exchange Server 2016 CU23 by default, as the real one says it (its schema stamp in Version).
    assert (
        '<t:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" '
        'MinorBuildNumber="6" Version="V2017_07_11"/>'
    ) in text
    assert (
        '<m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"' in text
    )
    assert (
        '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' in text
    )
    assert "<t:CalendarFolder><t:FolderId" in text
    assert ews.emulator.request_counts() == {"GetFolder": 1}


def test_a_wrong_password_gets_a_plain_401(ews: RunningExchangeEmulator) -> None:
    response = soap(ews, GET_FOLDER, password="wrong")
    assert response.status_code == 401
    # IIS's challenges, one header each: Windows authentication, then Basic.
    assert response.raw.headers.getlist("WWW-Authenticate") == [
        "Negotiate",
        "NTLM",
        f'Basic realm="{ews.url.removeprefix("http://")}"',
    ]
    assert "X-MS-Diagnostics" not in response.headers
    assert ews.emulator.request_counts() == {"401": 1}


def test_a_two_factor_account_refuses_its_password_and_takes_its_app_password(
    ews: RunningExchangeEmulator,
) -> None:
    ews.emulator.add_user(ews.user, ews.password, two_factor=True, app_password="app-secret-1")
    refused = soap(ews, GET_FOLDER)
    assert refused.status_code == 401
    assert refused.headers["X-MS-Diagnostics"] == MFA_DIAGNOSTICS
    assert soap(ews, GET_FOLDER, password="app-secret-1").status_code == 200
    # A wrong password is just wrong: no hint that the account has a second factor.
    assert "X-MS-Diagnostics" not in soap(ews, GET_FOLDER, password="guess").headers
    ews.emulator.revoke(ews.user)  # a password change revokes the app password too
    assert soap(ews, GET_FOLDER, password="app-secret-1").status_code == 401


def test_sync_folder_items_pages_by_max_changes_and_ends_with_includes_last_item(
    ews: RunningExchangeEmulator,
) -> None:
    for n in range(5):
        ews.emulator.user_create_event(
            ews.user, {"subject": f"E{n}", "start": TOMORROW, "end": TOMORROW + dt.timedelta(hours=1)}
        )
    account, folder = connected(ews)
    service = SyncFolderItems(account=account)
    first = list(
        service.call(
            folder=folder,
            shape="IdOnly",
            additional_fields=None,
            sync_state=None,
            ignore=None,
            max_changes_returned=2,
            sync_scope=None,
        )
    )
    assert [kind for kind, _ in first] == ["create", "create"]
    assert service.includes_last_item_in_range is False
    rest = list(folder.sync_items(sync_state=service.sync_state, max_changes_returned=2))
    assert len(rest) == 3
    assert list(folder.sync_items(sync_state=folder.item_sync_state)) == []
    # An expired state is refused: the client must start over.
    ews.emulator.expire_sync_tokens(ews.user)
    with pytest.raises(ErrorInvalidSyncStateData):
        list(folder.sync_items(sync_state=folder.item_sync_state))


def test_sync_reports_updates_and_moves_to_deleted_items_as_deletes(ews: RunningExchangeEmulator) -> None:
    kept = ews.emulator.user_create_event(ews.user, {"subject": "Keep", "start": TOMORROW, "end": TOMORROW})
    gone = ews.emulator.user_create_event(ews.user, {"subject": "Go", "start": TOMORROW, "end": TOMORROW})
    _, folder = connected(ews)
    list(folder.sync_items())
    ews.emulator.user_update_event(ews.user, kept["id"], {"subject": "Kept"})
    ews.emulator.user_delete_event(ews.user, gone["id"])
    # Created after the state and deleted before the next call: the client never had it (ICS).
    brief = ews.emulator.user_create_event(ews.user, {"subject": "Brief", "start": TOMORROW, "end": TOMORROW})
    ews.emulator.user_delete_event(ews.user, brief["id"])
    changes = {(kind, item.id) for kind, item in folder.sync_items(sync_state=folder.item_sync_state)}
    assert changes == {("update", kept["id"]), ("delete", gone["id"])}
    trashed = [
        e for e in ews.emulator.user_list_events(ews.user, include_deleted=True) if e["folder"] != "calendar"
    ]
    assert sorted(e["subject"] for e in trashed) == ["Brief", "Go"]
    assert gone["id"] not in {e["id"] for e in trashed}  # Exchange gives a moved item a new id


def test_calendar_view_expands_a_series_that_find_item_lists_once(ews: RunningExchangeEmulator) -> None:
    series = ews.emulator.user_create_event(
        ews.user,
        {
            "subject": "Stand-up",
            "start": TOMORROW,
            "end": TOMORROW + dt.timedelta(minutes=15),
            "time_zone": "Europe/Berlin",
            "recurrence": {"pattern": "daily", "count": 5},
        },
    )
    _, folder = connected(ews)
    start = EWSDateTime.from_datetime(TOMORROW - dt.timedelta(days=1)).astimezone(UTC)
    view = list(
        folder.view(start=start, end=start + dt.timedelta(days=30)).only("subject", "type", "uid", "start")
    )
    assert [item.type for item in view] == ["Occurrence"] * 5
    assert [item.start for item in view] == [TOMORROW + dt.timedelta(days=n) for n in range(5)]
    assert {item.uid for item in view} == {series["uid"]}
    assert len({item.id for item in view}) == 5
    masters = list(folder.all().only("subject", "type"))
    assert [(item.id, item.type) for item in masters] == [(series["id"], "RecurringMaster")]
    # One occurrence changed in Outlook: an exception of the series, under the same occurrence id.
    ews.emulator.user_update_event(ews.user, view[1].id, {"subject": "Stand-up (moved)"})
    again = list(folder.view(start=start, end=start + dt.timedelta(days=30)).only("subject", "type"))
    assert [(item.id, item.subject, item.type) for item in again][1] == (
        view[1].id,
        "Stand-up (moved)",
        "Exception",
    )


def test_a_calendar_view_is_capped_and_says_so(ews: RunningExchangeEmulator) -> None:
    for n in range(3):
        ews.emulator.user_create_event(ews.user, {"subject": f"E{n}", "start": TOMORROW, "end": TOMORROW})
    account, folder = connected(ews)
    service = FindItem(account=account, page_size=2)
    view = CalendarView(
        start=EWSDateTime.from_datetime(TOMORROW - dt.timedelta(days=1)).astimezone(UTC),
        end=EWSDateTime.from_datetime(TOMORROW + dt.timedelta(days=1)).astimezone(UTC),
        max_items=2,
    )
    found = list(
        service.call(
            folders=[folder],
            additional_fields=fields("subject"),
            restriction=None,
            order_fields=None,
            shape="IdOnly",
            query_string=None,
            depth="Shallow",
            calendar_view=view,
            max_items=2,
            offset=0,
        )
    )
    assert len(found) == 2


def test_update_item_with_a_stale_change_key_is_an_irresolvable_conflict(
    ews: RunningExchangeEmulator,
) -> None:
    account, folder = connected(ews)
    item = CalendarItem(account=account, folder=folder, subject="One", start=TOMORROW, end=TOMORROW)
    item.save(send_meeting_invitations="SendToNone")
    stale = item.changekey
    item.subject = "Two"
    item.save(update_fields=["subject"], conflict_resolution=NEVER_OVERWRITE)
    assert item.changekey != stale
    old = CalendarItem(account=account, folder=folder, id=item.id, changekey=stale, subject="Three")
    with pytest.raises(ErrorIrresolvableConflict):
        old.save(update_fields=["subject"], conflict_resolution=NEVER_OVERWRITE)
    old.save(update_fields=["subject"], conflict_resolution=ALWAYS_OVERWRITE)
    assert ews.emulator.user_get_event(ews.user, item.id)["subject"] == "Three"  # type: ignore[index]


def get_item(item_id: str, *field_uris: str) -> str:
    extra = "".join(f'<t:FieldURI FieldURI="{uri}"/>' for uri in field_uris)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
  <s:Body><m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>
  <t:AdditionalProperties>{extra}</t:AdditionalProperties></m:ItemShape>
  <m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:GetItem></s:Body>
</s:Envelope>"""


def test_web_client_read_form_query_string_is_the_query_to_append_to_owa(
    ews: RunningExchangeEmulator,
) -> None:
    item_id = str(
        ews.emulator.user_create_event(
            ews.user, {"subject": "Linked", "start": TOMORROW, "end": TOMORROW + dt.timedelta(hours=1)}
        )["id"]
    )
    query = f"?ItemID={urllib.parse.quote(item_id, safe='')}&exvsurl=1&viewmodel=ReadMessageItem"
    assert query.count("%3D") == 2  # the EWS id goes in URL-encoded (its base64 padding "==")
    wire = soap(ews, get_item(item_id, "item:WebClientReadFormQueryString")).text
    escaped = query.replace("&", "&amp;")
    assert f"<t:WebClientReadFormQueryString>{escaped}</t:WebClientReadFormQueryString>" in wire
    assert "WebClientReadFormQueryString" not in soap(ews, get_item(item_id, "item:Subject")).text
    # exchangelib reads it as the item's web_client_read_form_query_string.
    account, _ = connected(ews)
    [item] = GetItem(account=account).call(
        items=[ItemId(id=item_id)],
        additional_fields=fields("web_client_read_form_query_string"),
        shape="IdOnly",
    )
    assert item.web_client_read_form_query_string == query


def test_busy_is_a_soap_fault_with_the_back_off_time(ews: RunningExchangeEmulator) -> None:
    ews.emulator.inject_faults("busy", count=1, operation="GetFolder", back_off_ms=7000)
    response = soap(ews, GET_FOLDER)
    assert response.status_code == 500
    assert "<faultcode" in response.text
    assert '<t:Value Name="BackOffMilliseconds">7000</t:Value>' in response.text
    ews.emulator.inject_faults("busy", count=1, back_off_ms=7000)
    account = account_for(ews)
    with pytest.raises(ErrorServerBusy) as caught:
        Calendar.get_distinguished(root=Root(account=account))
    assert caught.value.back_off == 7.0


@pytest.mark.parametrize("kind", ["500", "reset", "timeout"])
def test_injected_failures(ews: RunningExchangeEmulator, kind: str) -> None:
    ews.emulator.timeout_seconds = 1.5
    ews.emulator.inject_faults(kind, count=1)
    if kind == "500":
        response = soap(ews, GET_FOLDER)
        assert response.status_code == 500
        assert "Server Error in '/EWS' Application" in response.text
    elif kind == "reset":
        with pytest.raises(requests.ConnectionError):
            soap(ews, GET_FOLDER)
    else:
        with pytest.raises(requests.Timeout):
            requests.post(ews.server_url, data=GET_FOLDER, auth=(ews.user, ews.password), timeout=0.3)
    assert soap(ews, GET_FOLDER).status_code == 200  # one fault only


def test_busy_items_fail_alone_inside_a_create_item(ews: RunningExchangeEmulator) -> None:
    ews.emulator.inject_faults("busy-item", count=1)
    account, folder = connected(ews)
    items = [
        CalendarItem(account=account, folder=folder, subject=f"B{n}", start=TOMORROW, end=TOMORROW)
        for n in range(3)
    ]
    with pytest.raises(ErrorServerBusy):
        account.bulk_create(folder=folder, items=items, send_meeting_invitations="SendToNone")
    assert sorted(e["subject"] for e in ews.emulator.user_list_events(ews.user)) == ["B1", "B2"]
    assert ews.emulator.request_counts()["CreateItem"] == 1


def test_a_folder_taken_away_answers_access_denied(ews: RunningExchangeEmulator) -> None:
    ews.emulator.set_calendar_access(ews.user, False)
    text = soap(ews, GET_FOLDER).text
    assert "<m:ResponseCode>ErrorAccessDenied</m:ResponseCode>" in text


def test_demo_page_and_control_api_play_the_user(ews: RunningExchangeEmulator) -> None:
    base = ews.url
    page = requests.get(f"{base}/", timeout=5)
    assert page.status_code == 200
    assert ews.user in page.text
    assert ews.server_url in page.text
    created = requests.post(
        f"{base}/_demo/events/create",
        data={
            "email": ews.user,
            "subject": "From the demo",
            "start": "2030-01-31T09:00",
            "end": "2030-01-31T10:00",
            "time_zone": "Europe/Berlin",
        },
        timeout=5,
        allow_redirects=False,
    )
    assert created.status_code == 303
    [event] = ews.emulator.user_list_events(ews.user)
    assert event["subject"] == "From the demo"
    assert event["start"] == "2030-01-31T08:00:00+00:00"
    requests.post(
        f"{base}/_demo/users/two_factor",
        data={"email": ews.user, "enabled": "1", "app_password": "x1"},
        timeout=5,
    )
    assert "Two-factor sign-in is <strong>on</strong>" in requests.get(f"{base}/", timeout=5).text
    added = requests.post(
        f"{base}/_control/users",
        json={"email": "new@example.com", "password": "pw", "two_factor": True, "app_password": "apw"},
        timeout=5,
    )
    assert added.json() == {"ok": True}
    made = requests.post(
        f"{base}/_control/events",
        json={
            "email": "new@example.com",
            "fields": {
                "subject": "API",
                "start": "2030-02-01T10:00:00+00:00",
                "end": "2030-02-01T11:00:00+00:00",
            },
        },
        timeout=5,
    ).json()
    listed = requests.get(f"{base}/_control/events", params={"email": "new@example.com"}, timeout=5).json()
    assert [e["id"] for e in listed["items"]] == [made["id"]]
    assert requests.post(f"{base}/_control/faults", json={"kind": "nope"}, timeout=5).status_code == 400
