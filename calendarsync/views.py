"""Personal Preferences > Calendar Sync (C1-C6, O1-O10): the page, its options and the connect flows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import BoundField, CheckboxInput, CheckboxSelectMultiple, RadioSelect
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from accounts.auth import AuthedHttpRequest
from accounts.models import User
from calendarsync.actions import (
    CannotStartSync,
    InvalidPreferences,
    do_start_sync,
    do_stop_sync,
    do_update_preferences,
    ensure_preferences,
)
from calendarsync.connect.common import (
    access_account,
    connected_account,
    page_url,
)
from calendarsync.connect.google import start_google_sign_in
from calendarsync.connect.microsoft import start_microsoft_sign_in
from calendarsync.forms import (
    ONE_WAY_OPTIONS,
    PREFERENCE_FORMS,
    TWO_WAY_OPTIONS,
    PreferenceForm,
)
from calendarsync.models import AccountState, CalendarAccount, Provider, SyncPreferences, SyncType
from calendarsync.sync_status import Phase, account_status

logger = logging.getLogger(__name__)

SYNC_STARTED_MESSAGE = "Sync started. Your activities will show in your calendar within a few minutes."


class HtmxHttpRequest(AuthedHttpRequest):
    """A signed-in request (under ``login_required``) that went through django-htmx's middleware."""

    htmx: HtmxDetails


# --------------------------------------------------------------------------- the page and its options


@dataclass(frozen=True)
class Option:
    """One option of the page as its fragment shows it: the stored value, and what the last save did."""

    form: PreferenceForm
    url: str
    saved: bool = False
    errors: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.form.name

    @property
    def title(self) -> str:
        return self.form.title

    @property
    def help(self) -> str:
        return self.form.help

    @property
    def swaps_all_options(self) -> bool:
        return self.form.swaps_all_options

    @property
    def field(self) -> BoundField:
        return self.form[self.form.name]

    @property
    def is_choice_list(self) -> bool:
        return isinstance(self.field.field.widget, RadioSelect | CheckboxSelectMultiple)

    @property
    def is_checkbox(self) -> bool:
        return isinstance(self.field.field.widget, CheckboxInput)


def _option(
    form_class: type[PreferenceForm],
    account: CalendarAccount,
    preferences: SyncPreferences,
    user: User,
    *,
    saved: bool = False,
    errors: list[str] | None = None,
) -> Option:
    # The form is unbound: the fragment always shows what is stored, never a refused value.
    return Option(
        form=form_class(account=account, preferences=preferences, user=user),
        url=reverse("calendarsync:update_preferences", args=[account.pk, form_class.name]),
        saved=saved,
        errors=tuple(errors or ()),
    )


def _account_context(account: CalendarAccount, preferences: SyncPreferences) -> dict[str, Any]:
    """What the account and option fragments show besides the options themselves."""
    calendars = list(account.calendars.all())
    return {
        **status_context(account, preferences),
        "read_only_calendars": [calendar for calendar in calendars if not calendar.can_write],
        "has_writable_calendars": any(calendar.can_write for calendar in calendars),
        "sync_types": SyncType,
    }


def status_context(account: CalendarAccount, preferences: SyncPreferences | None) -> dict[str, Any]:
    """What the sync status fragment shows (R9)."""
    return {
        "account": account,
        "preferences": preferences,
        "status": account_status(account, preferences),
        "phases": Phase,
        "states": AccountState,
    }


def _options_context(
    account: CalendarAccount,
    user: User,
    *,
    saved: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    preferences = ensure_preferences(account)
    errors = errors or {}
    names = TWO_WAY_OPTIONS if preferences.sync_type == SyncType.TWO_WAY else ONE_WAY_OPTIONS
    options = [
        _option(
            PREFERENCE_FORMS[name], account, preferences, user, saved=name == saved, errors=errors.get(name)
        )
        for name in names
    ]
    return {**_account_context(account, preferences), "options": options}


@login_required
@require_http_methods(["GET"])
def page(request: AuthedHttpRequest) -> HttpResponse:
    account = connected_account(request.user)
    context: dict[str, Any] = {"section": "calendar_sync", "states": AccountState, "account": account}
    if account is None:
        # C6: after "Stop sync" the same choices read "Add account".
        context["had_account"] = request.user.calendar_accounts.exists()
    else:
        context.update(_options_context(account, request.user))
    return render(request, "calendarsync/page.html", context)


@login_required
@require_http_methods(["POST"])
def update_preferences(request: HtmxHttpRequest, pk: int, option: str) -> HttpResponse:
    """O8 autosave of one option. htmx gets the option's fragment back; a plain POST a redirect."""
    account = access_account(request.user, pk)
    form_class = PREFERENCE_FORMS.get(option)
    if form_class is None:
        raise Http404("No such option.")
    form = form_class(
        request.POST, account=account, preferences=ensure_preferences(account), user=request.user
    )
    errors = form.error_messages() if not form.is_valid() else []
    if not errors:
        try:
            do_update_preferences(acting_user=request.user, account=account, changes=form.changes())
        except InvalidPreferences:
            # The forms refuse all of these; only a race (a calendar removed meanwhile) gets here.
            logger.warning("refused preference change %s for account %s", option, account.pk)
            errors = ["That choice is no longer available. Reload the page and pick again."]
    if not request.htmx:
        if errors:
            messages.error(request, f"{form.title} was not saved: {' '.join(errors)}")
        else:
            messages.success(request, f"Saved: {form.title}.")
        return redirect(page_url())
    status = 422 if errors else 200
    if form_class.swaps_all_options:
        # O2: switching sync type shows or hides the two-way-only options.
        context = _options_context(
            account, request.user, saved=None if errors else option, errors={option: errors}
        )
        return render(request, "calendarsync/_options.html", context, status=status)
    preferences = ensure_preferences(account)  # read again: the action saved through another instance
    context = _account_context(account, preferences)
    context["option"] = _option(
        form_class, account, preferences, request.user, saved=not errors, errors=errors
    )
    return render(request, "calendarsync/_option.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def sync_status(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """R9/O9: the account's status fragment alone; it asks again by itself while a sync is queued or runs."""
    account = access_account(request.user, pk)
    # Read only: this runs every 2 seconds while a sync runs, it must not create anything.
    preferences = SyncPreferences.objects.filter(account=account).first()
    return render(request, "calendarsync/_sync_status.html", status_context(account, preferences))


@login_required
@require_http_methods(["POST"])
def start_sync(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """O9: the explicit first save."""
    account = access_account(request.user, pk)
    try:
        do_start_sync(acting_user=request.user, account=account)
    except CannotStartSync as exc:
        messages.error(request, f"Sync did not start: {exc.message}")
    else:
        messages.success(request, SYNC_STARTED_MESSAGE)
    return redirect(page_url())


@login_required
@require_http_methods(["GET", "POST"])
def stop_sync(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """C6 Edit -> Stop sync: GET asks for confirmation, POST disconnects (activities are kept)."""
    account = access_account(request.user, pk)
    if request.method == "GET":
        return render(
            request, "calendarsync/stop_confirm.html", {"account": account, "section": "calendar_sync"}
        )
    disconnected = do_stop_sync(acting_user=request.user, account=account)
    messages.success(
        request,
        f"Sync stopped and {account.email} disconnected. Your activities are kept. "
        "You can add an account again below.",
    )
    if disconnected.consent_pages:
        messages.info(
            request, _remove_access_yourself(account.get_provider_display(), disconnected.consent_pages)
        )
    return redirect(page_url())


def _remove_access_yourself(provider: str, pages: tuple[tuple[str, str], ...]) -> SafeString:
    """The provider lets no app revoke its own access (Microsoft): CalSync forgot its keys, the user
    can do the rest on these pages."""
    links = format_html_join(
        " or ",
        '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a> ({})',
        ((url, url.removeprefix("https://"), kind) for kind, url in pages),
    )
    return format_html(
        "CalSync has deleted its keys to your calendar. {} does not let apps withdraw their own "
        "access, so to remove CalSync from your account as well, open {}.",
        provider,
        links,
    )


# --------------------------------------------------------------------------- connect: other, reconnect


@login_required
@require_http_methods(["GET"])
def connect_other(request: AuthedHttpRequest) -> HttpResponse:
    """C2: IMAP and POP are not supported; say so plainly."""
    return render(request, "calendarsync/connect_other.html", {"section": "calendar_sync"})


@login_required
@require_http_methods(["POST"])
def reconnect(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """C4/R10 Reconnect, the same button for every provider: Google's and Microsoft's sign-in again,
    Exchange's password form. The account keeps its row, options and links; only a sign-in as
    the same identity updates it."""
    account = access_account(request.user, pk)
    if account.provider == Provider.GOOGLE:
        return start_google_sign_in(request, account)
    if account.provider == Provider.MICROSOFT:
        return start_microsoft_sign_in(request, account)
    return redirect("calendarsync:connect_exchange")
