"""The Graph emulator's occurrences: changing or deleting one, a single event becoming a series, refusals.

As Graph documents them: PATCH on an occurrence id makes it `type: "exception"`
(https://learn.microsoft.com/en-us/graph/api/resources/event); calendarView delta returns single
instances, occurrences and exceptions, deleted ones as `@removed`
(https://learn.microsoft.com/en-us/graph/delta-query-events); a moved occurrence may not reach
the day of its neighbours (https://learn.microsoft.com/en-us/graph/api/event-update).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest

from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator
from tests.calendarsync.emulators.test_microsoft_emulator import (
    ALICE,
    TAG_ID,
    TOMORROW,
    Graph,
    at,
    delta_round,
    delta_round_with_link,
    event_body,
)


@pytest.fixture
def ms(microsoft_emulator: RunningMicrosoftEmulator) -> RunningMicrosoftEmulator:
    return microsoft_emulator


@pytest.fixture
def graph(ms: RunningMicrosoftEmulator) -> Graph:
    return Graph(ms)


def daily(count: int = 3) -> dict[str, Any]:
    return {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": TOMORROW.date().isoformat(), "numberOfOccurrences": count},
    }


def event_path(item_id: str) -> str:
    return "me/events/" + urllib.parse.quote(item_id, safe="")


def series_with_occurrences(
    ms: RunningMicrosoftEmulator, graph: Graph, count: int = 3
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    series = ms.emulator.user_create_event(ALICE, event_body("Stand-up", recurrence=daily(count)))
    items, link = delta_round_with_link(ms, graph)
    return series, [item for item in items if item.get("seriesMasterId") == series["id"]], link


def test_patching_an_occurrence_makes_it_an_exception_that_delta_reports(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    series, occurrences, link = series_with_occurrences(ms, graph)
    second = occurrences[1]
    later = TOMORROW + dt.timedelta(days=1, hours=2)

    changed = graph.ok(
        "PATCH",
        event_path(second["id"]),
        {"subject": "Stand-up (moved)", "start": at(later), "end": at(later + dt.timedelta(minutes=30))},
    )
    changes, link = delta_round_with_link(ms, graph, link)

    assert (changed["id"], changed["type"], changed["seriesMasterId"]) == (
        second["id"],
        "exception",
        series["id"],
    )
    assert changed["subject"] == "Stand-up (moved)"
    assert changed["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))
    assert changed["originalStart"] == second["originalStart"]
    assert changed["recurrence"] is None
    by_id = {item["id"]: item for item in changes}
    assert by_id[second["id"]]["type"] == "exception"
    assert by_id[second["id"]]["subject"] == "Stand-up (moved)"
    assert {item["type"] for item in changes} <= {"occurrence", "exception"}  # never the master
    assert graph.ok("GET", event_path(second["id"]))["type"] == "exception"
    master = graph.ok("GET", event_path(series["id"]))
    assert (master["type"], master["subject"]) == ("seriesMaster", "Stand-up")
    assert delta_round(ms, graph, link) == []


def test_an_exception_keeps_what_it_changed_and_follows_the_series_otherwise(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    series, occurrences, _ = series_with_occurrences(ms, graph)
    graph.ok("PATCH", event_path(occurrences[0]["id"]), {"location": {"displayName": "Room 7"}})

    graph.ok("PATCH", event_path(series["id"]), {"subject": "Daily sync"})
    first = graph.ok("GET", event_path(occurrences[0]["id"]))
    second = graph.ok("GET", event_path(occurrences[1]["id"]))

    assert (first["type"], first["subject"], first["location"]["displayName"]) == (
        "exception",
        "Daily sync",
        "Room 7",
    )
    assert (second["type"], second["subject"], second["location"]["displayName"]) == (
        "occurrence",
        "Daily sync",
        "",
    )


def test_an_occurrence_cannot_move_to_a_neighbours_day(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    _, occurrences, _ = series_with_occurrences(ms, graph)
    next_day = TOMORROW + dt.timedelta(days=2)

    crossing = graph.call(
        "PATCH",
        event_path(occurrences[1]["id"]),
        {"start": at(next_day), "end": at(next_day + dt.timedelta(minutes=30))},
    )
    recurring = graph.call("PATCH", event_path(occurrences[1]["id"]), {"recurrence": daily(2)})

    assert crossing.status_code == 400
    assert crossing.json()["error"] == {
        **crossing.json()["error"],
        "code": "ErrorOccurrenceCrossingBoundary",
        "message": "Modified occurrence is crossing or overlapping adjacent occurrence.",
    }
    assert recurring.status_code == 400
    assert graph.ok("GET", event_path(occurrences[1]["id"]))["type"] == "occurrence"


def test_deleting_an_occurrence_or_exception_comes_as_removed(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    _, occurrences, link = series_with_occurrences(ms, graph)
    graph.ok("PATCH", event_path(occurrences[2]["id"]), {"subject": "Last"})
    _, link = delta_round_with_link(ms, graph, link)

    assert graph.call("DELETE", event_path(occurrences[0]["id"])).status_code == 204
    assert graph.call("DELETE", event_path(occurrences[2]["id"])).status_code == 204
    changes = delta_round(ms, graph, link)

    removed = {item["id"] for item in changes if "@removed" in item}
    assert removed == {occurrences[0]["id"], occurrences[2]["id"]}
    assert [item["id"] for item in changes if "@removed" not in item] == [occurrences[1]["id"]]
    assert graph.call("GET", event_path(occurrences[0]["id"])).status_code == 404
    assert graph.call("PATCH", event_path(occurrences[2]["id"]), {"subject": "x"}).status_code == 404


def test_a_single_event_patched_into_a_series_becomes_its_master(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    single = ms.emulator.user_create_event(ALICE, event_body("Kick-off"))
    first, link = delta_round_with_link(ms, graph)

    became = graph.ok("PATCH", event_path(single["id"]), {"recurrence": daily(2)})
    changes = delta_round(ms, graph, link)

    assert [item["id"] for item in first] == [single["id"]]
    assert (became["id"], became["type"]) == (single["id"], "seriesMaster")
    # The calendar view holds occurrences, not masters: the single instance is removed and the
    # series' occurrences come in its place.
    assert [item for item in changes if "@removed" in item] == [
        {"@odata.type": "#microsoft.graph.event", "id": single["id"], "@removed": {"reason": "deleted"}}
    ]
    occurrences = [item for item in changes if "@removed" not in item]
    assert [(item["type"], item["seriesMasterId"]) for item in occurrences] == [
        ("occurrence", single["id"])
    ] * 2
    assert [item["start"]["dateTime"][:10] for item in occurrences] == [
        str((TOMORROW + dt.timedelta(days=n)).date()) for n in range(2)
    ]


def test_the_user_changes_one_occurrence_in_outlook(ms: RunningMicrosoftEmulator) -> None:
    series = ms.emulator.user_create_event(
        ALICE,
        event_body(
            "Stand-up",
            recurrence=daily(3),
            singleValueExtendedProperties=[{"id": TAG_ID, "value": "41"}],
        ),
    )
    instances = ms.emulator.user_list_instances(ALICE, series["id"])

    changed = ms.emulator.user_update_event(ALICE, instances[1]["id"], {"sensitivity": "private"})
    ms.emulator.user_delete_event(ALICE, instances[2]["id"])
    after = ms.emulator.user_list_instances(ALICE, series["id"])

    assert [item["type"] for item in instances] == ["occurrence"] * 3
    assert (changed["type"], changed["sensitivity"]) == ("exception", "private")
    assert changed["singleValueExtendedProperties"] == [{"id": TAG_ID, "value": "41"}]
    assert [(item["id"], item["type"]) for item in after] == [
        (instances[0]["id"], "occurrence"),
        (instances[1]["id"], "exception"),
    ]


def test_an_injected_refusal_hits_the_next_write_to_that_item_only(
    ms: RunningMicrosoftEmulator, graph: Graph
) -> None:
    mine = ms.emulator.user_create_event(ALICE, event_body("Mine"))
    other = ms.emulator.user_create_event(ALICE, event_body("Other"))
    ms.emulator.inject_event_fault(mine["id"])

    assert graph.call("GET", event_path(mine["id"])).status_code == 200
    assert graph.call("PATCH", event_path(other["id"]), {"subject": "O"}).status_code == 200
    refused = graph.call("PATCH", event_path(mine["id"]), {"subject": "M"})
    retried = graph.call("PATCH", event_path(mine["id"]), {"subject": "M"})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ErrorAccessDenied"
    assert refused.json()["error"]["message"] == "Access is denied. Check credentials and try again."
    assert retried.status_code == 200


def test_a_refusal_for_an_occurrence_and_inside_a_batch(ms: RunningMicrosoftEmulator, graph: Graph) -> None:
    series, occurrences, _ = series_with_occurrences(ms, graph, count=2)
    ms.emulator.inject_event_fault(occurrences[0]["id"], 404)

    batch = graph.ok(
        "POST",
        "$batch",
        {
            "requests": [
                {"id": str(n), "method": "DELETE", "url": "/" + event_path(item["id"])}
                for n, item in enumerate(occurrences)
            ]
        },
    )

    statuses = {part["id"]: part["status"] for part in batch["responses"]}
    assert statuses == {"0": 404, "1": 204}
    assert [item["id"] for item in ms.emulator.user_list_instances(ALICE, series["id"])] == [
        occurrences[0]["id"]
    ]
    with pytest.raises(ValueError, match="Graph answers"):
        ms.emulator.inject_event_fault(series["id"], 404, "ErrorAccessDenied")
    ms.emulator.inject_event_fault(series["id"])
    ms.emulator.clear_faults()
    assert graph.call("PATCH", event_path(series["id"]), {"subject": "S"}).status_code == 200
