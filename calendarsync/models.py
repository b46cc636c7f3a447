"""Connected calendar accounts (C3, C6, C7, R9)."""

from __future__ import annotations

from datetime import datetime
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


# M4: the video calls each calendar can add to an event (Exchange Server has none over EWS).
VIDEO_CALL_SERVICES: dict[str, str] = {"google": "Google Meet", "microsoft": "Microsoft Teams"}


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
    # Sync engine bookkeeping (R9, R10), written only by calendarsync.sync.runner and calendarsync.sync.engine.
    sync_cursor = models.TextField(blank=True, editable=False)
    sync_cursor_calendar = models.CharField(max_length=1024, blank=True, editable=False)
    full_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    sync_lease_token = models.CharField(max_length=32, blank=True, editable=False)
    last_sync_error = models.CharField(max_length=500, blank=True, editable=False)
    sync_failures = models.PositiveIntegerField(default=0, editable=False)
    # The provider asked to be left alone until then (Retry-After, R10): no run starts before.
    sync_not_before = models.DateTimeField(null=True, blank=True, editable=False)
    # Items the calendar refuses (R16), as the last run counted them; the status says so.
    refused_items = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ("-connected_at",)
        indexes: ClassVar = [
            models.Index(fields=("next_sync_at",), name="calendaraccount_next_sync"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("user",),
                condition=Q(stopped_at__isnull=True),
                name="calendaraccount_one_connected_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_provider_display()})"

    @property
    def video_call_service(self) -> str | None:
        """M4: "Google Meet", "Microsoft Teams", or None when this calendar cannot add video calls."""
        return VIDEO_CALL_SERVICES.get(self.provider)


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
    private_events = models.CharField(
        max_length=16, choices=PrivateEvents.choices, default=PrivateEvents.ONLY_ME
    )
    include_details = models.BooleanField(default=True)
    # O11: new CRM meetings invite their guests, and CRM changes of time or place update them,
    # through the calendar's own mail (never CalSync's); the sync on its own never mails anyone.
    send_invitations = models.BooleanField(default=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    sync_stopped_at = models.DateTimeField(null=True, blank=True)
    # R2 for CRM activities: changes made since then are sent. The start of the user's first sync,
    # carried over Stop sync + Add account, so what changed while no account synced still goes
    # out (and nothing older). Empty: ``sync_started_at``.
    crm_changes_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "sync preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.account}"

    @property
    def crm_baseline(self) -> datetime | None:
        """R2: CRM activities created or changed since then are sent."""
        return self.crm_changes_since or self.sync_started_at


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


# --------------------------------------------------------------------------- sync engine


class LinkOrigin(models.TextChoices):
    CRM = "crm", "Created in the CRM"
    CALENDAR = "calendar", "Created in the calendar"


class LinkRole(models.TextChoices):
    # The copy that controls the activity: the organizer's, or the first one seen (M1).
    OWN = "own", "Controls the activity"
    # A colleague's copy of a meeting another user's activity stands for: it never creates an
    # activity and its edits are not applied; it says the colleague attends (M1, M2).
    ATTENDEE = "attendee", "A colleague's copy"


class LinkState(models.TextChoices):
    ACTIVE = "active", "Synced"
    # The CRM activity was deleted: the next sync deletes the event (R3).
    DELETE_PENDING = "delete_pending", "Event to be deleted"
    # No longer synced either way (event deleted in a one-way calendar, deselected type deleted,
    # read-only occurrence deleted in the CRM); changes to the event are ignored.
    DETACHED = "detached", "Detached"


class EventLink(models.Model):
    """One CRM activity <-> one calendar event of an account, and what both last agreed on.

    ``snapshot`` holds the synced fields as last agreed, per side (``{"crm": {...}, "cal":
    {...}}``): comparing each side with it tells which side changed what since (field-by-field
    merge, no echo). It survives the activity (``activity`` SET_NULL) so a CRM deletion can still
    delete the event.
    """

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="event_links")
    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.SET_NULL, null=True, blank=True, related_name="event_links"
    )
    calendar_external_id = models.CharField(max_length=1024)
    external_id = models.CharField(max_length=1024)
    etag = models.CharField(max_length=255, blank=True)
    origin = models.CharField(max_length=16, choices=LinkOrigin.choices)
    state = models.CharField(max_length=16, choices=LinkState.choices, default=LinkState.ACTIVE)
    # R5: the type the activity had when it was linked; later mapping changes never retype it.
    activity_type = models.ForeignKey(
        "activities.ActivityType", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    snapshot = models.JSONField(default=dict, blank=True)
    remote_updated = models.DateTimeField(null=True, blank=True)
    is_recurring_instance = models.BooleanField(default=False)
    series_id = models.CharField(max_length=1024, blank=True)
    role = models.CharField(max_length=16, choices=LinkRole.choices, default=LinkRole.OWN)
    # The iCalendar UID every copy of the meeting shares (M1); empty when the calendar gave none.
    ical_uid = models.CharField(max_length=1024, blank=True)
    # A CRM user's deletion: the calendar mails the guests a cancellation (O11). Deletions the
    # sync makes on its own (R12-R15) never mail anyone.
    notify_guests = models.BooleanField(default=False)
    # D1: the event in the provider's web calendar, when the provider gives a link (https only).
    web_url = models.URLField(max_length=2048, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("account", "external_id"), name="eventlink_unique_event"),
            models.UniqueConstraint(
                fields=("account", "activity"),
                condition=Q(activity__isnull=False),
                name="eventlink_unique_activity",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=("account", "state"), name="eventlink_account_state"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} <-> activity {self.activity_id} ({self.state})"


class Meeting(models.Model):
    """M1: one activity per meeting and company, whichever CRM users' calendars hold a copy.

    Every copy of a meeting shares its iCalendar UID; the unique constraint makes two workers
    that meet the same meeting at once agree on one activity.
    """

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="+")
    ical_uid = models.CharField(max_length=1024)
    activity = models.ForeignKey("activities.Activity", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("company", "ical_uid"), name="meeting_unique_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.ical_uid} -> activity {self.activity_id}"


class PendingCreate(models.Model):
    """What a push is about to create, written before the calendar call (R10).

    A crash between the calendar's create and our commit leaves a tagged event without a link.
    When a later run adopts that event, this is the state both sides agreed on at creation, so
    the merge can tell a CRM edit made since (which wins) from a calendar edit (which wins)
    instead of settling every difference by clock. One row per activity: the latest attempt.
    The row goes when the link is recorded.
    """

    activity = models.OneToOneField(
        "activities.Activity", on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="+")
    snapshot = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"create of activity {self.activity_id} via {self.account_id}"


class SyncRun(models.Model):
    """One run of the sync engine for one account: when, what it did, how it ended (R9)."""

    class Outcome(models.TextChoices):
        # Written while the run works, with its counts so far; the page shows them as progress.
        RUNNING = "running", "Running"
        OK = "ok", "Completed"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)  # None while running
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    full_sync = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=("account", "-started_at"), name="syncrun_account_started"),
            models.Index(fields=("started_at",), name="syncrun_started"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class SyncRunEntry(models.Model):
    """D2: one item a run brought in, sent out, skipped or failed, for the account's sync log.

    ``code`` is a ``calendarsync.sync.reasons.Reason``: the log's words come from it, like an
    activity's explanation. ``title`` is the activity's subject or the event's title as the run saw
    it (the log is the account owner's own).
    """

    class Direction(models.TextChoices):
        IN = "in", "Came in"
        OUT = "out", "Went out"

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="entries")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    action = models.CharField(max_length=8, choices=Action.choices)
    code = models.CharField(max_length=40)
    title = models.CharField(max_length=255, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    # No database constraint: a line written while its activity is being deleted must not fail the
    # deletion (the ORM still clears the id of lines written before).
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    external_id = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ("run", "id")
        verbose_name_plural = "sync run entries"

    def __str__(self) -> str:
        # No title: str() shows on admin pages where A6 masking does not reach (deletion lists).
        return f"{self.get_direction_display()} {self.get_action_display()} ({self.code})"


class ItemFailure(models.Model):
    """An item the calendar refused (R16): retried with backoff, or at once when it changes.

    A push that failed is keyed on its activity (``changed_at``: the change the calendar refused);
    an event deletion that failed on the event (``external_id``, no activity). The row goes
    away when the item syncs; ``first_failed_at`` says how long it has been failing.
    """

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="item_failures")
    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    external_id = models.CharField(max_length=1024, blank=True)
    reason = models.CharField(max_length=500)
    failures = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    failed_at = models.DateTimeField()
    retry_at = models.DateTimeField()
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("account", "activity"),
                condition=Q(activity__isnull=False),
                name="itemfailure_unique_activity",
            ),
            models.UniqueConstraint(
                fields=("account", "external_id"),
                condition=Q(activity__isnull=True),
                name="itemfailure_unique_event",
            ),
        ]

    def __str__(self) -> str:
        item = f"activity {self.activity_id}" if self.activity_id else f"event {self.external_id}"
        return f"{item} refused {self.failures}x, retry at {self.retry_at:%Y-%m-%d %H:%M}"


class ActivityTrash(models.Model):
    """An activity the sync removed because its event was deleted in the calendar (R3).

    ``data`` is a JSON copy of the activity (and its participant ids) an admin can restore.
    """

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        CalendarAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="trash"
    )
    activity_id = models.BigIntegerField(help_text="The id the activity had")
    subject = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    reason = models.CharField(max_length=255)
    trashed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_activity = models.ForeignKey(
        "activities.Activity", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-trashed_at", "-id")
        verbose_name_plural = "activity trash"

    def __str__(self) -> str:
        # No subject: admin pages show this to staff who may not see private activities (A6).
        return f"Activity #{self.activity_id} (trashed {self.trashed_at:%Y-%m-%d})"
