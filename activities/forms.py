"""The activity form (A3). No recurrence field on purpose: the CRM cannot create recurring activities (A4)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from accounts.models import User
from activities.filters import company_types
from activities.models import Activity, ActivityType, Person, Visibility
from activities.visibility import visible_deals, visible_organizations, visible_persons

GUEST_SEPARATORS = re.compile(r"[,;\s]+")
BUSY_CHOICES = [("True", "Busy"), ("False", "Free")]


def parse_guests(raw: str) -> list[str]:
    """Comma-, semicolon- or newline-separated e-mail addresses; duplicates dropped, order kept."""
    guests: list[str] = []
    seen: set[str] = set()
    for candidate in GUEST_SEPARATORS.split(raw.strip()):
        if not candidate:
            continue
        try:
            validate_email(candidate)
        except ValidationError:
            raise ValidationError(
                "“%(value)s” is not a valid e-mail address.",
                code="invalid_guest",
                params={"value": candidate},
            ) from None
        if candidate.lower() not in seen:
            seen.add(candidate.lower())
            guests.append(candidate)
    return guests


def local_start(day: dt.date, time: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """``day`` at ``time`` on the user's wall clock, refusing times a daylight-saving jump skips."""
    aware = dt.datetime.combine(day, time, tzinfo=tz)
    round_trip = aware.astimezone(dt.UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != aware.replace(tzinfo=None):
        raise ValidationError(
            "%(time)s does not exist on %(day)s in your time zone (%(tz)s): the clocks skip it.",
            code="nonexistent_time",
            params={"time": time.strftime("%H:%M"), "day": day.isoformat(), "tz": str(tz)},
        )
    return aware


class ActivityForm(forms.ModelForm[Activity]):
    due_time = forms.TimeField(
        label="Start time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Leave empty for an all-day activity.",
    )
    end_time = forms.TimeField(
        label="End time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Optional; must be after the start time on the same day.",
    )
    guests = forms.CharField(
        label="Guests",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E-mail addresses, separated by commas or new lines.",
    )
    busy = forms.TypedChoiceField(
        label="Show as",
        choices=BUSY_CHOICES,
        coerce=lambda value: value == "True",
        initial="True",
        widget=forms.RadioSelect,
    )

    class Meta:
        model = Activity
        fields = (
            "subject",
            "type",
            "due_date",
            "due_time",
            "end_time",
            "location",
            "note",
            "participants",
            "guests",
            "deal",
            "person",
            "organization",
            "done",
            "busy",
            "visibility",
        )
        labels = {"due_date": "Date", "note": "Note", "done": "Done"}
        help_texts = {"due_date": ""}
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "note": forms.Textarea(attrs={"rows": 4}),
            "visibility": forms.RadioSelect,
            "participants": forms.SelectMultiple(attrs={"size": 5}),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        instance = self.instance
        if instance.pk is None:
            instance.owner = user
            if user.company is not None:
                instance.company = user.company
        else:
            self._set_initial_from_instance(instance)

        type_field = cast(forms.ModelChoiceField[ActivityType], self.fields["type"])
        # Only active types, but an old activity keeps its deactivated type (A2).
        active_or_current = Q(is_active=True)
        if instance.type_id is not None:
            active_or_current |= Q(pk=instance.type_id)
        type_field.queryset = company_types(user).filter(active_or_current)
        type_field.empty_label = None

        not_visible = "That %(item)s does not exist or you may not see it."
        for name, queryset in (
            ("deal", visible_deals(user)),
            ("person", visible_persons(user)),
            ("organization", visible_organizations(user)),
        ):
            link_field = cast(forms.ModelChoiceField[Any], self.fields[name])
            link_field.queryset = queryset
            link_field.error_messages["invalid_choice"] = not_visible % {"item": name}
        participants = cast(forms.ModelMultipleChoiceField[Person], self.fields["participants"])
        participants.queryset = visible_persons(user)
        participants.error_messages["invalid_choice"] = (
            "Person %(value)s does not exist or you may not see them."
        )
        self.fields["subject"].error_messages["required"] = "Give the activity a subject."
        self.fields["due_date"].error_messages["required"] = "Pick the date of the activity."
        visibility = cast(forms.ChoiceField, self.fields["visibility"])
        visibility.choices = list(Visibility.choices)

    def _set_initial_from_instance(self, instance: Activity) -> None:
        self.initial["guests"] = "\n".join(instance.guests or [])
        self.initial["busy"] = str(instance.busy)
        if instance.start_at is not None:
            local = instance.start_at.astimezone(self.user.tzinfo)
            self.initial["due_date"] = local.date()
            self.initial["due_time"] = local.time().replace(tzinfo=None)
            if instance.duration:
                end = local + instance.duration
                if end.date() == local.date():
                    self.initial["end_time"] = end.time().replace(tzinfo=None)

    def clean_guests(self) -> list[str]:
        return parse_guests(self.cleaned_data.get("guests") or "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day: dt.date | None = cleaned.get("due_date")
        start_time: dt.time | None = cleaned.get("due_time")
        end_time: dt.time | None = cleaned.get("end_time")
        if end_time is not None and start_time is None and "due_time" not in self.errors:
            self.add_error(
                "end_time", "Set a start time too, or leave the end time empty for an all-day activity."
            )
            return cleaned
        if day is None or start_time is None:
            self.instance.start_at = None
            self.instance.duration = None
            return cleaned
        try:
            starts = local_start(day, start_time, self.user.tzinfo)
        except ValidationError as error:
            self.add_error("due_time", error)
            return cleaned
        duration = None
        if end_time is not None:
            try:
                ends = local_start(day, end_time, self.user.tzinfo)
            except ValidationError as error:
                self.add_error("end_time", error)
                return cleaned
            if ends <= starts:
                self.add_error("end_time", "The end time must be after the start time.")
                return cleaned
            duration = ends - starts
        elif self.instance.pk is not None and self.instance.duration and self.instance.start_at is not None:
            # An end on a later day cannot be shown as an end time; keep the stored length unchanged.
            old_local = self.instance.start_at.astimezone(self.user.tzinfo)
            if (old_local + self.instance.duration).date() != old_local.date():
                duration = self.instance.duration
        self.instance.start_at = starts.astimezone(dt.UTC)
        self.instance.duration = duration
        return cleaned
