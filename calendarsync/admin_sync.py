"""Django admin for the sync engine's records: links, runs and the activity trash (R3, R9).

Imported from ``calendarsync/admin.py`` (``from calendarsync import admin_sync  # noqa: F401``).
Everything here is read-only except the trash's "Restore" action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from accounts.admin import CompanyScopedAdmin
from calendarsync.models import ActivityTrash, EventLink, SyncRun
from calendarsync.sync.trash import restore

M = TypeVar("M", EventLink, SyncRun, ActivityTrash)
PRIVATE_LABEL = "Private"
TRASH_FIELDS = ("owner", "account", "activity_id", "reason", "trashed_at", "restored_at", "restored_activity")


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
        "activity",
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
    # The snapshot holds the activity's fields: shown only on the detail page of one link.
    fields = (
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

    @staticmethod
    def _masked(request: HttpRequest, entry: ActivityTrash) -> bool:
        """A6: another user's private activity shows as "Private" to staff who are not superusers."""
        user = request.user
        private = isinstance(entry.data, dict) and entry.data.get("visibility") == "owner"
        return private and not user.is_superuser and entry.owner_id != user.pk

    def get_list_display(
        self, request: HttpRequest
    ) -> tuple[str | Callable[[ActivityTrash], str | bool], ...]:
        def subject(entry: ActivityTrash) -> str:
            return PRIVATE_LABEL if self._masked(request, entry) else entry.subject

        return (subject, *self.list_display)

    def get_fields(self, request: HttpRequest, obj: ActivityTrash | None = None) -> tuple[str, ...]:
        if obj is not None and self._masked(request, obj):
            return TRASH_FIELDS
        return ("subject", *TRASH_FIELDS)

    @admin.action(description="Restore the selected activities")
    def restore_activities(self, request: HttpRequest, queryset: QuerySet[ActivityTrash]) -> None:
        restored = 0
        for entry in queryset.filter(restored_at__isnull=True):
            try:
                restore(entry)
            except ValueError as exc:
                self.message_user(request, f"{entry.subject}: {exc}", messages.ERROR)
                continue
            restored += 1
        text = ngettext("Restored %(count)d activity.", "Restored %(count)d activities.", restored)
        self.message_user(request, text % {"count": restored}, messages.SUCCESS)
