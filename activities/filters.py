"""The activity filters (A7) shared by the list, the calendar (A8) and the CSV export.

The filter form reads GET parameters; :func:`filter_activities` turns its result into
SQL conditions on a queryset that already came from ``visible_activities`` (A5/A6).
Day boundaries ("today", "this week", a date range) are the viewer's local days:
timed activities compare ``start_at`` with the viewer's local midnights, all-day
activities compare their ``due_date``.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db.models import F, Q, QuerySet
from django.http import QueryDict

from accounts.models import User
from activities.bounds import BoundedDateField, SafeModelMultipleChoiceField
from activities.models import Activity, ActivityType
from activities.visibility import masked_condition, mine_condition, search_condition

if TYPE_CHECKING:
    from collections.abc import Mapping


class OwnerChoice(enum.StrEnum):
    ME = "me"
    ALL = "all"


class StatusChoice(enum.StrEnum):
    TODO = "todo"
    DONE = "done"
    ALL = "all"


class TimeChoice(enum.StrEnum):
    ALL = "all"
    OVERDUE = "overdue"
    TODAY = "today"
    TOMORROW = "tomorrow"
    THIS_WEEK = "this_week"
    NEXT_WEEK = "next_week"
    RANGE = "range"


class SortChoice(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


STATUS_LABELS = {StatusChoice.TODO: "To do", StatusChoice.DONE: "Done", StatusChoice.ALL: "All"}
TIME_LABELS = {
    TimeChoice.ALL: "Any time",
    TimeChoice.OVERDUE: "Overdue",
    TimeChoice.TODAY: "Today",
    TimeChoice.TOMORROW: "Tomorrow",
    TimeChoice.THIS_WEEK: "This week",
    TimeChoice.NEXT_WEEK: "Next week",
    TimeChoice.RANGE: "Date range",
}
SORT_LABELS = {SortChoice.ASC: "Due date, earliest first", SortChoice.DESC: "Due date, latest first"}


@dataclass(frozen=True)
class ActivityFilters:
    owner: OwnerChoice | int = OwnerChoice.ME
    type_ids: tuple[int, ...] = ()
    status: StatusChoice = StatusChoice.TODO
    time: TimeChoice = TimeChoice.ALL
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""
    sort: SortChoice = SortChoice.ASC


DEFAULT_FILTERS = ActivityFilters()


def company_users(user: User) -> QuerySet[User]:
    """Everyone in the user's company, deactivated users included: their activities remain."""
    if user.company_id is None:
        return User.objects.none()
    return User.objects.filter(company_id=user.company_id)


def company_types(user: User) -> QuerySet[ActivityType]:
    """All the company's activity types, active or not (A2)."""
    if user.company_id is None:
        return ActivityType.objects.none()
    return ActivityType.objects.filter(company_id=user.company_id)


class ActivityFilterForm(forms.Form):
    """GET filters. Missing parameters take their defaults; a bad value is reported and ignored."""

    owner = forms.ChoiceField(label="Owner")
    types = SafeModelMultipleChoiceField(
        label="Types",
        queryset=ActivityType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked shows every type.",
    )
    status = forms.ChoiceField(label="Status", choices=list(STATUS_LABELS.items()))
    time = forms.ChoiceField(label="Time", choices=list(TIME_LABELS.items()))
    q = forms.CharField(label="Search", required=False, max_length=200, strip=True)
    sort = forms.ChoiceField(label="Sort", choices=list(SORT_LABELS.items()))

    def __init__(self, user: User, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data=_with_defaults(data), prefix=None)
        self.user = user
        teammates = company_users(user).exclude(pk=user.pk)
        owner_field = cast(forms.ChoiceField, self.fields["owner"])
        owner_field.choices = [
            (OwnerChoice.ME.value, "Me"),
            (OwnerChoice.ALL.value, "All users"),
            *(
                (str(mate.pk), mate.display_name if mate.is_active else f"{mate.display_name} (inactive)")
                for mate in teammates
            ),
        ]
        types_field = cast(forms.ModelMultipleChoiceField[ActivityType], self.fields["types"])
        # Inactive types stay filterable: old activities keep them (A2).
        types_field.queryset = company_types(user)
        # "from" is a Python keyword, so these two fields cannot be declared as class attributes.
        date_widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        self.fields["from"] = BoundedDateField(label="From", required=False, widget=date_widget)
        self.fields["to"] = BoundedDateField(label="To", required=False, widget=date_widget)
        self.order_fields(["owner", "types", "status", "time", "from", "to", "q", "sort"])

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean() or {}
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and end < start:
            self.add_error("to", "The end date must be on or after the start date.")
        return cleaned

    def filters(self) -> ActivityFilters:
        """The filters to apply: the valid values, and the default for each invalid one."""
        if not self.is_bound:
            return DEFAULT_FILTERS
        self.is_valid()
        data = self.cleaned_data
        owner_raw = data.get("owner", OwnerChoice.ME.value)
        owner: OwnerChoice | int = OwnerChoice(owner_raw) if owner_raw in set(OwnerChoice) else int(owner_raw)
        date_from, date_to = data.get("from"), data.get("to")
        time = TimeChoice(data.get("time") or TimeChoice.ALL)
        if time is TimeChoice.ALL and (date_from or date_to):
            time = TimeChoice.RANGE  # dates typed in without picking "Date range" still count
        return ActivityFilters(
            owner=owner,
            type_ids=tuple(sorted(t.pk for t in data.get("types") or ())),
            status=StatusChoice(data.get("status") or StatusChoice.TODO),
            time=time,
            date_from=date_from,
            date_to=date_to,
            q=data.get("q") or "",
            sort=SortChoice(data.get("sort") or SortChoice.ASC),
        )


def _with_defaults(data: Mapping[str, Any] | None) -> QueryDict:
    merged = QueryDict(mutable=True)
    if data is not None:
        for key in data:
            if isinstance(data, QueryDict):
                merged.setlist(key, data.getlist(key))
            elif isinstance(data[key], list | tuple):
                merged.setlist(key, [str(value) for value in data[key]])
            else:
                merged[key] = str(data[key])
    defaults = {
        "owner": DEFAULT_FILTERS.owner,
        "status": DEFAULT_FILTERS.status,
        "time": DEFAULT_FILTERS.time,
        "sort": DEFAULT_FILTERS.sort,
    }
    for key, value in defaults.items():
        if not merged.get(key):
            merged[key] = str(value)
    return merged


def local_midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def days_condition(first: dt.date | None, last: dt.date | None, tz: zoneinfo.ZoneInfo) -> Q:
    """Activities on the viewer's local days ``first``..``last`` (inclusive; ``None`` = open end)."""
    timed = Q(start_at__isnull=False)
    all_day = Q(start_at__isnull=True)
    if first is not None:
        timed &= Q(start_at__gte=local_midnight(first, tz))
        all_day &= Q(due_date__gte=first)
    if last is not None:
        timed &= Q(start_at__lt=local_midnight(last + dt.timedelta(days=1), tz))
        all_day &= Q(due_date__lte=last)
    return timed | all_day


def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week."""
    return day - dt.timedelta(days=day.weekday())


def time_condition(
    filters: ActivityFilters, now: dt.datetime, tz: zoneinfo.ZoneInfo, masked: Q | None = None
) -> Q:
    """``masked``: the rows whose done flag must not count (A6); they are overdue once past."""
    today = now.astimezone(tz).date()
    match filters.time:
        case TimeChoice.OVERDUE:
            # Overdue means "should have been done by now and is not".
            late = Q(start_at__isnull=False, start_at__lt=now) | Q(start_at__isnull=True, due_date__lt=today)
            not_done = Q(done=False) if masked is None else Q(done=False) | masked
            return not_done & late
        case TimeChoice.TODAY:
            return days_condition(today, today, tz)
        case TimeChoice.TOMORROW:
            tomorrow = today + dt.timedelta(days=1)
            return days_condition(tomorrow, tomorrow, tz)
        case TimeChoice.THIS_WEEK:
            monday = week_start(today)
            return days_condition(monday, monday + dt.timedelta(days=6), tz)
        case TimeChoice.NEXT_WEEK:
            monday = week_start(today) + dt.timedelta(days=7)
            return days_condition(monday, monday + dt.timedelta(days=6), tz)
        case TimeChoice.RANGE:
            if filters.date_from is None and filters.date_to is None:
                return Q()
            return days_condition(filters.date_from, filters.date_to, tz)
        case _:
            return Q()


def filter_activities(
    activities: QuerySet[Activity],
    filters: ActivityFilters,
    *,
    user: User,
    now: dt.datetime,
    with_time: bool = True,
) -> QuerySet[Activity]:
    """Apply ``filters`` to ``activities`` (which must come from ``visible_activities(user)``).

    ``with_time=False`` leaves the time filter out: the calendar picks its own range.
    A masked activity (A6) matches on owner, time and visibility only: the type and status
    filters let it through whatever its type and done flag, or they would tell them.
    """
    masked = masked_condition(user)
    if filters.owner is OwnerChoice.ME:
        activities = activities.filter(mine_condition(user))  # M1: and the meetings they attend
    elif isinstance(filters.owner, int):
        activities = activities.filter(owner_id=filters.owner)
    if filters.type_ids:
        activities = activities.filter(Q(type_id__in=filters.type_ids) | masked)
    if filters.status is StatusChoice.TODO:
        activities = activities.filter(Q(done=False) | masked)
    elif filters.status is StatusChoice.DONE:
        activities = activities.filter(Q(done=True) | masked)
    if with_time:
        activities = activities.filter(time_condition(filters, now, user.tzinfo, masked))
    if filters.q:
        activities = activities.filter(search_condition(user, filters.q))
    return activities


def order_by_due(activities: QuerySet[Activity], sort: SortChoice) -> QuerySet[Activity]:
    """Order by due date; within a day all-day items come before timed ones (as the model does)."""
    if sort is SortChoice.DESC:
        return activities.order_by("-due_date", F("start_at").desc(nulls_last=True), "-id")
    return activities.order_by("due_date", F("start_at").asc(nulls_first=True), "id")
