"""Sync health in the Django admin (R9, R16): which accounts sync, which wait for their user, what the
calendars refuse, and how long ago each account last synced well.

Three places show it, all from one definition of each health bucket (``BUCKETS``), so a count and
the list it links to always agree:

- the page ``/admin/calendarsync/calendaraccount/health/``: accounts by state and provider, then one
  row per connected account, problems first, with its refused items (``ItemFailure``: how many, the
  oldest) and the age of its last good sync, flagged past ``STALE_AFTER``; the account admin's
  actions (Sync now, Force full resync, Disconnect) run from it;
- the "Calendar sync" panel on the admin index: a count per bucket, each a link to the account list;
- the account list's "Sync health" filter, which those links use.

Everything is counted in SQL: the page costs the same few queries however many accounts there are,
and its table stops at ``ROW_LIMIT`` rows (problems first; the account list has the rest). No
activity shows here, so A5/A6 have nothing to hide; company scoping (A1) comes from the account
admin's queryset. Push notification channels (P1) are not shown: the product has none yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from accounts.admin_site import IndexLink, IndexPanel
from calendarsync.models import AccountState, CalendarAccount, ItemFailure, Provider, SyncPreferences
from calendarsync.sync.item_errors import still_failing

# A syncing account whose last good sync is older than this is flagged; the words say the same.
STALE_AFTER = dt.timedelta(days=1)
STALE_AFTER_WORDS = "a day"
ROW_LIMIT = 200
HEALTH_PARAMETER = "health"
RUNNING_STATES = (AccountState.ACTIVE, AccountState.SYNCING)
# States that wait for the user (reconnect, permissions) or for the retries to succeed.
PROBLEM_STATES = (AccountState.NEEDS_RECONNECT, AccountState.INSUFFICIENT_PERMISSIONS, AccountState.ERROR)
CONNECTED = Q(stopped_at__isnull=True)
# The rows load no credentials (decrypting every account's would cost, and nothing here shows them).
UNUSED_FIELDS = ("credentials", "sync_cursor", "sync_cursor_calendar", "sync_lease_token")


def _started(**extra: Any) -> Q:
    """The account's user pressed Start sync (O9) and has not stopped it."""
    preferences = SyncPreferences.objects.filter(
        account=OuterRef("pk"), sync_started_at__isnull=False, sync_stopped_at__isnull=True, **extra
    )
    return Q(Exists(preferences))


def _refusing() -> Q:
    return Q(Exists(ItemFailure.objects.filter(still_failing(OuterRef("pk")))))


def stale_condition(now: dt.datetime) -> Q:
    """A syncing account without a good sync for ``STALE_AFTER``: its last one is older, or it has
    had none since it started longer ago than that."""
    cutoff = now - STALE_AFTER
    synced_long_ago = Q(last_synced_at__lt=cutoff) & _started()
    never_synced = Q(last_synced_at__isnull=True) & _started(sync_started_at__lt=cutoff)
    return CONNECTED & (synced_long_ago | never_synced)


def _in_states(*states: AccountState) -> Callable[[dt.datetime], Q]:
    return lambda now: CONNECTED & Q(state__in=states)


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str  # the filter's choice
    one: str  # the index's words for a count: "%(count)d needs reconnect"
    many: str
    condition: Callable[[dt.datetime], Q]
    on_index: bool = True

    def phrase(self, count: int) -> str:
        return ngettext(self.one, self.many, count) % {"count": count}


BUCKETS = (
    Bucket(
        "active",
        "Active",
        "%(count)d active",
        "%(count)d active",
        lambda now: CONNECTED & Q(state__in=RUNNING_STATES) & _started(),
    ),
    Bucket(
        "not_started",
        "Connected, sync not started",
        "%(count)d not started",
        "%(count)d not started",
        lambda now: CONNECTED & Q(state__in=RUNNING_STATES) & ~_started(),
    ),
    Bucket(
        "needs_reconnect",
        "Needs reconnect",
        "%(count)d needs reconnect",
        "%(count)d need reconnect",
        _in_states(AccountState.NEEDS_RECONNECT),
    ),
    Bucket(
        "insufficient_permissions",
        "Insufficient permissions",
        "%(count)d with insufficient permissions",
        "%(count)d with insufficient permissions",
        _in_states(AccountState.INSUFFICIENT_PERMISSIONS),
    ),
    Bucket("error", "Error", "%(count)d error", "%(count)d errors", _in_states(AccountState.ERROR)),
    Bucket(
        "refused",
        "With refused items",
        "%(count)d with refused items",
        "%(count)d with refused items",
        lambda now: CONNECTED & _refusing(),
    ),
    Bucket(
        "stale",
        f"No good sync for over {STALE_AFTER_WORDS}",
        f"%(count)d without a good sync for over {STALE_AFTER_WORDS}",
        f"%(count)d without a good sync for over {STALE_AFTER_WORDS}",
        stale_condition,
    ),
    Bucket("connected", "Connected", "", "", lambda now: CONNECTED, on_index=False),
    Bucket("disconnected", "Disconnected", "", "", lambda now: ~CONNECTED, on_index=False),
)
BUCKETS_BY_KEY = {bucket.key: bucket for bucket in BUCKETS}


class SyncHealthFilter(admin.SimpleListFilter):
    """The account list's filter the index counts and the health page link to."""

    title = "sync health"
    parameter_name = HEALTH_PARAMETER

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(bucket.key, bucket.label) for bucket in BUCKETS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        bucket = BUCKETS_BY_KEY.get(self.value() or "")
        return queryset if bucket is None else queryset.filter(bucket.condition(timezone.now()))


def bucket_counts(accounts: QuerySet[CalendarAccount], now: dt.datetime) -> dict[str, int]:
    """How many of ``accounts`` each bucket holds: one query."""
    totals = accounts.order_by().aggregate(
        **{bucket.key: Count("pk", filter=bucket.condition(now)) for bucket in BUCKETS}
    )
    return {key: int(value or 0) for key, value in totals.items()}


class _Urls:
    """The account admin's pages on this admin site."""

    def __init__(self, model_admin: admin.ModelAdmin[CalendarAccount]) -> None:
        opts = CalendarAccount._meta
        self._prefix = f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}"

    def changelist(self, **params: str) -> str:
        url = reverse(f"{self._prefix}_changelist")
        return f"{url}?{urlencode(params)}" if params else url

    def bucket(self, key: str, **params: str) -> str:
        return self.changelist(**{HEALTH_PARAMETER: key, **params})

    def change(self, account_id: int) -> str:
        return reverse(f"{self._prefix}_change", args=[account_id])

    def health(self) -> str:
        return reverse(f"{self._prefix}_health")


def index_panel(request: HttpRequest, model_admin: admin.ModelAdmin[CalendarAccount]) -> IndexPanel:
    """ "Calendar sync: 12 active, 2 need reconnect, 1 error, 3 with refused items" (problems only when
    there are some), each count a link to the filtered account list."""
    counts = bucket_counts(model_admin.get_queryset(request), timezone.now())
    urls = _Urls(model_admin)
    links = [
        IndexLink(bucket.phrase(counts[bucket.key]), urls.bucket(bucket.key))
        for bucket in BUCKETS
        if bucket.on_index and (bucket.key == "active" or counts[bucket.key])
    ]
    return IndexPanel("Calendar sync", urls.health(), tuple(links), html_id="calendar-sync-health")


# --- The health page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    count: int
    url: str


@dataclass(frozen=True)
class GridRow:
    label: str
    cells: tuple[GridCell, ...]  # one per provider, then the total


@dataclass(frozen=True)
class StateGrid:
    providers: tuple[str, ...]
    rows: tuple[GridRow, ...]


def state_grid(accounts: QuerySet[CalendarAccount], urls: _Urls) -> StateGrid:
    """Connected accounts by state and provider, disconnected ones by provider: one query."""
    bucket = Case(When(CONNECTED, then=F("state")), default=Value("disconnected"), output_field=CharField())
    counted = accounts.order_by().annotate(bucket=bucket).values("bucket", "provider").annotate(n=Count("pk"))
    counts: dict[tuple[str, str], int] = {(row["bucket"], row["provider"]): row["n"] for row in counted}
    providers = list(Provider)

    def row(label: str, key: str, params: Mapping[str, str]) -> GridRow:
        cells = [
            GridCell(counts.get((key, provider), 0), urls.changelist(**params, provider__exact=provider))
            for provider in providers
        ]
        cells.append(GridCell(sum(cell.count for cell in cells), urls.changelist(**params)))
        return GridRow(label, tuple(cells))

    rows = [
        row(state.label, state, {HEALTH_PARAMETER: "connected", "state__exact": state})
        for state in AccountState
    ]
    rows.append(row("Disconnected", "disconnected", {HEALTH_PARAMETER: "disconnected"}))
    return StateGrid(tuple(provider.label for provider in providers), tuple(rows))


@dataclass(frozen=True)
class AccountRow:
    account: CalendarAccount
    change_url: str
    started: bool
    stale: bool
    problem: bool
    last_sync_age: str  # "3 h ago"; empty when it never synced
    refused: int
    oldest_refusal: dt.datetime | None
    oldest_refusal_age: str


def short_age(moment: dt.datetime, now: dt.datetime) -> str:
    """ "just now", "12 min ago", "3 h ago" (up to two days), "5 d ago"."""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def account_rows(accounts: QuerySet[CalendarAccount], now: dt.datetime, urls: _Urls) -> list[AccountRow]:
    """Connected accounts, those needing attention first, at most ``ROW_LIMIT``: one query."""
    failures = ItemFailure.objects.filter(still_failing(OuterRef("pk"))).order_by().values("account")
    stale = stale_condition(now)
    attention = Case(
        When(state__in=PROBLEM_STATES, then=Value(0)),
        When(stale, then=Value(1)),
        When(_refusing(), then=Value(2)),
        When(~_started(), then=Value(3)),
        default=Value(4),
        output_field=IntegerField(),
    )
    rows = (
        accounts.filter(CONNECTED)
        .select_related("user")
        .defer(*UNUSED_FIELDS)
        .annotate(
            refused_count=Coalesce(Subquery(failures.annotate(n=Count("pk")).values("n")), Value(0)),
            oldest_refusal=Subquery(failures.annotate(first=Min("first_failed_at")).values("first")),
            started=ExpressionWrapper(_started(), output_field=BooleanField()),
            stale=ExpressionWrapper(stale, output_field=BooleanField()),
            attention=attention,
        )
        .order_by("attention", F("last_synced_at").asc(nulls_first=True), "email", "pk")[:ROW_LIMIT]
    )
    return [_row(account, now, urls) for account in rows]


def _row(account: CalendarAccount, now: dt.datetime, urls: _Urls) -> AccountRow:
    oldest: dt.datetime | None = getattr(account, "oldest_refusal", None)
    return AccountRow(
        account=account,
        change_url=urls.change(account.pk),
        started=bool(getattr(account, "started", False)),
        stale=bool(getattr(account, "stale", False)),
        problem=account.state in PROBLEM_STATES,
        last_sync_age=short_age(account.last_synced_at, now) if account.last_synced_at else "",
        refused=int(getattr(account, "refused_count", 0)),
        oldest_refusal=oldest,
        oldest_refusal_age=short_age(oldest, now) if oldest is not None else "",
    )


@require_http_methods(["GET", "POST"])
def health_view(request: HttpRequest, model_admin: admin.ModelAdmin[CalendarAccount]) -> HttpResponse:
    """The sync health page; a POST runs one of the account admin's actions on the ticked rows."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        return _run_action(request, model_admin)
    now = timezone.now()
    accounts = model_admin.get_queryset(request)
    urls = _Urls(model_admin)
    rows = account_rows(accounts, now, urls)
    grid = state_grid(accounts, urls)
    connected = sum(row.cells[-1].count for row in grid.rows[:-1])
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": CalendarAccount._meta,
        "title": "Calendar sync health",
        "grid": grid,
        "rows": rows,
        "more": max(0, connected - len(rows)),
        "connected_url": urls.bucket("connected"),
        "stale_after": STALE_AFTER_WORDS,
        "action_choices": _action_choices(request, model_admin),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/calendarsync/health.html", context)


def _page_actions(model_admin: admin.ModelAdmin[CalendarAccount]) -> set[str]:
    """The account admin's own actions (not Django's "delete selected")."""
    return {action for action in model_admin.actions or () if isinstance(action, str)}


def _action_choices(
    request: HttpRequest, model_admin: admin.ModelAdmin[CalendarAccount]
) -> list[tuple[str, str]]:
    allowed = _page_actions(model_admin)
    choices = model_admin.get_action_choices(request, default_choices=[])
    return [(str(name), str(description)) for name, description in choices if name in allowed]


def _run_action(request: HttpRequest, model_admin: admin.ModelAdmin[CalendarAccount]) -> HttpResponse:
    """The same action functions the account list runs, on the rows ticked on the health page."""
    back = HttpResponseRedirect(request.get_full_path())
    allowed = _page_actions(model_admin)
    actions = {name: action for name, action in model_admin.get_actions(request).items() if name in allowed}
    chosen = actions.get(request.POST.get("action", ""))
    if chosen is None:
        messages.warning(request, "Choose an action.")
        return back
    ids = [value for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if value.isdigit()]
    if not ids:
        messages.warning(
            request, "Items must be selected in order to perform actions on them. No items have been changed."
        )
        return back
    function, _name, _description = chosen
    function(model_admin, request, model_admin.get_queryset(request).filter(pk__in=ids))
    return back
