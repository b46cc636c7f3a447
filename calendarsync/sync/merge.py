"""Three-way, field-by-field merge of a CRM activity and its calendar event against their snapshot.

Each side is compared with what both last agreed on: a field changed on one side only takes
that side's value; changed on both to different values is a conflict, won by the later change
(the provider's ``updated`` stamp against the activity's ``sync_changed_at``) and recorded. A
side that did not change is never "changed back", so a sync never echoes its own writes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calendarsync.sync.mapping import FIELD_NAMES, Fields

_MISSING = object()


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


def merge(
    snapshot: Mapping[str, Any] | None,
    crm_now: Fields,
    cal_now: Fields,
    *,
    mode: Mode = Mode.BOTH,
    to_crm: Translate = identity,
    to_cal: Translate = identity,
    crm_changed_at: dt.datetime | None = None,
    cal_updated: dt.datetime | None = None,
) -> MergeOutcome:
    """Merge; with no snapshot (an adopted event), every difference is settled by the later change."""
    agreed_crm: Mapping[str, Any] = (snapshot or {}).get("crm") or {}
    agreed_cal: Mapping[str, Any] = (snapshot or {}).get("cal") or {}
    calendar_is_later = cal_updated is not None and (crm_changed_at is None or cal_updated > crm_changed_at)
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
            if crm_changed:
                new_cal = to_cal(name, crm_value)
        elif cal_changed and not crm_changed:
            new_crm = to_crm(name, cal_value)
        elif crm_changed and not cal_changed:
            new_cal = to_cal(name, crm_value)
        elif crm_changed and cal_changed and to_crm(name, cal_value) != crm_value:
            if calendar_is_later:
                new_crm = to_crm(name, cal_value)
                outcome.conflicts.append(FieldConflict(name, "calendar"))
            else:
                new_cal = to_cal(name, crm_value)
                outcome.conflicts.append(FieldConflict(name, "crm"))
        outcome.crm[name], outcome.cal[name] = new_crm, new_cal
        if new_crm != crm_value:
            outcome.apply_to_crm.append(name)
        if new_cal != cal_value:
            outcome.write_to_calendar.append(name)
    return outcome
