"""Connected calendar accounts (C3, C6, C7, R9)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from calendarsync.crypto import EncryptedJSONField


class Provider(models.TextChoices):
    GOOGLE = "google", "Google"
    MICROSOFT = "microsoft", "Microsoft 365"
    EXCHANGE = "exchange", "Microsoft Exchange"


class AccountState(models.TextChoices):
    ACTIVE = "active", "Active"
    SYNCING = "syncing", "Syncing"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions", "Insufficient permissions"
    ERROR = "error", "Error"


class CalendarAccount(models.Model):
    """One external calendar account of a user; at most one connected at a time (C6)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_accounts"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    email = models.EmailField()
    state = models.CharField(max_length=32, choices=AccountState.choices, default=AccountState.ACTIVE)
    state_detail = models.CharField(max_length=500, blank=True)
    credentials = EncryptedJSONField(null=True, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-connected_at",)
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("user",),
                condition=Q(stopped_at__isnull=True),
                name="calendaraccount_one_connected_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_provider_display()})"


class RemoteCalendar(models.Model):
    """A calendar inside a connected account, as the provider listed it (O1)."""

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="calendars")
    external_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=255)
    is_primary = models.BooleanField(default=False)
    can_write = models.BooleanField(default=True)

    class Meta:
        ordering = ("-is_primary", "name")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("account", "external_id"), name="remotecalendar_unique_per_account"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Heartbeat(models.Model):
    """The last time beat + a worker ran a task; shows the background machinery is alive."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class SyncType(models.TextChoices):
    TWO_WAY = "two_way", "Two-way sync"
    ONE_WAY = "one_way", "One-way sync (CRM to calendar only)"


class ExternalVisibility(models.TextChoices):
    EVERYONE = "everyone", "Visible to everyone"
    ONLY_ME = "only_me", "Visible only to you"


class PrivateEvents(models.TextChoices):
    EVERYONE = "everyone", "Visible to everyone"
    ONLY_ME = "only_me", "Visible only to you (others see a busy block)"
    SKIP = "skip", "Don't sync"


class SyncPreferences(models.Model):
    """The options of a connected account (O1-O7); defaults are what a new user expects."""

    account = models.OneToOneField(CalendarAccount, on_delete=models.CASCADE, related_name="preferences")
    calendar = models.ForeignKey(
        RemoteCalendar, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sync_type = models.CharField(max_length=16, choices=SyncType.choices, default=SyncType.TWO_WAY)
    incoming_type = models.ForeignKey(
        "activities.ActivityType", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outgoing_types = models.ManyToManyField("activities.ActivityType", blank=True, related_name="+")
    external_visibility = models.CharField(
        max_length=16, choices=ExternalVisibility.choices, default=ExternalVisibility.EVERYONE
    )
    private_events = models.CharField(max_length=16, choices=PrivateEvents.choices, default=PrivateEvents.ONLY_ME)
    include_details = models.BooleanField(default=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    sync_stopped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "sync preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.account}"


class AuditEvent(models.Model):
    """Who did what to a calendar account, and when (connect, preferences, start, stop, ...)."""

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.action} on {self.account} by {self.actor}"
