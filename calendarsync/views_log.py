"""Personal Preferences > Calendar Sync > Sync log (D2) and the page's Sync now button.

The log lists the account's recent runs (``SyncRun``), newest first, with what each brought in,
sent out, skipped or failed (``SyncRunEntry``). Every line's words come from
``calendarsync.sync.explain.explain``, like an activity's own sync status: the page never words a
reason code itself. A page costs the same few queries however many runs or entries it shows.

Sync now queues the account's sync at once, at most once per ``SYNC_NOW_INTERVAL`` per account.
The limit is kept in the cache (Redis in production, shared by every web process, like the login
limits): ``sync_requested_at`` cannot hold it, a run clears it when it takes the account.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import reswap, retarget

from calendarsync.connect.common import access_account, page_url
from calendarsync.models import AccountState, CalendarAccount, SyncPreferences, SyncRun, SyncRunEntry
from calendarsync.sync.explain import Explanation, explain
from calendarsync.sync.runner import DEFAULT_RUN_RETENTION_DAYS
from calendarsync.tasks import request_sync
from calendarsync.views import HtmxHttpRequest, status_context

RUNS_PER_PAGE = 20
# A full sync may log a thousand items per side: a page lists this many per run, search finds the rest.
ENTRIES_PER_RUN = 100
MAX_QUERY_LENGTH = 100
SYNC_NOW_INTERVAL = dt.timedelta(seconds=30)
SYNC_REQUESTED_MESSAGE = "Sync requested: it starts within a few seconds."

_CHANGES = (SyncRunEntry.Action.CREATED, SyncRunEntry.Action.UPDATED, SyncRunEntry.Action.DELETED)
_OUTCOME_BADGES = {
    SyncRun.Outcome.OK: "synced",
    SyncRun.Outcome.RUNNING: "pending",
    SyncRun.Outcome.RETRY: "pending",
    SyncRun.Outcome.FAILED: "error",
}
# The account's state says the provider will not let CalSync in: a sync now would only fail.
_BLOCKED_STATES = (AccountState.NEEDS_RECONNECT, AccountState.INSUFFICIENT_PERMISSIONS)


def retention_days() -> int:
    """How long runs are kept (``runner.prune_sync_runs`` deletes older ones)."""
    return int(getattr(settings, "CALSYNC_SYNC_RUN_RETENTION_DAYS", DEFAULT_RUN_RETENTION_DAYS))


# --------------------------------------------------------------------------- the log's read model


@dataclass(frozen=True)
class Changes:
    """Created, updated and deleted items of one side of a run, as its counts recorded them."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    @classmethod
    def of_side(cls, side: object) -> Changes:
        if not isinstance(side, Mapping):
            return cls()
        return cls(*(_count(side.get(key)) for key in ("created", "updated", "deleted")))

    @property
    def text(self) -> str:
        """ "2 created, 1 deleted"; "nothing" when the side changed nothing."""
        counted = ((self.created, "created"), (self.updated, "updated"), (self.deleted, "deleted"))
        return ", ".join(f"{n} {word}" for n, word in counted if n) or "nothing"


def _count(value: object) -> int:
    if isinstance(value, list):  # "errors": the failed items themselves (at most 20 kept)
        return len(value)
    if isinstance(value, int | float):
        return max(0, int(value))
    return 0


@dataclass(frozen=True)
class RunCounts:
    """What ``SyncRun.counts`` says a run did; runs older than the log's entries show only this."""

    came_in: Changes
    went_out: Changes
    skipped: int
    failed: int

    @classmethod
    def of_run(cls, counts: object) -> RunCounts:
        counts = counts if isinstance(counts, Mapping) else {}
        pulled, pushed = counts.get("pulled"), counts.get("pushed")
        sides = [side for side in (pulled, pushed) if isinstance(side, Mapping)]
        return cls(
            came_in=Changes.of_side(pulled),
            went_out=Changes.of_side(pushed),
            skipped=sum(_count(side.get("skipped")) for side in sides),
            failed=sum(_count(side.get("errors")) for side in sides),
        )


@dataclass(frozen=True)
class LogLine:
    """One entry as the log shows it: "<title>: <explanation.message>", the search's match marked."""

    entry: SyncRunEntry
    explanation: Explanation
    # The title cut around the search's matches: (text, matches the search).
    title_parts: tuple[tuple[str, bool], ...]

    @property
    def from_calendar(self) -> bool:
        return self.entry.direction == SyncRunEntry.Direction.IN


@dataclass(frozen=True)
class RunView:
    run: SyncRun
    counts: RunCounts
    came_in: tuple[LogLine, ...]
    went_out: tuple[LogLine, ...]
    not_synced: tuple[LogLine, ...]
    # Entries of this run (matching the search, if any); more than the lines listed when capped.
    entry_count: int
    duration: str

    @property
    def badge(self) -> str:
        return _OUTCOME_BADGES.get(SyncRun.Outcome(self.run.outcome), "")

    @property
    def listed(self) -> int:
        return len(self.came_in) + len(self.went_out) + len(self.not_synced)

    @property
    def unlisted(self) -> int:
        return max(0, self.entry_count - self.listed)


def _entries(query: str) -> QuerySet[SyncRunEntry]:
    entries = SyncRunEntry.objects.all()
    return entries.filter(title__icontains=query) if query else entries


def log_runs(account: CalendarAccount, query: str) -> QuerySet[SyncRun]:
    """The account's runs, newest first; with a search only those with an item of a matching title,
    each with its (matching) entries prefetched: one query for the runs, one for all their entries."""
    matching = _entries(query).filter(run=OuterRef("pk"))
    entry_count = matching.order_by().values("run").annotate(n=Count("pk")).values("n")
    runs = SyncRun.objects.filter(account=account).order_by("-started_at", "-pk")
    if query:
        runs = runs.filter(Exists(matching))
    return runs.annotate(
        entry_count=Coalesce(Subquery(entry_count, output_field=IntegerField()), 0)
    ).prefetch_related(
        Prefetch(
            "entries", queryset=_entries(query).order_by("pk")[:ENTRIES_PER_RUN], to_attr="listed_entries"
        )
    )


def marked(title: str, query: str) -> tuple[tuple[str, bool], ...]:
    """``title`` in pieces, each occurrence of ``query`` (any case) flagged."""
    if not query:
        return ((title, False),)
    parts: list[tuple[str, bool]] = []
    start = 0
    for match in re.finditer(re.escape(query), title, flags=re.IGNORECASE):
        if match.start() > start:
            parts.append((title[start : match.start()], False))
        parts.append((match[0], True))
        start = match.end()
    if start < len(title):
        parts.append((title[start:], False))
    return tuple(parts)


def _duration(run: SyncRun) -> str:
    if run.finished_at is None:
        return ""
    seconds = max(0, math.ceil((run.finished_at - run.started_at).total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def run_view(run: SyncRun, account: CalendarAccount, query: str, now: dt.datetime, tz: dt.tzinfo) -> RunView:
    lines: list[LogLine] = []
    for entry in getattr(run, "listed_entries", ()):
        explanation = explain(entry, account, None, None, now, tz=tz)
        if explanation is not None:
            lines.append(LogLine(entry, explanation, marked(entry.title, query)))
    return RunView(
        run=run,
        counts=RunCounts.of_run(run.counts),
        came_in=tuple(
            line
            for line in lines
            if line.entry.direction == SyncRunEntry.Direction.IN and line.entry.action in _CHANGES
        ),
        went_out=tuple(
            line
            for line in lines
            if line.entry.direction == SyncRunEntry.Direction.OUT and line.entry.action in _CHANGES
        ),
        not_synced=tuple(line for line in lines if line.entry.action not in _CHANGES),
        entry_count=int(getattr(run, "entry_count", len(lines))),
        duration=_duration(run),
    )


# --------------------------------------------------------------------------- views


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    """htmx swaps the runs in; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


@login_required
@require_http_methods(["GET"])
def sync_log(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """D2: the account's recent runs; ``?q=`` keeps the runs with an item of that title."""
    account = access_account(request.user, pk)
    # PostgreSQL refuses a NUL in a query: such a character can be in no title anyway.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:MAX_QUERY_LENGTH]
    page = Paginator(log_runs(account, query), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    zone = timezone.get_current_timezone()  # the user's own (UserTimeZoneMiddleware)
    context = {
        "section": "calendar_sync",
        "subsection": "sync_log",
        "account": account,
        "query": query,
        "page_obj": page,
        "runs": [run_view(run, account, query, now, zone) for run in page],
        "retention_days": retention_days(),
        "time_zone": zone,
    }
    template = (
        "calendarsync/_sync_log_runs.html" if _wants_fragment(request) else "calendarsync/sync_log.html"
    )
    response = render(request, template, context)
    # The same URL answers with a page or a fragment: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@dataclass(frozen=True)
class Refusal:
    message: str
    status: int
    retry_after: int | None = None


def _refusal(account: CalendarAccount, preferences: SyncPreferences | None) -> Refusal | None:
    """Why this account's sync cannot run now, if it cannot (the button is not shown then)."""
    if preferences is None or preferences.sync_started_at is None or preferences.sync_stopped_at is not None:
        return Refusal("The sync is not started: review the options below, then start it.", 409)
    if account.state in _BLOCKED_STATES:
        return Refusal(
            f"{account.email} needs attention ({account.get_state_display().lower()}): reconnect it first.",
            409,
        )
    return None


def sync_now_key(account_id: int) -> str:
    return f"calendarsync:sync-now:{account_id}"


def seconds_before_sync_now(account_id: int, now: dt.datetime) -> int:
    """0 and the request is taken (the next one waits ``SYNC_NOW_INTERVAL``); else seconds to wait.

    ``cache.add`` is atomic (Redis SET NX): of two presses at once, one queues. The key holds the
    time of the request and expires with the interval; a stored time older than the interval (an
    expiry not yet applied) is taken over.
    """
    key = sync_now_key(account_id)
    interval = SYNC_NOW_INTERVAL.total_seconds()
    for _ in range(3):
        if cache.add(key, now.timestamp(), timeout=math.ceil(interval)):
            return 0
        requested = cache.get(key)
        if requested is None:
            continue  # expired meanwhile: take it
        wait = interval - (now.timestamp() - float(requested))
        if wait > 0:
            return math.ceil(wait)
        cache.delete(key)
    return math.ceil(interval)  # another request took it meanwhile


@login_required
@require_http_methods(["POST"])
def sync_now(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Queue the account's sync now. htmx gets the status fragment (it polls while queued and
    running) or the refusal's message; a plain POST is redirected to the page with a message."""
    account = access_account(request.user, pk)
    preferences = SyncPreferences.objects.filter(account=account).first()
    refusal = _refusal(account, preferences)
    if refusal is None:
        wait = seconds_before_sync_now(account.pk, timezone.now())
        if wait:
            refusal = Refusal(f"Sync requested a moment ago; you can ask again in {wait} s.", 429, wait)
    if refusal is not None:
        return _refused(request, refusal)
    request_sync(account.pk, force=True)
    if not request.htmx:
        messages.success(request, SYNC_REQUESTED_MESSAGE)
        return redirect(page_url())
    account.refresh_from_db()
    return render(request, "calendarsync/_sync_now_answer.html", status_context(account, preferences))


def _refused(request: HtmxHttpRequest, refusal: Refusal) -> HttpResponse:
    if not request.htmx:
        messages.error(request, refusal.message)
        return redirect(page_url())
    response = render(
        request,
        "calendarsync/_sync_now_message.html",
        {"sync_now_message": refusal.message, "sync_now_refused": True},
        status=refusal.status,
    )
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    # The button's form targets the status; a refusal replaces the message beside the button instead.
    return retarget(reswap(response, "outerHTML"), "#sync-now-message")
