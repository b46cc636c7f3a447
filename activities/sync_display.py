"""What the list, the calendar, the detail page and the export say about an activity's sync (A7, A8, R9).

The stored status is what the last sync run (or the last save) decided. An activity whose
account was disconnected since ("Stop sync", C6) keeps that status for the day the account is
connected again, but it is not syncing any more: it says "Not syncing" and names no account.
Everything here reads the activity and its ``calendar_account`` (select_related by every view),
so it costs no query.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.models import Activity, SyncStatus

STOPPED = "stopped"
NEVER = "none"
STOPPED_LABEL = "Not syncing"
STOPPED_DETAIL = "the calendar sync was stopped"
NEVER_LABEL = "Not synced"
# A6: another user's private activity says nothing of its sync (whether its type is one the owner
# sends, which calendar account the owner has): the list, calendar, detail page and export alike.
HIDDEN = "hidden"
HIDDEN_LABEL = "Private"
HIDDEN_DETAIL = "only its owner sees its sync status"
# Shown beside the words, never instead of them (aria-hidden in the templates). No dash: after a
# start time ("11:30 -") it would read as a time range.
GLYPHS = {
    SyncStatus.SYNCED.value: "\N{CHECK MARK}",
    SyncStatus.PENDING.value: "\N{CLOCKWISE OPEN CIRCLE ARROW}",
    SyncStatus.ERROR.value: "!",
    SyncStatus.SKIPPED.value: "\N{RIGHTWARDS ARROW WITH HOOK}",
    STOPPED: "\N{CIRCLED DIVISION SLASH}",
}


@dataclass(frozen=True)
class SyncBadge:
    """``status`` is the CSS class: a ``SyncStatus`` value, ``"stopped"`` or ``"none"`` (never synced)."""

    status: str
    label: str
    account_email: str = ""
    provider: str = ""
    provider_label: str = ""
    reason: str = ""

    @property
    def is_shown(self) -> bool:
        """False for an activity no sync ever touched, or a colleague's private one: no badge."""
        return self.status not in {NEVER, HIDDEN}

    @property
    def icon_path(self) -> str:
        """The provider's icon under ``static/``; empty when no account is shown."""
        return f"img/provider-{self.provider}.svg" if self.provider else ""

    @property
    def glyph(self) -> str:
        return GLYPHS.get(self.status, "")

    @property
    def title(self) -> str:
        if self.status == NEVER:
            return self.label
        if self.status == HIDDEN:
            return f"{self.label}: {HIDDEN_DETAIL}"
        if self.status == STOPPED:
            return f"{self.label}: {STOPPED_DETAIL}"
        with_account = f" with {self.account_email}" if self.account_email else ""
        because = f": {self.reason}" if self.reason else ""
        return f"{self.label}{with_account}{because}"


def sync_badge(activity: Activity) -> SyncBadge:
    if getattr(activity, "masked", False):
        return SyncBadge(status=HIDDEN, label=HIDDEN_LABEL)
    if not activity.sync_status:
        return SyncBadge(status=NEVER, label=NEVER_LABEL)
    account = activity.calendar_account
    if account is not None and account.stopped_at is not None:
        return SyncBadge(status=STOPPED, label=STOPPED_LABEL)
    reason = activity.sync_error
    if account is None:
        return SyncBadge(status=activity.sync_status, label=activity.get_sync_status_display(), reason=reason)
    return SyncBadge(
        status=activity.sync_status,
        label=activity.get_sync_status_display(),
        account_email=account.email,
        provider=account.provider,
        provider_label=account.get_provider_display(),
        reason=reason,
    )


def legend() -> list[SyncBadge]:
    """Every status an item can show, for the key under the calendar (its items show the glyphs)."""
    return [SyncBadge(status=status.value, label=status.label) for status in SyncStatus] + [
        SyncBadge(status=STOPPED, label=STOPPED_LABEL)
    ]
