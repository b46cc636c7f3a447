"""CRM activities and the items they link to (A2-A6)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from accounts.models import Company
from activities.tracking import synced_fields_changed

# (name, icon, colour): each default type has its own colour, so calendars tell them apart (A2).
DEFAULT_ACTIVITY_TYPES: tuple[tuple[str, str, str], ...] = (
    ("Call", "call", "#0f9f8f"),
    ("Meeting", "meeting", "#4f6bed"),
    ("Task", "task", "#f97316"),
    ("Deadline", "deadline", "#e03e3e"),
    ("Email", "email", "#9333ea"),
    ("Lunch", "lunch", "#22a34a"),
)


class Visibility(models.TextChoices):
    EVERYONE = "everyone", "Visible to everyone"
    OWNER = "owner", "Only owner"


class ActivityType(models.Model):
    """A2: six defaults per company, plus custom ones; deactivated types stay on old activities."""

    class Icon(models.TextChoices):
        CALL = "call", "Call"
        MEETING = "meeting", "Meeting"
        TASK = "task", "Task"
        DEADLINE = "deadline", "Deadline"
        EMAIL = "email", "Email"
        LUNCH = "lunch", "Lunch"
        OTHER = "other", "Other"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="activity_types")
    name = models.CharField(max_length=60)
    icon = models.CharField(max_length=16, choices=Icon.choices, default=Icon.OTHER)
    color = models.CharField(max_length=7, default="#4f6bed", help_text="Hex colour, e.g. #4f6bed")
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, editable=False)
    order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ("order", "name")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("company", "name"), name="activitytype_unique_name_per_company"),
        ]

    def __str__(self) -> str:
        return self.name if self.is_active else f"{self.name} (inactive)"


class LinkedItem(models.Model):
    """Common shape of deals, persons and organizations: an owner and a visibility (A5)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.EVERYONE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class Organization(LinkedItem):
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Person(LinkedItem):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    organization = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "persons"

    def __str__(self) -> str:
        return self.name


class Deal(LinkedItem):
    title = models.CharField(max_length=200)
    value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    person = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True)
    organization = models.ForeignKey(Organization, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ("title",)

    def __str__(self) -> str:
        return self.title


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    ERROR = "error", "Error"
    SKIPPED = "skipped", "Skipped"


class Activity(models.Model):
    """A3. Timed activities keep an aware ``start_at``; all-day ones only ``due_date`` (A3, no time)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="activities")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activities")
    type = models.ForeignKey(ActivityType, on_delete=models.PROTECT, related_name="activities")
    subject = models.CharField(max_length=255)
    due_date = models.DateField(help_text="The day, in the owner's time zone")
    start_at = models.DateTimeField(null=True, blank=True, help_text="Empty for all-day activities")
    duration = models.DurationField(null=True, blank=True)
    location = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True)
    participants = models.ManyToManyField(Person, blank=True, related_name="participating_in")
    guests = models.JSONField(default=list, blank=True, help_text="E-mail addresses of guests")
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    done = models.BooleanField(default=False)
    busy = models.BooleanField(default=True, help_text="Busy (True) or free (False)")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.EVERYONE)
    # NULL = not part of any sync (never connected), distinct from every status below.
    sync_status = models.CharField(  # noqa: DJ001
        max_length=16, choices=SyncStatus.choices, null=True, blank=True
    )
    sync_error = models.CharField(max_length=500, blank=True)
    # D1: why the status is what it is, as a code of ``calendarsync.sync.reasons.Reason`` (the UI's
    # words come from that code, so what the engine did and what the UI says agree), and when the
    # engine or a save recorded it.
    sync_code = models.CharField(max_length=40, blank=True, editable=False)
    sync_status_at = models.DateTimeField(null=True, blank=True, editable=False)
    calendar_account = models.ForeignKey(
        "calendarsync.CalendarAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Calendar sync bookkeeping (R2, R7, R8), written by calendarsync.signals and the sync engine.
    sync_changed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a synced field last changed in the CRM"
    )
    sync_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The change the calendar sync last processed"
    )
    # R11: {tracked field: ISO time of its last CRM change}, so a conflict goes to the later edit
    # of that field, not of the whole item (written by activities.signals with sync_changed_at).
    sync_field_changed_at = models.JSONField(
        default=dict, blank=True, editable=False, help_text="When each synced field last changed in the CRM"
    )
    sync_read_only_reason = models.CharField(
        max_length=255, blank=True, editable=False, help_text="Why this activity cannot be edited (R7)"
    )
    # Meetings shared with colleagues (M1-M4): the other CRM users in the meeting, who see it as
    # theirs too; each guest's RSVP as the organizer's calendar has it ({e-mail: "accepted" |
    # "declined" | "tentative" | "needsAction"}); a video call asked for, and its join link.
    attending_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="attending_activities"
    )
    guest_responses = models.JSONField(default=dict, blank=True, editable=False)
    video_call = models.BooleanField(
        default=False, help_text="Add a video call (Google Meet, Microsoft Teams)"
    )
    join_url = models.URLField(max_length=1024, blank=True, editable=False)

    class Meta:
        ordering = ("due_date", F("start_at").asc(nulls_first=True), "id")
        verbose_name_plural = "activities"
        indexes: ClassVar = [
            models.Index(fields=("company", "due_date"), name="activity_company_due"),
            models.Index(fields=("owner", "due_date"), name="activity_owner_due"),
            models.Index(fields=("owner", "sync_changed_at"), name="activity_owner_sync_changed"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(duration__isnull=True) | Q(duration__gte=dt.timedelta(0)),
                name="activity_duration_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    def clean(self) -> None:
        """R7: an occurrence of a recurring calendar event is read-only; say why an edit is refused."""
        super().clean()
        if self.sync_read_only_reason and self.pk is not None and synced_fields_changed(self):
            raise ValidationError(self.sync_read_only_reason, code="read_only_occurrence")

    @property
    def is_all_day(self) -> bool:
        return self.start_at is None

    @property
    def end_at(self) -> dt.datetime | None:
        if self.start_at is None:
            return None
        return self.start_at + (self.duration or dt.timedelta(0))

    @property
    def is_private(self) -> bool:
        return self.visibility == Visibility.OWNER
