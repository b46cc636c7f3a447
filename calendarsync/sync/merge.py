"""Three-way, field-by-field merge of a CRM activity and its calendar event against their snapshot.

Each side is compared with what both last agreed on (R11): a field changed on one side only takes
that side's value; changed on both to different values is a conflict, won by the later change *of
that field* (the CRM keeps a change time per field; the calendar gives one ``updated`` stamp per
event, the best it has) and recorded. Attendees are a set of e-mails: additions and removals of
both sides combine, never a conflict. A side that did not change is never "changed back", so a
sync never echoes its own writes, and ``write_to_calendar`` names only what must be written.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from calendarsync.sync.mapping import FIELD_NAMES, Fields

_MISSING = object()
ATTENDEES = "attendees"


class Mode(enum.Enum):
    BOTH = "both"  # two-way, or a CRM-made event in one-way (R3, R4)
    CALENDAR_WINS = "calendar_wins"  # a read-only recurring occurrence (R7)
    CRM_WINS = "crm_wins"  # one-way: calendar edits of calendar-made items are not applied (R4)


@dataclass(frozen=True)
class FieldConflict:
    field: str
    winner: str  # "crm" or "calendar"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "winner": self.winner}


@dataclass
class MergeOutcome:
    crm: Fields  # the CRM side after the merge
    cal: Fields  # the calendar side after the merge
    apply_to_crm: list[str] = field(default_factory=list)
    write_to_calendar: list[str] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)

    def snapshot(self) -> dict[str, Fields]:
        return {"crm": dict(self.crm), "cal": dict(self.cal)}


Translate = Callable[[str, Any], Any]


def identity(_name: str, value: Any) -> Any:
    return value


ChangeTimes = Mapping[str, dt.datetime | None]


def merge_attendees(agreed_crm: Any, agreed_cal: Any, crm: list[str], cal: list[str]) -> list[str]:
    """Three-way merge of two e-mail sets: what either side added stays, what either side removed goes.

    Without an agreed list (``_MISSING``), nothing counts as removed: both sides' guests stay.
    """
    removed: set[str] = set()
    if isinstance(agreed_crm, list):
        removed |= set(agreed_crm) - set(crm)
    if isinstance(agreed_cal, list):
        removed |= set(agreed_cal) - set(cal)
    return sorted((set(crm) | set(cal)) - removed)


def merge(
    snapshot: Mapping[str, Any] | None,
    crm_now: Fields,
    cal_now: Fields,
    *,
    mode: Mode = Mode.BOTH,
    to_crm: Translate = identity,
    to_cal: Translate = identity,
    crm_changed_at: ChangeTimes | dt.datetime | None = None,
    cal_updated: dt.datetime | None = None,
    never_to_calendar: Collection[str] = (),
) -> MergeOutcome:
    """Merge; with no snapshot (an adopted event), every difference is settled by the later change.

    ``crm_changed_at``: the CRM's change time of each field (or one time for all of them).
    ``never_to_calendar``: fields that only flow from the calendar into the CRM (a CRM change of
    them stays in the CRM).
    """
    agreed_crm: Mapping[str, Any] = (snapshot or {}).get("crm") or {}
    agreed_cal: Mapping[str, Any] = (snapshot or {}).get("cal") or {}

    def calendar_is_later(name: str) -> bool:
        changed_at = crm_changed_at.get(name) if isinstance(crm_changed_at, Mapping) else crm_changed_at
        return cal_updated is not None and (changed_at is None or cal_updated > changed_at)

    outcome = MergeOutcome(crm={}, cal={})
    for name in FIELD_NAMES:
        crm_value, cal_value = crm_now[name], cal_now[name]
        crm_changed = crm_value != agreed_crm.get(name, _MISSING)
        cal_changed = cal_value != agreed_cal.get(name, _MISSING)
        new_crm, new_cal = crm_value, cal_value
        if mode is Mode.CALENDAR_WINS:
            if crm_changed or cal_changed:
                new_crm = to_crm(name, cal_value)
        elif mode is Mode.CRM_WINS:
            if crm_changed and name not in never_to_calendar:
                new_cal = to_cal(name, crm_value)
        elif name == ATTENDEES and crm_changed and cal_changed:
            combined = merge_attendees(
                agreed_crm.get(name, _MISSING), agreed_cal.get(name, _MISSING), crm_value, cal_value
            )
            new_crm, new_cal = to_crm(name, combined), to_cal(name, combined)
        elif cal_changed and not crm_changed:
            new_crm = to_crm(name, cal_value)
        elif crm_changed and not cal_changed:
            if name not in never_to_calendar:
                new_cal = to_cal(name, crm_value)
        elif crm_changed and cal_changed and to_crm(name, cal_value) != crm_value:
            if calendar_is_later(name):
                new_crm = to_crm(name, cal_value)
                outcome.conflicts.append(FieldConflict(name, "calendar"))
            else:
                if name not in never_to_calendar:
                    new_cal = to_cal(name, crm_value)
                outcome.conflicts.append(FieldConflict(name, "crm"))
        outcome.crm[name], outcome.cal[name] = new_crm, new_cal
        if new_crm != crm_value:
            outcome.apply_to_crm.append(name)
        if new_cal != cal_value:
            outcome.write_to_calendar.append(name)
    return outcome
