"""Django admin for connected calendar accounts (R9) and the background heartbeat.

Credentials never reach an admin page (C7): the field is excluded from every form, list and
read-only display, and nothing here renders the model's ``credentials`` attribute.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from accounts.admin import CompanyScopedAdmin, admin_user
from calendarsync import admin_sync  # noqa: F401  (registers the engine's records)
from calendarsync.actions import do_force_full_resync, do_stop_sync
from calendarsync.models import (
    AuditEvent,
    CalendarAccount,
    Heartbeat,
    RemoteCalendar,
    SyncPreferences,
)

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
    list_filter = ("provider", "state", ("user__company", admin.RelatedOnlyFieldListFilter))
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
    actions = ("force_full_resync", "disconnect")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are connected by their user through OAuth or the Exchange form (C3).
        return False

    @admin.action(description="Force a full resync of the selected accounts")
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

    @admin.action(description="Disconnect the selected accounts (keeps activities, removes credentials)")
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
