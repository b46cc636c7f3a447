"""Django admin for the sync engine's records: links, runs and the activity trash (R3, R9).

Imported from ``calendarsync/admin.py``, which registers these admins by importing it.
Everything here is read-only except the trash's "Restore" action.

Links, trash entries and sync log entries name activities. Staff who are not superusers see them
through :mod:`activities.visibility`, like every other list of activities: one that names an
activity they may not see (A5) is not listed, and another user's private activity shows as
"Private" without its subject, type or anything else, and never matches a search (A6).

A run's page lists its log entries (D2) in the words the user's own sync log uses (D1, from
``calendarsync.sync.explain``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import BigIntegerField, BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, NullIf
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.admin import CompanyScopedAdmin, admin_user, autocomplete_source
from accounts.models import User
from activities.visibility import (
    PRIVATE_LABEL,
    copied_links_visible,
    copy_masked_condition,
    masked_condition,
    visible_activities,
)
from calendarsync.models import ActivityTrash, EventLink, SyncRun, SyncRunEntry
from calendarsync.sync.explain import explain
from calendarsync.sync.trash import restore

M = TypeVar("M", EventLink, SyncRun, ActivityTrash)
EMPTY = "-"
TRASH_FIELDS = ("owner", "account", "activity_id", "reason", "trashed_at", "restored_at", "restored_activity")
# What a masked entry's page leaves out: the subject, and the restored activity (named by its subject).
MASKED_TRASH_FIELDS = tuple(name for name in TRASH_FIELDS if name != "restored_activity")
LINK_ACTIVITY = "activity_or_private"
# The snapshot holds the activity's fields: never shown. ``activity_type`` is a masked one's type.
LINK_FIELDS = (
    "account",
    "activity",
    "calendar_external_id",
    "external_id",
    "etag",
    "origin",
    "state",
    "activity_type",
    "remote_updated",
    "is_recurring_instance",
    "series_id",
    "created_at",
    "updated_at",
)
NOT_MASKED = Value(False, output_field=BooleanField())
# What a log entry without an activity shows instead of its title to staff who are not superusers.
HIDDEN_EVENT_TITLE = "Calendar event"


def _searching(request: HttpRequest, search_term: str) -> bool:
    """A search, or another admin's autocomplete (which lists str(), the subject, even with no term)."""
    return bool(search_term.strip()) or autocomplete_source(request) is not None


def _trash_masked(user: User) -> Q:
    """A6 for a trash entry: the JSON copy says "only owner", and ``user`` is not its owner."""
    return copy_masked_condition(user, visibility="data__visibility", owner="owner")


def _copied_id(key: str) -> Any:
    """An id in a trashed activity's JSON copy, NULL when empty.

    SQLite reads a JSON null as the text "null", which casts to 0 (never an id); PostgreSQL as NULL.
    """
    return NullIf(Cast(KeyTextTransform(key, "data"), BigIntegerField()), Value(0))


def without_related_names(
    request: HttpRequest, deleted: list[Any], model_count: dict[Any, Any]
) -> tuple[list[Any], dict[Any, Any]]:
    """A deletion's confirmation for staff who are not superusers: the objects chosen, and counts.

    Django lists every object a deletion takes along by its str(); a sync log entry's str() holds
    its title, which may be another user's private activity or calendar event (A6). The counts
    ("Sync run entries: 12") stay; superusers still get the full list.
    """
    if admin_user(request).is_superuser:
        return deleted, model_count
    return [item for item in deleted if not isinstance(item, list)], model_count


class _ReadOnlyAdmin(CompanyScopedAdmin[M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False


@admin.register(EventLink)
class EventLinkAdmin(_ReadOnlyAdmin[EventLink]):
    company_lookup = "account__user__company"
    list_display = (
        "external_id",
        LINK_ACTIVITY,
        "account",
        "origin",
        "state",
        "is_recurring_instance",
        "updated_at",
    )
    list_filter = ("origin", "state", "is_recurring_instance")
    list_select_related = ("activity", "account")
    search_fields = ("external_id", "account__email")
    ordering = ("-updated_at",)
    fields = LINK_FIELDS
    readonly_fields = (LINK_ACTIVITY,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[EventLink]:
        links = super().get_queryset(request)
        user = admin_user(request)
        if user.is_superuser:
            return links.annotate(activity_masked=NOT_MASKED)
        visible = visible_activities(user)
        return links.filter(Q(activity__isnull=True) | Q(activity__in=visible.values("pk"))).annotate(
            activity_masked=Exists(visible.filter(masked_condition(user), pk=OuterRef("activity_id")))
        )

    def get_fields(self, request: HttpRequest, obj: EventLink | None = None) -> tuple[str, ...]:
        if admin_user(request).is_superuser:
            return LINK_FIELDS
        masked = obj is not None and _link_masked(obj)
        shown = (LINK_ACTIVITY if name == "activity" else name for name in LINK_FIELDS)
        return tuple(name for name in shown if not (masked and name == "activity_type"))

    @admin.display(description="Activity")
    def activity_or_private(self, obj: EventLink) -> object:
        if obj.activity is None:
            return EMPTY
        return PRIVATE_LABEL if _link_masked(obj) else obj.activity


def _link_masked(link: EventLink) -> bool:
    return bool(getattr(link, "activity_masked", False))


class SyncRunEntryInline(admin.TabularInline[SyncRunEntry, SyncRun]):
    """D2: what a run brought in, sent out, skipped or failed, item by item, read-only.

    What happened is said by ``explain`` (D1), the words the user's own sync log shows; nothing
    here words a reason code. The entry's title names an item of the account owner's calendar or
    CRM, so staff who are not superusers see it only where they could see the item itself:

    - an entry about an activity they may not see (A5) is not listed;
    - another user's private activity (visibility "only owner", and they do not attend it) shows
      as "Private" (A6);
    - an entry without an activity (a calendar event that was never imported, such as a private
      one the user chose not to sync, or an activity deleted since) keeps the title the calendar
      had, and nothing says whether that event was private: its title shows only to the account's
      owner, and to everyone else as "Calendar event" (coming in) or "-" (going out).

    The counts and the explanations stay: they name no item.
    """

    model = SyncRunEntry
    fields = ("direction", "action", "item", "what_happened", "external_id")
    readonly_fields = fields  # and the run's page is read-only (``_ReadOnlyAdmin``)
    # Django's tabular inline prints each entry's str(), which holds the title: this one does not.
    template = "admin/calendarsync/syncrun/entries_inline.html"
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncRunEntry]:
        # The account words the explanations; its credentials are never needed (nor decrypted).
        entries = (
            super()
            .get_queryset(request)
            .select_related("run__account")
            .defer("run__account__credentials", "run__account__sync_cursor")
        )
        user = admin_user(request)
        if user.is_superuser:
            return entries.annotate(activity_masked=NOT_MASKED, title_hidden=NOT_MASKED)
        visible = visible_activities(user)
        hidden = Q(activity__isnull=True) & ~Q(run__account__user=user)
        return entries.filter(Q(activity__isnull=True) | Q(activity__in=visible.values("pk"))).annotate(
            activity_masked=Exists(visible.filter(masked_condition(user), pk=OuterRef("activity_id"))),
            title_hidden=Case(When(hidden, then=Value(True)), default=NOT_MASKED),
        )

    @admin.display(description="Item")
    def item(self, entry: SyncRunEntry) -> str:
        if getattr(entry, "activity_masked", False):
            return PRIVATE_LABEL
        if getattr(entry, "title_hidden", False):
            return HIDDEN_EVENT_TITLE if entry.direction == SyncRunEntry.Direction.IN else EMPTY
        return entry.title or EMPTY

    @admin.display(description="What happened")
    def what_happened(self, entry: SyncRunEntry) -> str:
        explanation = explain(entry, entry.run.account, None, None, timezone.now())
        return explanation.message if explanation is not None else EMPTY


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnlyAdmin[SyncRun]):
    company_lookup = "account__user__company"
    list_display = ("account", "started_at", "finished_at", "outcome", "full_sync", "error")
    list_filter = ("outcome", "full_sync")
    list_select_related = ("account",)
    search_fields = ("account__email",)
    ordering = ("-started_at",)
    date_hierarchy = "started_at"
    fields = ("account", "started_at", "finished_at", "outcome", "full_sync", "counts", "error")
    inlines = (SyncRunEntryInline,)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        deleted, model_count = without_related_names(request, deleted, model_count)
        return deleted, model_count, perms_needed, protected


@admin.register(ActivityTrash)
class ActivityTrashAdmin(_ReadOnlyAdmin[ActivityTrash]):
    company_lookup = "company"
    list_display = ("owner", "account", "reason", "trashed_at", "restored_at")
    list_filter = ("restored_at",)
    list_select_related = ("owner", "account")
    search_fields = ("subject",)
    ordering = ("-trashed_at",)
    fields = TRASH_FIELDS
    actions = ("restore_activities",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActivityTrash]:
        entries = super().get_queryset(request)
        user = admin_user(request)
        if user.is_superuser:
            return entries.annotate(masked=NOT_MASKED)
        copy = {
            "copy_deal": _copied_id("deal_id"),
            "copy_person": _copied_id("person_id"),
            "copy_organization": _copied_id("organization_id"),
        }
        masked = _trash_masked(user)
        return (
            entries.alias(**copy)
            .filter(
                copied_links_visible(
                    user, deal="copy_deal", person="copy_person", organization="copy_organization"
                )
            )
            .annotate(masked=Case(When(masked, then=Value(True)), default=NOT_MASKED))
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ActivityTrash], search_term: str
    ) -> tuple[QuerySet[ActivityTrash], bool]:
        user = admin_user(request)
        if _searching(request, search_term) and not user.is_superuser:
            queryset = queryset.exclude(_trash_masked(user))
        return super().get_search_results(request, queryset, search_term)

    @staticmethod
    def _label(entry: ActivityTrash) -> str:
        """A6: another user's private activity is "Private" to staff who are not superusers."""
        return PRIVATE_LABEL if getattr(entry, "masked", False) else entry.subject

    def get_list_display(
        self, request: HttpRequest
    ) -> tuple[str | Callable[[ActivityTrash], str | bool], ...]:
        def subject(entry: ActivityTrash) -> str:
            return self._label(entry)

        return (subject, *self.list_display)

    def get_fields(self, request: HttpRequest, obj: ActivityTrash | None = None) -> tuple[str, ...]:
        if obj is not None and getattr(obj, "masked", False):
            return MASKED_TRASH_FIELDS
        return ("subject", *TRASH_FIELDS)

    @admin.action(description="Restore the selected activities")
    def restore_activities(self, request: HttpRequest, queryset: QuerySet[ActivityTrash]) -> None:
        restored = 0
        for entry in queryset.filter(restored_at__isnull=True):
            try:
                restore(entry)
            except ValueError as exc:
                self.message_user(request, f"{self._label(entry)}: {exc}", messages.ERROR)
                continue
            restored += 1
        text = ngettext("Restored %(count)d activity.", "Restored %(count)d activities.", restored)
        self.message_user(request, text % {"count": restored}, messages.SUCCESS)
