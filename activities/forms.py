"""The activity form (A3). No recurrence field on purpose: the CRM cannot create recurring activities (A4).

The page (``activities/form.html``) works without JavaScript: the duration presets are
a radio group, the pickers are text inputs matched on save (:mod:`activities.pickers`)
with chosen items as checkboxes, and guests a comma- or newline-separated text box.
``static/js/activity-form.js`` turns these into an autocomplete, chips and a tag input
that post the very same names.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.forms.utils import ErrorList
from django.utils.datastructures import MultiValueDict

from accounts.models import User
from activities.bounds import (
    BoundedDateField,
    SafeModelChoiceField,
    SafeModelMultipleChoiceField,
)
from activities.filters import company_types
from activities.models import Activity, ActivityType, Person, Visibility
from activities.pickers import PICKERS, PickerItem, PickerState, clean_query, items_by_pk, resolve
from activities.visibility import visible_persons

GUEST_SEPARATORS = re.compile(r"[,;\s]+")
BUSY_CHOICES = [("True", "Busy"), ("False", "Free")]
CUSTOM_DURATION = "custom"
PRESET_MINUTES = {"15": 15, "30": 30, "60": 60, "120": 120}
DURATION_CHOICES = [
    ("15", "15 min"),
    ("30", "30 min"),
    ("60", "1 h"),
    ("120", "2 h"),
    (CUSTOM_DURATION, "Custom"),
]
DEFAULT_PRESET = "30"
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class GuestChip:
    address: str
    invalid: bool = False


def parse_guests(raw: str) -> list[str]:
    """Comma-, semicolon- or newline-separated e-mail addresses; duplicates dropped, order kept.

    Every invalid address is named in its own message, so one round trip fixes them all.
    """
    guests: list[str] = []
    seen: set[str] = set()
    invalid: list[ValidationError] = []
    for candidate in GUEST_SEPARATORS.split(raw.strip()):
        if not candidate:
            continue
        try:
            validate_email(candidate)
        except ValidationError:
            invalid.append(
                ValidationError(
                    "“%(value)s” is not a valid e-mail address.",
                    code="invalid_guest",
                    params={"value": candidate},
                )
            )
            continue
        if candidate.lower() not in seen:
            seen.add(candidate.lower())
            guests.append(candidate)
    if invalid:
        raise ValidationError(invalid)
    return guests


def local_start(day: dt.date, time: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """``day`` at ``time`` on the user's wall clock, refusing times a daylight-saving jump skips."""
    aware = dt.datetime.combine(day, time, tzinfo=tz)
    try:
        round_trip = aware.astimezone(dt.UTC).astimezone(tz)
    except OverflowError:
        # Only next to datetime's limits (years 1 and 9999); the date fields refuse those already.
        raise ValidationError(
            "%(time)s on %(day)s is out of the range of dates CalSync can handle.",
            code="date_out_of_range",
            params={"time": time.strftime("%H:%M"), "day": day.isoformat()},
        ) from None
    if round_trip.replace(tzinfo=None) != aware.replace(tzinfo=None):
        raise ValidationError(
            "%(time)s does not exist on %(day)s in your time zone (%(tz)s): the clocks skip it.",
            code="nonexistent_time",
            params={"time": time.strftime("%H:%M"), "day": day.isoformat(), "tz": str(tz)},
        )
    return aware


def _ends_next_day(starts: dt.datetime, ends: dt.datetime) -> bool:
    """Whether the end time alone says when ``ends`` is: the next day, at a time before the start time."""
    return ends.date() == starts.date() + ONE_DAY and ends.time() < starts.time()


def preset_for(duration: dt.timedelta | None) -> str:
    for value, minutes in PRESET_MINUTES.items():
        if duration == dt.timedelta(minutes=minutes):
            return value
    return CUSTOM_DURATION


def _posted_list(data: Any, key: str) -> list[str]:
    """All non-empty values posted under ``key``, from a QueryDict or (in unit tests) a plain dict."""
    if hasattr(data, "getlist"):
        return [str(value) for value in data.getlist(key) if value]
    value = data.get(key)
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item]
    return [str(value)] if value not in (None, "") else []


class ChipPicker(forms.SelectMultiple):
    """Reads a picker's chosen ids (chips) plus any candidates ticked after an ambiguous match.

    Never rendered by Django itself: ``form.html`` includes ``_picker.html`` with a
    :class:`PickerState`. An absent name means "nothing chosen" (every chip removed).
    """

    def __init__(self, *, multiple: bool) -> None:
        super().__init__()
        self.multiple = multiple

    def value_from_datadict(self, data: Any, files: MultiValueDict[str, Any], name: str) -> Any:
        chosen, picked = _posted_list(data, name), _posted_list(data, f"{name}_pick")
        if self.multiple:
            return [*chosen, *picked]
        # A single link: a candidate ticked after an ambiguous match replaces the current chip.
        values = [*picked, *chosen]
        return values[0] if values else None

    def value_omitted_from_data(self, data: Any, files: MultiValueDict[str, Any], name: str) -> bool:
        return False


class ActivityForm(forms.ModelForm[Activity]):
    all_day = forms.BooleanField(
        label="All day",
        required=False,
        help_text="An all-day activity has no start time; it may last several days.",
    )
    end_date = BoundedDateField(
        label="Last day",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="For an all-day activity over several days; leave empty for one day.",
    )
    due_time = forms.TimeField(
        label="Start time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Leave empty for an all-day activity.",
    )
    duration_preset = forms.ChoiceField(
        label="Duration",
        required=False,
        choices=DURATION_CHOICES,
        initial=DEFAULT_PRESET,
        widget=forms.RadioSelect,
    )
    end_time = forms.TimeField(
        label="End time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=(
            "With “Custom”: when it ends. A time before the start time is on the next day"
            " (22:00 to 01:00 runs past midnight). Empty: no fixed length."
        ),
    )
    guests = forms.CharField(
        label="Guests",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
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
            "video_call",
        )
        labels = {"due_date": "Date", "note": "Note", "done": "Done", "video_call": "Add a video call"}
        # Posted ids and dates are checked before they reach the database or date arithmetic.
        field_classes = {
            "due_date": BoundedDateField,
            "type": SafeModelChoiceField,
            "participants": SafeModelMultipleChoiceField,
            "deal": SafeModelChoiceField,
            "person": SafeModelChoiceField,
            "organization": SafeModelChoiceField,
        }
        help_texts = {"due_date": ""}
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "note": forms.Textarea(attrs={"rows": 4}),
            "visibility": forms.RadioSelect,
            "participants": ChipPicker(multiple=True),
            "deal": ChipPicker(multiple=False),
            "person": ChipPicker(multiple=False),
            "organization": ChipPicker(multiple=False),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        self._resolved: set[str] = set()
        self._candidates: dict[str, list[PickerItem]] = {}
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
        for name in ("deal", "person", "organization"):
            link_field = cast(forms.ModelChoiceField[Any], self.fields[name])
            link_field.queryset = PICKERS[name].items(user)
            link_field.error_messages["invalid_choice"] = not_visible % {"item": name}
        participants = cast(forms.ModelMultipleChoiceField[Person], self.fields["participants"])
        participants.queryset = visible_persons(user)
        participants.error_messages["invalid_choice"] = (
            "Person %(value)s does not exist or you may not see them."
        )
        participants.error_messages["invalid_pk_value"] = (
            "Person %(pk)s does not exist or you may not see them."
        )
        self.fields["subject"].error_messages["required"] = "Give the activity a subject."
        self.fields["due_date"].error_messages["required"] = "Pick the date of the activity."
        visibility = cast(forms.ChoiceField, self.fields["visibility"])
        visibility.choices = list(Visibility.choices)
        self.video_call_note = self._offer_video_call(instance.owner if instance.owner_id else user)

    def _offer_video_call(self, owner: User) -> str:
        """M4: the option is offered when the owner's calendar can add a video call; otherwise it is
        hidden and the note says why (kept as it was on an activity that already asked for one)."""
        # Never the credentials: a page does not decrypt them (C7).
        account = owner.calendar_accounts.filter(stopped_at__isnull=True).defer("credentials").first()
        service = account.video_call_service if account is not None else None
        if service is not None:
            self.fields[
                "video_call"
            ].help_text = f"{service}: the join link appears here once your calendar has made it."
            return ""
        if not self.instance.video_call:
            del self.fields["video_call"]
        if account is None:
            return "Connect Google or Microsoft 365 under Calendar Sync to add video calls."
        return f"Your {account.get_provider_display()} calendar cannot add video calls to events."

    def _set_initial_from_instance(self, instance: Activity) -> None:
        self.initial["guests"] = "\n".join(instance.guests or [])
        self.initial["busy"] = str(instance.busy)
        if instance.start_at is None:
            self.initial["all_day"] = True
            # A3: a multi-day all-day activity shows its last day, so saving keeps its length.
            if instance.duration and instance.duration >= 2 * ONE_DAY:
                self.initial["end_date"] = instance.due_date + dt.timedelta(days=instance.duration.days - 1)
            return
        local = instance.start_at.astimezone(self.user.tzinfo)
        self.initial["due_date"] = local.date()
        self.initial["due_time"] = local.time().replace(tzinfo=None)
        self.initial["duration_preset"] = preset_for(instance.duration)
        if instance.duration and self.initial["duration_preset"] == CUSTOM_DURATION:
            end = (instance.start_at + instance.duration).astimezone(self.user.tzinfo)
            if end.date() == local.date() or _ends_next_day(local, end):
                self.initial["end_time"] = end.time().replace(tzinfo=None)
            else:
                kept = f"It now ends on {end:%a %d %b %Y, %H:%M}; leave empty to keep that length."
                self.fields["end_time"].help_text = kept

    # --- pickers -------------------------------------------------------------------------------------

    def _query(self, name: str) -> str:
        if not self.is_bound:
            return ""
        return clean_query(str(self.data.get(self.add_prefix(PICKERS[name].query_name)) or ""))

    def _resolve_typed(self, name: str, chosen: Any) -> Any:
        """Add (or, for a single link, set) the item matching what was typed and not picked."""
        kind = PICKERS[name]
        text = self._query(name)
        if not text:
            return chosen
        match = resolve(kind, self.user, text)
        if match.found is None:
            if match.candidates:
                self._candidates[name] = match.candidates
                raise ValidationError(
                    "Several %(nouns)s match “%(text)s”: tick the one you mean, or type more of the name.",
                    code="ambiguous",
                    params={"nouns": kind.noun_plural, "text": text},
                )
            raise ValidationError(
                "No %(noun)s you may see matches “%(text)s”.",
                code="no_match",
                params={"noun": kind.noun, "text": text},
            )
        self._resolved.add(name)
        if not kind.multiple:
            return match.found
        merged = list(chosen or [])
        if all(item.pk != match.found.pk for item in merged):
            merged.append(match.found)
        return merged

    def clean_participants(self) -> list[Person]:
        chosen = self._resolve_typed("participants", self.cleaned_data.get("participants"))
        if self.instance.pk is not None:
            # Participants the owner may not see are not offered, so they cannot be removed here either.
            hidden = self.instance.participants.exclude(pk__in=visible_persons(self.user).values("pk"))
            chosen = [*chosen, *hidden]
        return cast(list[Person], chosen)

    def clean_deal(self) -> Any:
        return self._resolve_typed("deal", self.cleaned_data.get("deal"))

    def clean_person(self) -> Any:
        return self._resolve_typed("person", self.cleaned_data.get("person"))

    def clean_organization(self) -> Any:
        return self._resolve_typed("organization", self.cleaned_data.get("organization"))

    def _chosen_items(self, name: str) -> list[PickerItem]:
        kind = PICKERS[name]
        if not self.is_bound:
            # ModelForm initial: a pk for a single link, Person objects for the participants.
            value = self.initial.get(name)
            return items_by_pk(
                kind, self.user, list(value or []) if kind.multiple else [value] if value else []
            )
        if name in self.cleaned_data:
            value = self.cleaned_data[name]
            return items_by_pk(kind, self.user, list(value) if kind.multiple else [value] if value else [])
        raw = self.fields[name].widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
        return items_by_pk(kind, self.user, raw if kind.multiple else [raw] if raw else [])

    @cached_property
    def pickers(self) -> dict[str, PickerState]:
        """Each picker as the template shows it, chosen items kept across an invalid submit."""
        errors = self.errors if self.is_bound else None  # validates first: matching fills the candidates
        states: dict[str, PickerState] = {}
        for name, kind in PICKERS.items():
            candidates = self._candidates.get(name, [])
            typed_text_used = name in self._resolved or bool(candidates)
            states[name] = PickerState(
                kind=kind,
                label=str(self.fields[name].label),
                selected=self._chosen_items(name),
                query="" if typed_text_used else self._query(name),
                candidates=candidates,
                errors=[str(message) for message in errors.get(name, ErrorList())]
                if errors is not None
                else [],
            )
        return states

    # --- guests and time -------------------------------------------------------------------------------

    def clean_guests(self) -> list[str]:
        return parse_guests(self.cleaned_data.get("guests") or "")

    @property
    def guest_chips(self) -> list[GuestChip]:
        """The guests as ``_guests.html`` draws them for the tag input, marked invalid where the server refused them.

        The browser's own check is close to Django's but not the same: after a refused save the
        chips must say what the error message says.
        """
        if self.is_bound:
            raw = str(self.data.get(self.add_prefix("guests")) or "")
            refused = {
                str(error.params["value"])
                for error in self.errors.as_data().get("guests", [])
                if error.code == "invalid_guest" and error.params
            }
        else:
            initial = self.initial.get("guests") or ""
            raw = "\n".join(initial) if isinstance(initial, list | tuple) else str(initial)
            refused = set()
        return [
            GuestChip(address=token, invalid=token in refused)
            for token in GUEST_SEPARATORS.split(raw.strip())
            if token
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day: dt.date | None = cleaned.get("due_date")
        start_time: dt.time | None = cleaned.get("due_time")
        if cleaned.get("all_day") or (start_time is None and "due_time" not in self.errors):
            self._clean_all_day(cleaned, day)
        elif day is not None and start_time is not None:
            self._clean_timed(cleaned, day, start_time)
        return cleaned

    def _clean_all_day(self, cleaned: dict[str, Any], day: dt.date | None) -> None:
        preset = cleaned.get("duration_preset") or CUSTOM_DURATION
        if not cleaned.get("all_day") and cleaned.get("end_time") is not None and preset == CUSTOM_DURATION:
            self.add_error(
                "end_time", "Set a start time too, or leave the end time empty for an all-day activity."
            )
            return
        last_day: dt.date | None = cleaned.get("end_date")
        if day is not None and last_day is not None and last_day < day:
            self.add_error("end_date", "The last day cannot be before the first day.")
            return
        self.instance.start_at = None
        days = (last_day - day).days + 1 if day is not None and last_day is not None else 1
        self.instance.duration = dt.timedelta(days=days) if days > 1 else None

    def _clean_timed(self, cleaned: dict[str, Any], day: dt.date, start_time: dt.time) -> None:
        try:
            starts = local_start(day, start_time, self.user.tzinfo)
        except ValidationError as error:
            self.add_error("due_time", error)
            return
        preset = cleaned.get("duration_preset") or CUSTOM_DURATION
        end_time: dt.time | None = cleaned.get("end_time")
        duration: dt.timedelta | None = None
        if preset in PRESET_MINUTES:
            duration = dt.timedelta(minutes=PRESET_MINUTES[preset])
        elif end_time is not None:
            if end_time == start_time:
                self.add_error("end_time", "The end time must differ from the start time.")
                return
            # An end time before the start time is on the next day: 22:00 to 01:00 runs past midnight.
            end_day = day + ONE_DAY if end_time < start_time else day
            try:
                ends = local_start(end_day, end_time, self.user.tzinfo)
            except ValidationError as error:
                self.add_error("end_time", error)
                return
            # Real elapsed time (in UTC), not wall-clock time, across a daylight-saving change.
            duration = ends.astimezone(dt.UTC) - starts.astimezone(dt.UTC)
            if duration <= dt.timedelta(0):
                # Cannot happen with both times read the same way (first occurrence); kept as a guard.
                self.add_error("end_time", "The end time must be after the start time.")
                return
        elif self.instance.pk is not None and self.instance.duration and self.instance.start_at is not None:
            # An end the end time cannot express (a later day, beyond the next morning) keeps its stored length.
            old_local = self.instance.start_at.astimezone(self.user.tzinfo)
            old_end = (self.instance.start_at + self.instance.duration).astimezone(self.user.tzinfo)
            if old_end.date() != old_local.date() and not _ends_next_day(old_local, old_end):
                duration = self.instance.duration
        self.instance.start_at = starts.astimezone(dt.UTC)
        self.instance.duration = duration
