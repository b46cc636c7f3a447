"""Forms of Personal Preferences > Calendar Sync: one small form per option (O1-O8).

Each option form has exactly one field, named like the ``SyncPreferences`` field it sets, so
``form.cleaned_data`` is the ``changes`` dict ``do_update_preferences`` takes. Querysets limit
choices to what this user may pick (the account's writable calendars, the company's active
types), so a tampered value fails validation instead of reaching the action.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django import forms

from accounts.models import User
from activities.bounds import SafeModelChoiceField, SafeModelMultipleChoiceField
from activities.models import ActivityType
from calendarsync.actions import active_company_types, writable_calendars
from calendarsync.models import (
    CalendarAccount,
    ExternalVisibility,
    PrivateEvents,
    RemoteCalendar,
    SyncPreferences,
    SyncType,
)

CHOICE_ERROR = "“%(value)s” is not one of the options. Pick one of those shown."
TYPE_ERROR = "That is not an active activity type of your company. Pick one of those shown."


class PreferenceForm(forms.Form):
    """One option of the page; ``name`` is both the URL's section and the preference field."""

    name: ClassVar[str]
    title: ClassVar[str]
    help: ClassVar[str] = ""
    # The fragment an htmx save replaces: the option itself, or every option (sync type).
    swaps_all_options: ClassVar[bool] = False

    def __init__(
        self,
        data: Any = None,
        *,
        account: CalendarAccount,
        preferences: SyncPreferences,
        user: User,
    ) -> None:
        super().__init__(data, initial={self.name: self.current_value(preferences)})
        self.account = account
        self.preferences = preferences
        self.user = user

    def current_value(self, preferences: SyncPreferences) -> Any:
        return getattr(preferences, self.name)

    def changes(self) -> dict[str, Any]:
        return {self.name: self.cleaned_data[self.name]}

    def error_messages(self) -> list[str]:
        return [str(message) for messages in self.errors.values() for message in messages]


class CalendarForm(PreferenceForm):
    name = "calendar"
    title = "Calendar"
    help = "The calendar your activities are written to (and, in two-way sync, read from)."

    calendar = SafeModelChoiceField(
        label="Sync with calendar",
        queryset=RemoteCalendar.objects.none(),
        empty_label=None,
        widget=forms.Select(attrs={"id": "remote-calendars"}),
        error_messages={
            "required": "Choose a calendar.",
            "invalid_choice": "That is not one of this account's calendars CalSync can write to. Pick one of those shown.",
        },
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast("forms.ModelChoiceField[RemoteCalendar]", self.fields["calendar"]).queryset = writable_calendars(
            self.account
        )

    def current_value(self, preferences: SyncPreferences) -> Any:
        return preferences.calendar_id


class SyncTypeForm(PreferenceForm):
    name = "sync_type"
    title = "Sync type"
    swaps_all_options = True

    sync_type = forms.ChoiceField(
        label="Sync type",
        choices=SyncType.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a sync type.", "invalid_choice": CHOICE_ERROR},
    )


class IncomingTypeForm(PreferenceForm):
    name = "incoming_type"
    title = "Convert external calendar events"
    help = "New events from your calendar become CRM activities of this type."

    incoming_type = SafeModelChoiceField(
        label="Activity type for calendar events",
        queryset=ActivityType.objects.none(),
        error_messages={"required": "Choose an activity type.", "invalid_choice": TYPE_ERROR},
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(
            "forms.ModelChoiceField[ActivityType]", self.fields["incoming_type"]
        ).queryset = active_company_types(self.user)

    def current_value(self, preferences: SyncPreferences) -> Any:
        return preferences.incoming_type_id


class OutgoingTypesForm(PreferenceForm):
    name = "outgoing_types"
    title = "Choose which CRM activities appear in your calendar"
    help = "Your activities of the ticked types are sent to your calendar."

    outgoing_types = SafeModelMultipleChoiceField(
        label="Activity types sent to your calendar",
        queryset=ActivityType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": TYPE_ERROR,
            "invalid_pk_value": TYPE_ERROR,
            "invalid_list": "Send a list of activity types.",
        },
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(
            "forms.ModelMultipleChoiceField[ActivityType]", self.fields["outgoing_types"]
        ).queryset = active_company_types(self.user)

    def current_value(self, preferences: SyncPreferences) -> Any:
        return [activity_type.pk for activity_type in preferences.outgoing_types.all()]

    def changes(self) -> dict[str, Any]:
        return {self.name: list(self.cleaned_data[self.name])}


class ExternalVisibilityForm(PreferenceForm):
    name = "external_visibility"
    title = "Default visibility of external events"
    help = "Who in your company can see the activities made from your calendar's events."

    external_visibility = forms.ChoiceField(
        label="Default visibility of external events",
        choices=ExternalVisibility.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose who can see external events.", "invalid_choice": CHOICE_ERROR},
    )


class PrivateEventsForm(PreferenceForm):
    name = "private_events"
    title = "Private events"
    help = "Events marked private in your calendar."

    private_events = forms.ChoiceField(
        label="Private events",
        choices=PrivateEvents.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose how to sync private events.", "invalid_choice": CHOICE_ERROR},
    )


class IncludeDetailsForm(PreferenceForm):
    name = "include_details"
    title = "Advanced"

    include_details = forms.BooleanField(
        label="Include deal and contact (person, organization) details in the description of events sent to your calendar",
        required=False,
    )


class SendInvitationsForm(PreferenceForm):
    name = "send_invitations"
    title = "Invitations"
    help = (
        "Your calendar mails the guests of your meetings, never CalSync. "
        "What the sync does on its own (retries, full resyncs, merging calendar edits) never mails anyone."
    )

    send_invitations = forms.BooleanField(
        label="Send calendar invitations to guests of new meetings, and updates when you change their time or place",
        required=False,
    )


PREFERENCE_FORMS: dict[str, type[PreferenceForm]] = {
    form.name: form
    for form in (
        CalendarForm,
        SyncTypeForm,
        IncomingTypeForm,
        OutgoingTypesForm,
        ExternalVisibilityForm,
        PrivateEventsForm,
        SendInvitationsForm,
        IncludeDetailsForm,
    )
}
# The page's order (SPEC O1-O7); O3 incoming, O5 and O6 apply to two-way sync only.
TWO_WAY_OPTIONS = (
    "calendar",
    "sync_type",
    "incoming_type",
    "outgoing_types",
    "external_visibility",
    "private_events",
    "send_invitations",
    "include_details",
)
ONE_WAY_OPTIONS = ("calendar", "sync_type", "outgoing_types", "send_invitations", "include_details")
