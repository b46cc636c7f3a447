"""Django admin for activity types, activities and what they link to (A2, A3, A5, A6).

Staff who are not superusers see their own company only (``CompanyScopedAdmin``), and their
activity list starts from :func:`activities.visibility.visible_activities`, like every other
list of activities: a colleague's private activity shows as a "Private" time block, cannot be
opened, and never matches a search (A6).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import display_for_value, unquote
from django.contrib.admin.views.main import ChangeList
from django.db import models
from django.db.models import BooleanField, Exists, OuterRef, ProtectedError, Q, QuerySet, Value
from django.forms import ModelChoiceField, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_duration
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from accounts.admin import BoundedChangeList, CompanyScopedAdmin, admin_user, autocomplete_source
from accounts.models import User
from activities.models import Activity, ActivityType, Deal, LinkedItem, Organization, Person
from activities.visibility import (
    PRIVATE_LABEL,
    visible_activities,
    visible_deals,
    visible_organizations,
    visible_persons,
)

EMPTY = "-"

_Linked = TypeVar("_Linked", bound=LinkedItem)

# ``masked`` is the annotation visible_activities() adds (A6).
UNMASKED = Q(masked=False)

# Lookups a non-superuser may put in the changelist URL. Anything else (``?note__icontains=``,
# ``?deal=``) could probe the hidden fields of a masked activity (A6).
STAFF_ACTIVITY_LOOKUPS = frozenset(
    {
        "company",
        "owner",
        "type",
        "due_date",
        "start_at",
        "duration",
        "done",
        "busy",
        "visibility",
        "sync_status",
    }
)
# What a masked row must not tell through a column, a filter, a filter's counts or the order of the
# rows: it matches only on owner, time and visibility (A6).
MASKED_HIDDEN_LOOKUPS = frozenset({"type", "duration", "done", "busy", "sync_status"})
# The columns a non-superuser may sort by: sorted by type, a masked row between the Calls and the
# Meetings would tell its type.
STAFF_SORTABLE = ("owner", "due_date", "time")


def reveals_hidden_fields(lookups: Iterable[str]) -> bool:
    return any(lookup.split("__", 1)[0] in MASKED_HIDDEN_LOOKUPS for lookup in lookups)


def _duration_lookup_value(value: str) -> dt.timedelta:
    """A duration from the URL (``1:30:00``); SQLite compares the column in microseconds, not text."""
    parsed = parse_duration(value)
    if parsed is None:
        raise IncorrectLookupParameters(f"Not a duration: {value!r}")
    return parsed


def _is_activity_autocomplete(request: HttpRequest) -> bool:
    source = autocomplete_source(request)
    return source is not None and source[:2] == (Activity._meta.app_label, Activity._meta.model_name)


class LinkedItemAdmin(CompanyScopedAdmin[_Linked]):
    """Deals, persons and organizations. Picked for an activity, they follow A5 for non-superusers."""

    @staticmethod
    def visible_to(user: User) -> QuerySet[_Linked]:
        raise NotImplementedError

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[_Linked], search_term: str
    ) -> tuple[QuerySet[_Linked], bool]:
        user = admin_user(request)
        if _is_activity_autocomplete(request) and not user.is_superuser:
            queryset = queryset.filter(pk__in=self.visible_to(user).values("pk"))
        return super().get_search_results(request, queryset, search_term)


# --- Activity types (A2) ---------------------------------------------------------------------


@admin.register(ActivityType)
class ActivityTypeAdmin(CompanyScopedAdmin[ActivityType]):
    list_display = ("name", "company", "icon", "colour", "is_active", "is_default", "order")
    list_filter = (("company", admin.RelatedOnlyFieldListFilter), "is_active", "is_default", "icon")
    list_select_related = ("company",)
    search_fields = ("name",)
    ordering = ("company__name", "order", "name")
    autocomplete_fields = ("company",)
    readonly_fields = ("is_default",)
    fields = ("company", "name", "icon", "color", "order", "is_active", "is_default")
    actions = ("deactivate", "activate", "delete_selected")

    @admin.display(description="Colour", ordering="color")
    def colour(self, obj: ActivityType) -> str:
        return format_html(
            '<span style="display:inline-block;width:1em;height:1em;border-radius:2px;'
            'vertical-align:middle;background:{}"></span> {}',
            obj.color,
            obj.color,
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ActivityType], search_term: str
    ) -> tuple[QuerySet[ActivityType], bool]:
        if _is_activity_autocomplete(request):
            # New and edited activities get an active type; a deactivated one stays on old ones.
            queryset = queryset.filter(is_active=True)
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Deactivate selected types", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ActivityType]) -> None:
        count = queryset.update(is_active=False)
        self.message_user(
            request,
            ngettext(
                "Deactivated %(count)d activity type. Existing activities keep their type.",
                "Deactivated %(count)d activity types. Existing activities keep their type.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description="Activate selected types", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[ActivityType]) -> None:
        count = queryset.update(is_active=True)
        self.message_user(
            request,
            ngettext("Activated %(count)d activity type.", "Activated %(count)d activity types.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @staticmethod
    def _refusal(names: list[str]) -> str:
        listed = ", ".join(f"“{name}”" for name in names)
        return (
            f"Cannot delete {listed}: activities use {'it' if len(names) == 1 else 'them'}. "
            "Deactivate the type instead: it stays on existing activities and is no longer offered "
            "for new ones."
        )

    @admin.action(description="Delete selected %(verbose_name_plural)s", permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[ActivityType]
    ) -> TemplateResponse | None:
        used = Activity.objects.filter(type=OuterRef("pk"))
        in_use = sorted(queryset.filter(Exists(used)).values_list("name", flat=True))
        if in_use:
            self.message_user(request, self._refusal(in_use), messages.ERROR)
            return None
        try:
            return django_delete_selected(self, request, queryset)
        except ProtectedError:  # an activity took the type between the check and the delete
            self.message_user(
                request, self._refusal(sorted(queryset.values_list("name", flat=True))), messages.ERROR
            )
            return None

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.has_delete_permission(request, obj) and obj.activities.exists():
            self.message_user(request, self._refusal([obj.name]), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:activities_activitytype_change", args=[obj.pk]))
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProtectedError:
            self.message_user(request, self._refusal([obj.name if obj else "this type"]), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:activities_activitytype_changelist"))


# --- Deals, persons, organizations -----------------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(LinkedItemAdmin[Organization]):
    visible_to = staticmethod(visible_organizations)
    list_display = ("name", "address", "owner", "visibility", "company", "created_at")
    list_filter = (
        ("company", admin.RelatedOnlyFieldListFilter),
        "visibility",
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("owner", "company")
    search_fields = ("name", "address")
    ordering = ("name",)
    autocomplete_fields = ("company", "owner")
    readonly_fields = ("created_at",)


@admin.register(Person)
class PersonAdmin(LinkedItemAdmin[Person]):
    visible_to = staticmethod(visible_persons)
    list_display = ("name", "email", "phone", "organization", "owner", "visibility", "company")
    list_filter = (
        ("company", admin.RelatedOnlyFieldListFilter),
        "visibility",
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("organization", "owner", "company")
    search_fields = ("name", "email", "phone", "organization__name")
    ordering = ("name",)
    autocomplete_fields = ("company", "owner", "organization")
    readonly_fields = ("created_at",)


@admin.register(Deal)
class DealAdmin(LinkedItemAdmin[Deal]):
    visible_to = staticmethod(visible_deals)
    list_display = ("title", "value", "currency", "person", "organization", "owner", "visibility", "company")
    list_filter = (
        ("company", admin.RelatedOnlyFieldListFilter),
        "visibility",
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("person", "organization", "owner", "company")
    search_fields = ("title", "person__name", "organization__name")
    ordering = ("title",)
    autocomplete_fields = ("company", "owner", "person", "organization")
    readonly_fields = ("created_at",)


# --- Activities (A3, A5, A6) -----------------------------------------------------------------


def _masked(obj: Activity) -> bool:
    return bool(getattr(obj, "masked", False))


class ActivityChangeList(BoundedChangeList):
    """The activity changelist. For a non-superuser, a filter, a filter's counts ("facets") or a sort
    on a field a masked row hides never involves masked rows (A6)."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.masks = not admin_user(request).is_superuser  # read while super() builds the queryset
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        lookup_params = super().get_filters_params(params)
        for key, values in lookup_params.items():
            if key.split("__", 1)[0] == "duration" and not key.endswith("__isnull"):
                lookup_params[key] = [_duration_lookup_value(value) for value in values]
        return lookup_params

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str | None] | None = None
    ) -> QuerySet[Activity]:
        queryset: QuerySet[Activity] = super().get_queryset(request, exclude_parameters)
        # A facet counts the rows by the values of the ``exclude_parameters`` filter.
        lookups = {*self.get_filters_params(), *(name for name in exclude_parameters or () if name)}
        if self.masks and reveals_hidden_fields(lookups):
            queryset = queryset.filter(UNMASKED)
        return queryset

    def get_ordering_field(self, field_name: Any) -> Any:
        if self.masks and field_name not in STAFF_SORTABLE:
            return None
        return super().get_ordering_field(field_name)


class UnmaskedTypeFilter(admin.RelatedOnlyFieldListFilter):
    """The types of the rows a non-superuser sees in full: a type only masked rows have is not offered."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        if admin_user(request).is_superuser:
            return super().field_choices(field, request, model_admin)
        used = (
            model_admin.get_queryset(request)
            .filter(UNMASKED)
            .distinct()
            .values_list(f"{self.field_path}__pk", flat=True)
        )
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": used}, ordering=ordering)


@admin.register(Activity)
class ActivityAdmin(CompanyScopedAdmin[Activity]):
    list_display = (
        "subject_or_private",
        "type_or_blank",
        "owner",
        "due_date",
        "time",
        "duration_or_blank",
        "done_or_blank",
        "visibility_or_blank",
        "deal_link",
        "person_link",
        "organization_link",
        "location_or_blank",
        "sync_status_or_blank",
        "account",
    )
    list_filter = (
        ("company", admin.RelatedOnlyFieldListFilter),
        ("owner", admin.RelatedOnlyFieldListFilter),
        ("type", UnmaskedTypeFilter),
        "done",
        "visibility",
        "sync_status",
    )
    list_select_related = ("owner", "type", "deal", "person", "organization", "calendar_account", "company")
    search_fields = (
        "subject",
        "location",
        "note",
        "owner__email",
        "deal__title",
        "person__name",
        "organization__name",
    )
    search_help_text = "Subject, location, note, owner's e-mail, deal, person or organization."
    date_hierarchy = "due_date"
    ordering = ("-due_date", "-start_at", "-id")
    list_per_page = 100
    show_full_result_count = False  # one COUNT(*) per page is enough on a big table
    autocomplete_fields = ("company", "owner", "type", "deal", "person", "organization", "participants")
    readonly_fields = (
        "sync_status",
        "sync_error",
        "calendar_account",
        "created_at",
        "updated_at",
        "attending",
        "guest_responses",
        "join_url",
    )
    fieldsets = (
        (None, {"fields": ("company", "owner", "type", "subject", "done")}),
        ("When", {"fields": ("due_date", "start_at", "duration", "busy")}),
        ("Details", {"fields": ("location", "note", "participants", "guests")}),
        # M1-M4: what the calendars say of the meeting; the sync keeps these, nobody edits them.
        ("Meeting", {"fields": ("attending", "guest_responses", "video_call", "join_url")}),
        ("Linked to", {"fields": ("deal", "person", "organization")}),
        ("Visibility", {"fields": ("visibility",)}),
        (
            "Calendar sync",
            {"fields": ("sync_status", "sync_error", "calendar_account", "created_at", "updated_at")},
        ),
    )
    actions = ("mark_done", "mark_to_do", "delete_selected")

    @admin.display(description="Attending colleagues")
    def attending(self, activity: Activity) -> str:
        return ", ".join(user.display_name for user in activity.attending_users.all()) or "—"

    # Queryset: superusers see everything; everyone else sees what A5 lets them see.

    def get_queryset(self, request: HttpRequest) -> QuerySet[Activity]:
        user = admin_user(request)
        queryset: QuerySet[Activity]
        if user.is_superuser:
            queryset = Activity.objects.annotate(masked=Value(False, output_field=BooleanField()))
        else:
            queryset = visible_activities(user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Activity | None:
        # A colleague's private activity "doesn't exist" for its change, delete and history pages (A6).
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and _masked(obj):
            return None
        return obj

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Activity], search_term: str
    ) -> tuple[QuerySet[Activity], bool]:
        # Search, and picking an activity in another admin's autocomplete (which lists str(), the
        # subject, even with no term), never involve a masked row.
        searching = search_term.strip() or autocomplete_source(request) is not None
        if searching and not admin_user(request).is_superuser:
            queryset = queryset.filter(UNMASKED)
        return super().get_search_results(request, queryset, search_term)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ActivityChangeList

    def get_sortable_by(self, request: HttpRequest) -> Any:
        if admin_user(request).is_superuser:
            return super().get_sortable_by(request)
        return STAFF_SORTABLE

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if (
            request is not None
            and not admin_user(request).is_superuser
            and lookup.split("__", 1)[0] not in STAFF_ACTIVITY_LOOKUPS
        ):
            return False
        return bool(super().lookup_allowed(lookup, value, request))

    def get_list_display(self, request: HttpRequest) -> Any:
        list_display = tuple(super().get_list_display(request))
        if admin_user(request).is_superuser:
            return (*list_display, "company")
        return list_display

    # Form: choices follow A5 (a user links only items they may view) and A2 (active types).

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        user = admin_user(request)
        if not user.is_superuser and "queryset" not in kwargs:
            visible = {
                "deal": visible_deals,
                "person": visible_persons,
                "organization": visible_organizations,
            }
            if db_field.name in visible:
                kwargs["queryset"] = visible[db_field.name](user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        user = admin_user(request)
        if db_field.name == "participants" and not user.is_superuser and "queryset" not in kwargs:
            kwargs["queryset"] = visible_persons(user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: Activity | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Activity]]:
        form = super().get_form(request, obj, change, **kwargs)
        type_field = form.base_fields.get("type")
        if isinstance(type_field, ModelChoiceField) and type_field.queryset is not None:
            keep = Q(is_active=True) | Q(pk=obj.type_id) if obj is not None else Q(is_active=True)
            type_field.queryset = type_field.queryset.filter(keep)
        return form

    # Changelist columns: a masked row shows "Private" and its time, nothing else (A6).

    def action_checkbox(self, obj: Activity) -> SafeString:
        # Django's own labels the checkbox with str(obj), which is the subject.
        label = PRIVATE_LABEL if _masked(obj) else str(obj)
        attrs = {
            "class": "action-select",
            "aria-label": format_html(gettext("Select this object for an action - {}"), label),
        }
        checkbox = forms.CheckboxInput(attrs, lambda value: False)
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    @admin.display(description="Subject")
    def subject_or_private(self, obj: Activity) -> str:
        return PRIVATE_LABEL if _masked(obj) else obj.subject

    @admin.display(description="Type", ordering="type")
    def type_or_blank(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) else obj.type

    @admin.display(description="Time", ordering="start_at")
    def time(self, obj: Activity) -> str:
        if obj.start_at is None:
            return "All day"
        return timezone.localtime(obj.start_at).strftime("%H:%M")

    @admin.display(description="Duration", ordering="duration")
    def duration_or_blank(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) else obj.duration

    @admin.display(description="Done", ordering="done")
    def done_or_blank(self, obj: Activity) -> str:
        return EMPTY if _masked(obj) else display_for_value(obj.done, EMPTY, boolean=True)

    @admin.display(description="Visibility", ordering="visibility")
    def visibility_or_blank(self, obj: Activity) -> str:
        return EMPTY if _masked(obj) else obj.get_visibility_display()

    @admin.display(description="Sync status", ordering="sync_status")
    def sync_status_or_blank(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) else obj.get_sync_status_display()

    @admin.display(description="Deal")
    def deal_link(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) or obj.deal is None else obj.deal

    @admin.display(description="Person")
    def person_link(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) or obj.person is None else obj.person

    @admin.display(description="Organization")
    def organization_link(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) or obj.organization is None else obj.organization

    @admin.display(description="Location")
    def location_or_blank(self, obj: Activity) -> str:
        return EMPTY if _masked(obj) or not obj.location else obj.location

    @admin.display(description="Calendar account")
    def account(self, obj: Activity) -> object:
        return EMPTY if _masked(obj) or obj.calendar_account is None else obj.calendar_account

    # Actions never touch rows the user cannot open.

    @staticmethod
    def _openable(request: HttpRequest, queryset: QuerySet[Activity]) -> QuerySet[Activity]:
        return queryset if admin_user(request).is_superuser else queryset.filter(UNMASKED)

    @admin.action(description="Mark selected activities as done", permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet[Activity]) -> None:
        count = Activity.objects.filter(pk__in=self._openable(request, queryset).values("pk")).update(
            done=True, updated_at=timezone.now()
        )
        self.message_user(request, f"Marked {count} activity(ies) as done.", messages.SUCCESS)

    @admin.action(description="Mark selected activities as to do", permissions=["change"])
    def mark_to_do(self, request: HttpRequest, queryset: QuerySet[Activity]) -> None:
        count = Activity.objects.filter(pk__in=self._openable(request, queryset).values("pk")).update(
            done=False, updated_at=timezone.now()
        )
        self.message_user(request, f"Marked {count} activity(ies) as to do.", messages.SUCCESS)

    @admin.action(description="Delete selected %(verbose_name_plural)s", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Activity]) -> TemplateResponse | None:
        openable = self._openable(request, queryset)
        if not openable.exists():
            self.message_user(
                request, "Other users' private activities cannot be deleted here.", messages.WARNING
            )
            return None
        return django_delete_selected(self, request, openable)
