"""The emulated Microsoft 365 world as data: users, calendars, events, grants, delta tokens.

Every function of the emulator that reads or changes this state runs under `MicrosoftState.lock`.
Graph-shaped errors (`GraphError`) live here too, as every other module raises them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
import uuid
from dataclasses import dataclass, field

from calendarsync.emulators.google_http import JsonDict, Response, json_response

# The emulated tenant (directory) every user belongs to.
TENANT_ID = "4008da80-5de3-4349-bab6-3ec484da1ca6"
GRAPH_RESOURCE = "https://graph.microsoft.com/"
CALENDARS_READ = "Calendars.Read"
CALENDARS_READWRITE = "Calendars.ReadWrite"
USER_READ = "User.Read"
KNOWN_GRAPH_SCOPES = (CALENDARS_READ, CALENDARS_READWRITE, USER_READ, "User.ReadBasic.All", "Mail.Read")
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
ACCESS_TOKEN_LIFETIME = dt.timedelta(seconds=3599)
AUTHORIZATION_CODE_LIFETIME = dt.timedelta(minutes=10)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def random_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def new_event_id() -> str:
    # Graph ids are opaque, long and URL-safe base64 (often with '=' padding): clients must quote them.
    return "AAMkAGEmu" + base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()


def normalize_scope(scope: str) -> str:
    """'https://graph.microsoft.com/calendars.readwrite' -> 'Calendars.ReadWrite' (scopes are case-insensitive)."""
    name = scope.strip()
    if name.lower().startswith(GRAPH_RESOURCE):
        name = name[len(GRAPH_RESOURCE) :]
    for known in (*KNOWN_GRAPH_SCOPES, *OIDC_SCOPES):
        if known.lower() == name.lower():
            return known
    return name


def format_graph_timestamp(moment: dt.datetime) -> str:
    """Graph's createdDateTime / lastModifiedDateTime form: UTC with seven fractional digits."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


class GraphError(Exception):
    """A Microsoft Graph error, rendered as Graph's JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers or [])

    def body(self) -> JsonDict:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": now().strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        }

    def to_response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


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
    expires_at: dt.datetime
    revoked: bool = False

    def usable(self) -> bool:
        return not self.revoked and now() < self.expires_at


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    email: str
    scopes: list[str]
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: dt.datetime
    used: bool = False


@dataclass
class OccurrenceChange:
    """What one occurrence of a series changed on its own (an exception): the properties it
    overrides (stored form) and its own extended properties; the rest follows the series."""

    overrides: JsonDict = field(default_factory=dict)
    extended: dict[str, str] = field(default_factory=dict)


@dataclass
class EventFault:
    """A refusal waiting for the next write (PATCH, DELETE) to one event or occurrence."""

    status: int
    code: str
    message: str
    remaining: int = 1


@dataclass
class StoredEvent:
    """An event as the mailbox keeps it: its writable fields (as Graph stores them) plus bookkeeping.

    Deleted events stay (``deleted``) so delta can report them and their transactionId stays taken.
    """

    id: str
    calendar_id: str
    fields: JsonDict
    created: dt.datetime
    modified: dt.datetime
    seq: int
    extended: dict[str, str] = field(default_factory=dict)  # singleValueExtendedProperties: id -> value
    transaction_id: str | None = None
    deleted: bool = False
    cancelled_occurrences: set[str] = field(default_factory=set)
    # Occurrence id -> what that occurrence changed on its own (it shows as type "exception").
    changed_occurrences: dict[str, OccurrenceChange] = field(default_factory=dict)
    ical_uid: str = ""
    # Meetings (microsoft_meetings.py). ``organizer_address`` is None on the organizer's own event
    # (and on events without attendees); an attendee's copy holds the organizer's address and
    # name, its owner's response ("notResponded", "accepted", "tentativelyAccepted"), the free/busy
    # status the organizer intended, and whether the organizer cancelled the meeting.
    organizer_address: str | None = None
    organizer_name: str = ""
    response: str = "organizer"
    response_time: dt.datetime | None = None
    intended_show_as: str = "busy"
    cancelled: bool = False
    # The Teams link, once the event became an online meeting (copies carry the organizer's).
    join_url: str | None = None

    @property
    def change_key(self) -> str:
        return base64.b64encode(hashlib.sha256(f"{self.id}|{self.seq}".encode()).digest()[:18]).decode()

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    @property
    def recurring(self) -> bool:
        return bool(self.fields.get("recurrence"))

    @property
    def is_copy(self) -> bool:
        """An attendee's copy of a meeting someone else organizes."""
        return self.organizer_address is not None


@dataclass(frozen=True)
class SentMail:
    """A message the mailbox sent: a meeting "invitation", "update" or "cancellation", or an
    attendee's response ("accepted", "tentativelyAccepted", "declined") to the organizer."""

    kind: str
    recipient: str
    ical_uid: str


@dataclass
class Calendar:
    id: str
    name: str
    owner: str
    is_default: bool
    can_edit: bool = True
    events: dict[str, StoredEvent] = field(default_factory=dict)


@dataclass
class MicrosoftUser:
    email: str
    oid: str
    display_name: str
    default_calendar_id: str
    calendars: dict[str, Calendar] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime


@dataclass
class DeltaToken:
    """A delta round's state: the fixed window, how far it saw, and which item ids it reported live."""

    email: str
    calendar_id: str
    window: Window
    seq: int
    visible: dict[str, str]  # item id (event or occurrence) -> id of the stored event it belongs to
    expired: bool = False


@dataclass
class DeltaPage:
    email: str
    calendar_id: str
    items: list[JsonDict]
    offset: int
    final_token: str
    expired: bool = False


def user_oid(email: str) -> str:
    """The user's object id in the directory (stable for an address)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"calsync-emulator:{email.strip().lower()}"))


def _stable_id(prefix: str, text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return prefix + base64.urlsafe_b64encode(digest + digest[:12]).decode()


class MicrosoftState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, MicrosoftUser] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.access_grants: dict[str, AccessGrant] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.delta_tokens: dict[str, DeltaToken] = {}
        self.delta_pages: dict[str, DeltaPage] = {}
        # (mailbox, transactionId) -> (calendar id, event id): creates with a used id are deduplicated.
        self.transactions: dict[tuple[str, str], tuple[str, str]] = {}
        # Event (or occurrence) id -> the refusal its next write gets.
        self.event_faults: dict[str, EventFault] = {}
        # Sending mailbox -> the meeting messages it sent, oldest first (invitations, updates,
        # cancellations), and the responses its owner sent to organizers.
        self.sent_mail: dict[str, list[SentMail]] = {}
        self.sent_responses: dict[str, list[SentMail]] = {}
        self.seq = 0

    # -- users and calendars -------------------------------------------------------------

    def add_user(self, email: str, display_name: str | None = None) -> MicrosoftUser:
        email = email.strip().lower()
        if not email or "@" not in email:
            raise ValueError(f"not an e-mail address: {email!r}")
        user = self.users.get(email)
        if user is None:
            oid = user_oid(email)
            # Stable across emulator restarts, so a local app's chosen calendar survives one.
            calendar_id = _stable_id("AAMkAGCal", email)
            user = MicrosoftUser(
                email=email,
                oid=oid,
                display_name=display_name or email.split("@")[0].replace(".", " ").title(),
                default_calendar_id=calendar_id,
            )
            user.calendars[calendar_id] = Calendar(
                id=calendar_id, name="Calendar", owner=email, is_default=True
            )
            self.users[email] = user
        return user

    def add_calendar(self, email: str, calendar_id: str | None, name: str) -> Calendar:
        user = self.user(email)
        calendar_id = calendar_id or _stable_id("AAMkAGCal", f"{user.email}|{name}")
        calendar = user.calendars.get(calendar_id)
        if calendar is None:
            calendar = Calendar(id=calendar_id, name=name, owner=user.email, is_default=False)
            user.calendars[calendar_id] = calendar
        else:
            calendar.name = name
        return calendar

    def user(self, email: str) -> MicrosoftUser:
        try:
            return self.users[email.strip().lower()]
        except KeyError:
            raise KeyError(f"no emulated Microsoft user {email!r}") from None

    def calendar(self, email: str, calendar_id: str | None) -> Calendar:
        """The user's calendar by id (None: the default calendar); 404 for anyone else's."""
        user = self.users.get(email.strip().lower())
        if user is None:
            raise item_not_found()
        calendar = user.calendars.get(calendar_id or user.default_calendar_id)
        if calendar is None:
            raise item_not_found()
        return calendar

    def find_event(self, email: str, event_id: str) -> tuple[Calendar, StoredEvent] | None:
        user = self.users.get(email.strip().lower())
        if user is None:
            return None
        for calendar in user.calendars.values():
            stored = calendar.events.get(event_id)
            if stored is not None:
                return calendar, stored
        return None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def touch(self, stored: StoredEvent) -> None:
        """The event changed: a new changeKey and lastModifiedDateTime, and delta reports it again."""
        stored.modified = now()
        stored.seq = self.next_seq()

    def take_event_fault(self, event_id: str) -> None:
        """Raise the refusal waiting for a write to this event, if any (and use it up)."""
        fault = self.event_faults.get(event_id)
        if fault is None:
            return
        fault.remaining -= 1
        if fault.remaining <= 0:
            del self.event_faults[event_id]
        raise GraphError(fault.status, fault.code, fault.message)

    # -- tokens --------------------------------------------------------------------------

    def issue_access_token(self, email: str, client_id: str, scopes: list[str]) -> AccessGrant:
        grant = AccessGrant(
            token=random_token("EwBIA8l6BAAUemu"),
            email=email,
            client_id=client_id,
            scopes=list(scopes),
            expires_at=now() + ACCESS_TOKEN_LIFETIME,
        )
        self.access_grants[grant.token] = grant
        return grant

    def issue_refresh_token(self, email: str, client_id: str, scopes: list[str]) -> RefreshGrant:
        grant = RefreshGrant(
            token=random_token("M.C107_emu.0.U.", 48), email=email, client_id=client_id, scopes=list(scopes)
        )
        self.refresh_grants[grant.token] = grant
        return grant

    def revoke_user(self, email: str) -> None:
        email = email.strip().lower()
        for refresh in self.refresh_grants.values():
            if refresh.email == email:
                refresh.revoked = True
        for access in self.access_grants.values():
            if access.email == email:
                access.revoked = True

    def expire_access_tokens(self, email: str | None) -> None:
        past = now() - dt.timedelta(seconds=1)
        for access in self.access_grants.values():
            if email is None or access.email == email.strip().lower():
                access.expires_at = min(access.expires_at, past)

    # -- delta ---------------------------------------------------------------------------

    def new_delta_token(
        self, email: str, calendar_id: str, window: Window, seq: int, visible: dict[str, str]
    ) -> str:
        token = secrets.token_urlsafe(36)
        self.delta_tokens[token] = DeltaToken(email, calendar_id, window, seq, dict(visible))
        return token

    def expire_delta_tokens(self, email: str | None) -> None:
        wanted = email.strip().lower() if email is not None else None
        for token in self.delta_tokens.values():
            token.expired = token.expired or wanted in (None, token.email)
        for page in self.delta_pages.values():
            page.expired = page.expired or wanted in (None, page.email)


def sync_state_not_found() -> GraphError:
    return GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found. Please do a full sync (request without a delta token).",
    )
