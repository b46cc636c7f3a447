"""The emulated Google world as data: users, calendars, stored events, OAuth grants, sync tokens.

Every function of the emulator that reads or changes this state runs under `EmulatorState.lock`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass, field

from calendarsync.emulators.google_http import ApiError, JsonDict, not_found

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
CALENDAR_READONLY_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"
EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
EVENTS_READONLY_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"
ACCESS_TOKEN_LIFETIME = dt.timedelta(seconds=3600)
AUTHORIZATION_CODE_LIFETIME = dt.timedelta(minutes=10)
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # base32hex, as Google's event ids


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def random_id(length: int = 26) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def random_token(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str] | None  # None: any loopback redirect URI


@dataclass
class RefreshGrant:
    token: str
    email: str
    client_id: str
    scopes: list[str]
    revoked: bool = False


@dataclass
class AccessGrant:
    token: str
    email: str
    client_id: str
    scopes: list[str]
    refresh_token: str | None
    expires_at: dt.datetime
    revoked: bool = False

    def usable(self) -> bool:
        return not self.revoked and now() < self.expires_at


@dataclass(frozen=True)
class Revocation:
    """A token the app revoked at the revoke endpoint, as Google's audit log would show it."""

    kind: str  # "refresh_token" or "access_token"
    token: str
    email: str
    client_id: str
    at: dt.datetime


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    email: str
    scopes: list[str]
    offline: bool
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: dt.datetime
    used: bool = False


@dataclass
class StoredEvent:
    """An event as Google keeps it; deleted events stay (status cancelled) for sync and id reuse."""

    resource: JsonDict
    changed_seq: int
    # Instances an earlier version of a series had and the current one lacks: sync reports
    # them as cancelled. Keyed by instance id, values are the minimal cancelled resources.
    retired_instances: dict[str, JsonDict] = field(default_factory=dict)
    # Instances changed or cancelled on their own (Google's "exceptions"), keyed by instance id:
    # events of their own with recurringEventId and originalStartTime, and their own changed_seq.
    exceptions: dict[str, StoredEvent] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def deleted(self) -> bool:
        return self.resource.get("status") == "cancelled"

    @property
    def recurring(self) -> bool:
        return bool(self.resource.get("recurrence"))


@dataclass
class EventFault:
    """A refusal waiting for the next write (patch, update, delete) to one event or instance."""

    status: int
    reason: str
    message: str
    domain: str = "global"
    remaining: int = 1


@dataclass
class Calendar:
    id: str
    summary: str
    owner: str
    primary: bool
    time_zone: str = "UTC"
    events: dict[str, StoredEvent] = field(default_factory=dict)


@dataclass
class PendingConference:
    """A Google Meet create request still "pending": the event (or instance) that asked for it."""

    calendar: Calendar
    top_id: str  # the event whose copies show it (the series, for an instance)
    stored: StoredEvent
    request_id: str


@dataclass
class GoogleUser:
    email: str
    sub: str
    calendars: dict[str, Calendar] = field(default_factory=dict)


@dataclass
class SyncToken:
    email: str
    calendar_id: str
    seq: int
    expired: bool = False


@dataclass
class PageCursor:
    email: str
    calendar_id: str
    items: list[JsonDict]
    offset: int
    snapshot_seq: int


class EmulatorState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, GoogleUser] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.access_grants: dict[str, AccessGrant] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        # Every successful call of the revoke endpoint, oldest first.
        self.revocations: list[Revocation] = []
        self.sync_tokens: dict[str, SyncToken] = {}
        self.page_cursors: dict[str, PageCursor] = {}
        # Event (or instance) id -> the refusal its next write gets.
        self.event_faults: dict[str, EventFault] = {}
        # What Google would have mailed, per sending mailbox: (kind, recipient, iCalUID).
        self.sent_mail: dict[str, list[tuple[str, str, str]]] = {}
        # Google Meet conferences asked for and not made yet (made before the next request).
        self.pending_conferences: list[PendingConference] = []
        self.seq = 0

    # -- users and calendars -------------------------------------------------------------

    def add_user(self, email: str) -> GoogleUser:
        email = email.strip().lower()
        if not email or "@" not in email:
            raise ValueError(f"not an e-mail address: {email!r}")
        user = self.users.get(email)
        if user is None:
            sub = str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]
            user = GoogleUser(email=email, sub=sub)
            user.calendars[email] = Calendar(id=email, summary=email, owner=email, primary=True)
            self.users[email] = user
        return user

    def add_calendar(self, email: str, calendar_id: str, summary: str) -> Calendar:
        user = self.user(email)
        calendar = user.calendars.get(calendar_id)
        if calendar is None:
            calendar = Calendar(id=calendar_id, summary=summary, owner=user.email, primary=False)
            user.calendars[calendar_id] = calendar
        else:
            calendar.summary = summary
        return calendar

    def user(self, email: str) -> GoogleUser:
        try:
            return self.users[email.strip().lower()]
        except KeyError:
            raise KeyError(f"no emulated Google user {email!r}") from None

    def find_calendar(self, calendar_id: str) -> Calendar | None:
        """Any user's calendar by its id (an organizer's calendar, seen from a guest's copy)."""
        wanted = calendar_id.strip().lower()
        for user in self.users.values():
            for calendar in user.calendars.values():
                if calendar.id.lower() == wanted:
                    return calendar
        return None

    def primary_calendar(self, email: str) -> Calendar | None:
        """The primary calendar of an emulated user, None for anyone else (an outside address)."""
        user = self.users.get(email.strip().lower())
        return None if user is None else user.calendars[user.email]

    def calendar(self, email: str, calendar_id: str) -> Calendar:
        """The user's calendar by id ('primary' is the user's own); 404 for anyone else's."""
        user = self.users.get(email.strip().lower())
        if user is None:
            raise not_found()
        key = user.email if calendar_id == "primary" else calendar_id
        calendar = user.calendars.get(key)
        if calendar is None:
            raise not_found()
        return calendar

    # -- change sequence and etags -------------------------------------------------------

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @staticmethod
    def etag(seq: int) -> str:
        # Google's event etags are quoted decimal numbers that grow with every change.
        return f'"{3_400_000_000_000_000 + seq}"'

    # -- tokens --------------------------------------------------------------------------

    def issue_access_token(
        self, email: str, client_id: str, scopes: list[str], refresh: str | None
    ) -> AccessGrant:
        grant = AccessGrant(
            token=random_token("ya29.emu-"),
            email=email,
            client_id=client_id,
            scopes=list(scopes),
            refresh_token=refresh,
            expires_at=now() + ACCESS_TOKEN_LIFETIME,
        )
        self.access_grants[grant.token] = grant
        return grant

    def issue_refresh_token(self, email: str, client_id: str, scopes: list[str]) -> RefreshGrant:
        grant = RefreshGrant(
            token=random_token("1//emu-"), email=email, client_id=client_id, scopes=list(scopes)
        )
        self.refresh_grants[grant.token] = grant
        return grant

    def revoke_refresh_token(self, token: str) -> None:
        grant = self.refresh_grants.get(token)
        if grant is not None:
            grant.revoked = True
        for access in self.access_grants.values():
            if access.refresh_token == token:
                access.revoked = True

    def revoke_user(self, email: str) -> None:
        email = email.strip().lower()
        for grant in self.refresh_grants.values():
            if grant.email == email:
                grant.revoked = True
        for access in self.access_grants.values():
            if access.email == email:
                access.revoked = True

    def expire_access_tokens(self, email: str | None) -> None:
        past = now() - dt.timedelta(seconds=1)
        for access in self.access_grants.values():
            if email is None or access.email == email.strip().lower():
                access.expires_at = min(access.expires_at, past)

    def new_sync_token(self, email: str, calendar_id: str, seq: int) -> str:
        token = base64.urlsafe_b64encode(b"\x08" + secrets.token_bytes(17)).decode().rstrip("=")
        self.sync_tokens[token] = SyncToken(email=email, calendar_id=calendar_id, seq=seq)
        return token

    def expire_sync_tokens(self, email: str | None) -> None:
        for record in self.sync_tokens.values():
            if email is None or record.email == email.strip().lower():
                record.expired = True

    def take_event_fault(self, event_id: str) -> None:
        """Raise the refusal waiting for a write to this event, if any (and use it up)."""
        fault = self.event_faults.get(event_id)
        if fault is None:
            return
        fault.remaining -= 1
        if fault.remaining <= 0:
            del self.event_faults[event_id]
        raise ApiError(fault.status, fault.reason, fault.message, domain=fault.domain)

    def sync_token(self, token: str, email: str, calendar_id: str) -> SyncToken:
        record = self.sync_tokens.get(token)
        # Unknown tokens (e.g. after the emulator restarted) also demand a full sync, so a
        # restarted demo emulator never wedges the app's sync.
        if record is None or record.email != email or record.calendar_id != calendar_id or record.expired:
            raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
        return record
