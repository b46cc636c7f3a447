"""Django admin for connected calendar accounts (R9) and the background heartbeat.

Credentials never reach an admin page (C7): the field is excluded from every form, list and
read-only display, and nothing here renders the model's ``credentials`` attribute.

The account admin also serves the sync health page and the admin index's counts
(``calendarsync.admin_health``); its actions run from both the account list and that page.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.translation import ngettext

from accounts.admin import CompanyScopedAdmin, admin_user
from accounts.admin_site import IndexPanel
from calendarsync import admin_health, admin_sync  # importing admin_sync registers the engine's records
from calendarsync.actions import do_force_full_resync, do_stop_sync
from calendarsync.models import (
    AuditEvent,
    CalendarAccount,
    Heartbeat,
    RemoteCalendar,
    SyncPreferences,
)
from calendarsync.sync.runner import SYNCABLE_STATES, syncing_accounts
from calendarsync.tasks import request_sync

SECRET_FIELDS = ("credentials",)


class RemoteCalendarInline(admin.TabularInline[RemoteCalendar, CalendarAccount]):
    model = RemoteCalendar
    fields = ("name", "external_id", "is_primary", "can_write")
    readonly_fields = ("external_id",)
    ordering = ("-is_primary", "name")
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: CalendarAccount | None = None) -> bool:
        # Calendars come from the provider's list (O1), not from hand entry.
        return False


class SyncPreferencesInline(admin.StackedInline[SyncPreferences, CalendarAccount]):
    model = SyncPreferences
    fields = (
        "calendar",
        "sync_type",
        "incoming_type",
        "outgoing_types",
        "external_visibility",
        "private_events",
        "include_details",
        "send_invitations",
        "sync_started_at",
        "sync_stopped_at",
    )
    readonly_fields = fields  # users change their own options on the Calendar Sync page (O8)
    can_delete = False
    extra = 0


class AuditEventInline(admin.TabularInline[AuditEvent, CalendarAccount]):
    model = AuditEvent
    fields = ("at", "actor", "action", "detail")
    readonly_fields = fields
    ordering = ("-at",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: CalendarAccount | None = None) -> bool:
        return False


@admin.register(CalendarAccount)
class CalendarAccountAdmin(CompanyScopedAdmin[CalendarAccount]):
    company_lookup = "user__company"
    list_display = ("email", "provider", "user", "state", "last_synced_at", "connected_at", "stopped_at")
    list_filter = (
        admin_health.SyncHealthFilter,
        "provider",
        "state",
        ("user__company", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("user",)
    search_fields = ("email", "user__email", "user__first_name", "user__last_name")
    ordering = ("-connected_at",)
    date_hierarchy = "connected_at"
    exclude = SECRET_FIELDS
    fields = (
        "user",
        "provider",
        "email",
        "state",
        "state_detail",
        "last_synced_at",
        "connected_at",
        "stopped_at",
    )
    readonly_fields = ("user", "provider", "email", "last_synced_at", "connected_at")
    inlines = (SyncPreferencesInline, RemoteCalendarInline, AuditEventInline)
    actions = ("sync_now", "force_full_resync", "disconnect")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are connected by their user through OAuth or the Exchange form (C3).
        return False

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        # The account's runs take their log entries along, and those name items (A6).
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        deleted, model_count = admin_sync.without_related_names(request, deleted, model_count)
        return deleted, model_count, perms_needed, protected

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        health = path(
            "health/",
            self.admin_site.admin_view(self.health_view),
            name=f"{opts.app_label}_{opts.model_name}_health",
        )
        return [health, *super().get_urls()]

    def health_view(self, request: HttpRequest) -> HttpResponse:
        return admin_health.health_view(request, self)

    def index_panel(self, request: HttpRequest) -> IndexPanel | None:
        """The admin index's calendar sync counts (``accounts.admin_site``)."""
        if not self.has_view_permission(request):
            return None
        return admin_health.index_panel(request, self)

    @admin.action(description="Sync the selected accounts now", permissions=("change",))
    def sync_now(self, request: HttpRequest, queryset: QuerySet[CalendarAccount]) -> None:
        """Queue a run for each selected account whose sync is on; say why the others were left."""
        syncing = Exists(syncing_accounts().filter(pk=OuterRef("pk")))
        rows = (
            queryset.order_by()
            .annotate(syncing=syncing)
            .values(
                "pk",
                "syncing",
                "state",
                "stopped_at",
                "preferences__sync_started_at",
                "preferences__sync_stopped_at",
            )
        )
        skipped: Counter[str] = Counter()
        queued = 0
        for row in rows:
            if row["syncing"]:
                request_sync(row["pk"])
                queued += 1
            else:
                skipped[_not_syncing_because(row)] += 1
        self.message_user(
            request,
            ngettext(
                "A sync was queued for %(count)d account.",
                "A sync was queued for %(count)d accounts.",
                queued,
            )
            % {"count": queued},
            messages.SUCCESS if queued else messages.WARNING,
        )
        if skipped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
            total = sum(skipped.values())
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)d account whose sync is not on: %(reasons)s.",
                    "Skipped %(count)d accounts whose sync is not on: %(reasons)s.",
                    total,
                )
                % {"count": total, "reasons": reasons},
                messages.WARNING,
            )

    @admin.action(description="Force a full resync of the selected accounts", permissions=("change",))
    def force_full_resync(self, request: HttpRequest, queryset: QuerySet[CalendarAccount]) -> None:
        accounts = list(queryset.filter(stopped_at__isnull=True))
        for account in accounts:
            do_force_full_resync(acting_user=admin_user(request), account=account)
        self.message_user(
            request,
            ngettext(
                "A full resync was scheduled for %(count)d account.",
                "A full resync was scheduled for %(count)d accounts.",
                len(accounts),
            )
            % {"count": len(accounts)},
            messages.SUCCESS,
        )

    @admin.action(
        description="Disconnect the selected accounts (keeps activities, removes credentials)",
        permissions=("change",),
    )
    def disconnect(self, request: HttpRequest, queryset: QuerySet[CalendarAccount]) -> None:
        accounts = list(queryset.filter(stopped_at__isnull=True))
        left_to_users = 0
        for account in accounts:
            disconnected = do_stop_sync(acting_user=admin_user(request), account=account)
            left_to_users += bool(disconnected.consent_pages)
        self.message_user(
            request,
            ngettext("Disconnected %(count)d account.", "Disconnected %(count)d accounts.", len(accounts))
            % {"count": len(accounts)},
            messages.SUCCESS,
        )
        if left_to_users:
            # Microsoft lets no app revoke its own access: only the user can withdraw the consent.
            self.message_user(
                request,
                ngettext(
                    "%(count)d Microsoft 365 account: CalSync deleted its tokens; its user can remove "
                    "CalSync's access in their Microsoft account.",
                    "%(count)d Microsoft 365 accounts: CalSync deleted their tokens; their users can "
                    "remove CalSync's access in their Microsoft accounts.",
                    left_to_users,
                )
                % {"count": left_to_users},
                messages.INFO,
            )


def _not_syncing_because(row: dict[str, Any]) -> str:
    """Why an account ``syncing_accounts`` leaves out does not sync, for the "Sync now" message."""
    if row["stopped_at"] is not None or row["preferences__sync_stopped_at"] is not None:
        return "stopped"
    if row["preferences__sync_started_at"] is None:
        return "not started"
    if row["state"] not in SYNCABLE_STATES:
        return "waiting for their user to reconnect"
    return "without a calendar"


@admin.register(AuditEvent)
class AuditEventAdmin(CompanyScopedAdmin[AuditEvent]):
    company_lookup = "account__user__company"
    list_display = ("at", "action", "account", "actor")
    list_filter = ("action",)
    list_select_related = ("account", "actor")
    search_fields = ("action", "account__email", "actor__email")
    ordering = ("-at",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin[Heartbeat]):
    list_display = ("name", "beat_at")
    search_fields = ("name",)
    ordering = ("name",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Heartbeat | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Heartbeat | None = None) -> bool:
        return False
