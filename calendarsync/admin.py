"""Django admin for connected calendar accounts (R9) and the background heartbeat.

Credentials never reach an admin page (C7): the field is excluded from every form, list and
read-only display, and nothing here renders the model's ``credentials`` attribute.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import CompanyScopedAdmin
from calendarsync.models import CalendarAccount, Heartbeat, RemoteCalendar

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
    inlines = (RemoteCalendarInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are connected by their user through OAuth or the Exchange form (C3).
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
