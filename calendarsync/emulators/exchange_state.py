"""The emulated Exchange world as data: mailboxes, folders, calendar items, series, sync states.

Every function of the emulator that reads or changes this state runs under `ExchangeState.lock`.
Item semantics follow Exchange's: a recurring series is one master item whose occurrences exist
only when a CalendarView expands them; a modified occurrence is an exception stored on the
master; deleting an item moves it to Deleted Items under a new id (MoveToDeletedItems).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP

from calendarsync.emulators.exchange_xml import EwsError
from calendarsync.emulators.google_rrule import Occurrence, Recurrence, Rule, expand

CALENDAR = "calendar"
DELETED_ITEMS = "deleteditems"
SENT_ITEMS = "sentitems"
ROOT = "root"
MSG_FOLDER_ROOT = "msgfolderroot"
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
ExtendedKey = tuple[str, str, str]  # (property set or tag, name or id, type)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def opaque_id(prefix: bytes, nbytes: int = 30) -> str:
    """An id shaped like Exchange's: base64 of a binary blob (ids are opaque to clients)."""
    return base64.b64encode(prefix + secrets.token_bytes(nbytes)).decode()


def zone_of(ms_id: str) -> dt.tzinfo:
    """A Windows time zone id (what EWS uses) or an IANA name -> tzinfo; unknown -> UTC."""
    name = MS_TIMEZONE_TO_IANA_MAP.get(ms_id, ms_id)
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""
    response: str = "Unknown"  # Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived
    optional: bool = False


@dataclass(frozen=True)
class EwsRecurrence:
    """An EWS recurrence pattern and range, kept as sent so it renders back unchanged."""

    pattern: str  # DailyRecurrence, WeeklyRecurrence, AbsoluteMonthlyRecurrence, AbsoluteYearlyRecurrence
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    first_day_of_week: str = "Monday"
    day_of_month: int | None = None
    month: str | None = None
    range_kind: str = "NoEndRecurrence"  # NoEndRecurrence, EndDateRecurrence, NumberedRecurrence
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    count: int | None = None

    def rule(self) -> Recurrence:
        freq = {
            "DailyRecurrence": "DAILY",
            "WeeklyRecurrence": "WEEKLY",
            "AbsoluteMonthlyRecurrence": "MONTHLY",
            "AbsoluteYearlyRecurrence": "YEARLY",
        }[self.pattern]
        byday = tuple(sorted(WEEKDAY_NAMES.index(day) for day in self.days_of_week))
        wkst = WEEKDAY_NAMES.index(self.first_day_of_week) if self.first_day_of_week in WEEKDAY_NAMES else 0
        return Recurrence(
            rule=Rule(
                freq=freq,
                interval=self.interval,
                count=self.count if self.range_kind == "NumberedRecurrence" else None,
                until=self.end_date if self.range_kind == "EndDateRecurrence" else None,
                byday=byday,
                wkst=wkst,
            ),
            exdates=frozenset(),
        )


@dataclass
class ItemData:
    """The content of a calendar item (what clients write)."""

    start: dt.datetime
    end: dt.datetime
    subject: str = ""
    body: str = ""
    body_type: str = "Text"
    location: str = ""
    all_day: bool = False
    start_tz: str = "UTC"
    end_tz: str = "UTC"
    sensitivity: str = "Normal"  # Normal, Personal, Private, Confidential
    free_busy: str = "Busy"  # Free, Tentative, Busy, OOF, WorkingElsewhere, NoData
    importance: str = "Normal"
    reminder_is_set: bool = False
    reminder_minutes: int = 0
    attendees: list[Attendee] = field(default_factory=list)
    extended: dict[ExtendedKey, str] = field(default_factory=dict)
    recurrence: EwsRecurrence | None = None


@dataclass
class Instance:
    """One occurrence of a series as a CalendarView shows it."""

    id: str
    master: StoredItem
    original_start: dt.datetime
    index: int
    data: ItemData
    is_exception: bool


@dataclass
class StoredItem:
    id: str
    data: ItemData
    uid: str
    created: dt.datetime
    modified: dt.datetime
    created_seq: int
    change_seq: int
    version: int = 1
    folder: str = CALENDAR
    # Occurrence changes of a series: original start (UTC) -> changed content; and deleted ones.
    exceptions: dict[dt.datetime, ItemData] = field(default_factory=dict)
    deleted_occurrences: set[dt.datetime] = field(default_factory=set)
    # Meetings: a copy an invitation put here names its organizer (another address); the items
    # the mailbox made itself leave it empty (their organizer is the mailbox). MyResponseType:
    # "Organizer" on the mailbox's own items, the owner's answer on a copy. A sent cancellation
    # marks a copy cancelled; it stays in the calendar until removed.
    organizer: str = ""
    my_response: str = "Organizer"
    is_cancelled: bool = False

    @property
    def is_copy(self) -> bool:
        """A meeting someone else organizes (this mailbox was invited)."""
        return bool(self.organizer)

    @property
    def change_key(self) -> str:
        digest = hashlib.sha256(f"{self.id}:{self.version}".encode()).digest()[:12]
        return base64.b64encode(b"\x09\x00\x00\x00" + digest).decode()

    @property
    def is_master(self) -> bool:
        return self.data.recurrence is not None

    def local_span(self) -> tuple[dt.date, dt.date]:
        """The series' first instance in its own zone: aware datetimes, or dates for all-day."""
        zone = zone_of(self.data.start_tz)
        start, end = self.data.start.astimezone(zone), self.data.end.astimezone(zone)
        if self.data.all_day:
            return start.date(), end.date()
        return start, end

    def instances(self, until: dt.datetime) -> list[Instance]:
        """The occurrences that start before ``until`` (deleted ones left out, exceptions applied)."""
        recurrence = self.data.recurrence
        if recurrence is None:
            return []
        first, last = self.local_span()
        zone = zone_of(self.data.start_tz)
        found: list[Instance] = []
        for index, occurrence in enumerate(expand(recurrence.rule(), first, last, horizon=until), start=1):
            start, end = _instant(occurrence, zone, start=True), _instant(occurrence, zone, start=False)
            if start in self.deleted_occurrences:
                continue
            exception = self.exceptions.get(start)
            data = copy.deepcopy(exception) if exception is not None else copy.deepcopy(self.data)
            if exception is None:
                data.start, data.end = start, end
            data.recurrence = None
            found.append(
                Instance(
                    id=occurrence_id(self.id, start),
                    master=self,
                    original_start=start,
                    index=index,
                    data=data,
                    is_exception=exception is not None,
                )
            )
        return found

    def instance_at(self, original_start: dt.datetime) -> Instance | None:
        for instance in self.instances(original_start + dt.timedelta(seconds=1)):
            if instance.original_start == original_start:
                return instance
        return None

    def instance_by_index(self, index: int) -> Instance | None:
        horizon = max(self.data.start, now()) + dt.timedelta(days=3660)
        for instance in self.instances(horizon):
            if instance.index == index:
                return instance
        return None

    def slots(self, until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """Every occurrence the pattern makes before ``until`` (deleted ones too): original start, end."""
        recurrence = self.data.recurrence
        if recurrence is None:
            return []
        first, last = self.local_span()
        zone = zone_of(self.data.start_tz)
        return [
            (_instant(occurrence, zone, start=True), _instant(occurrence, zone, start=False))
            for occurrence in expand(recurrence.rule(), first, last, horizon=until)
        ]


def _instant(occurrence: Occurrence, zone: dt.tzinfo, *, start: bool) -> dt.datetime:
    value = occurrence.start if start else occurrence.end
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    # All-day: midnight of that date in the series' zone.
    return dt.datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(dt.UTC)


def occurrence_id(master_id: str, original_start: dt.datetime) -> str:
    """Occurrence ids name their series and original start (Exchange's are opaque as well)."""
    raw = f"occ|{master_id}|{original_start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_occurrence_id(item_id: str) -> tuple[str, dt.datetime] | None:
    try:
        raw = base64.urlsafe_b64decode(item_id.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, rest = raw.partition("|")
    master_id, _, stamp = rest.rpartition("|")
    if kind != "occ" or not master_id:
        return None
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return master_id, when


@dataclass
class Folder:
    id: str
    distinguished: str
    name: str
    folder_class: str
    parent_id: str = ""
    items: dict[str, StoredItem] = field(default_factory=dict)
    # Item id -> (seq of its removal, seq of its creation): SyncFolderItems reports Delete.
    tombstones: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """How the mailbox files it: its distinguished name, or its id (a calendar the user added)."""
        return self.distinguished or self.id

    @property
    def is_calendar(self) -> bool:
        return self.folder_class == "IPF.Appointment"


@dataclass
class Mailbox:
    email: str
    password: str
    two_factor: bool = False
    app_password: str | None = None
    calendar_access: bool = True
    folders: dict[str, Folder] = field(default_factory=dict)
    # What the mailbox mailed about its meetings, oldest first: (kind, recipient, UID), kind
    # "invitation", "update" or "cancellation" (the emulator's record of the Sent Items folder).
    meeting_messages: list[tuple[str, str, str]] = field(default_factory=list)

    def folder(self, distinguished: str) -> Folder:
        return self.folders[distinguished]

    def folder_by_id(self, folder_id: str) -> Folder | None:
        return next((f for f in self.folders.values() if f.id == folder_id), None)

    def find_item(self, item_id: str) -> StoredItem | None:
        for folder in self.folders.values():
            if item_id in folder.items:
                return folder.items[item_id]
        return None

    def accepts(self, password: str) -> bool:
        """Two-factor accounts take their app password only; the others their password."""
        if self.two_factor:
            return self.app_password is not None and secrets.compare_digest(password, self.app_password)
        return secrets.compare_digest(password, self.password)


@dataclass
class ItemFault:
    """A refusal waiting for the next UpdateItem or DeleteItem of one item or occurrence."""

    code: str
    message: str
    remaining: int = 1


@dataclass
class SyncStateRecord:
    email: str
    folder_id: str
    seq: int
    expired: bool = False


class ExchangeState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.mailboxes: dict[str, Mailbox] = {}
        self.sync_states: dict[str, SyncStateRecord] = {}
        # Item (or occurrence) id -> the refusal its next UpdateItem or DeleteItem gets.
        self.item_faults: dict[str, ItemFault] = {}
        self.seq = 0

    # -- mailboxes -----------------------------------------------------------------------

    def add_mailbox(
        self, email: str, password: str, *, two_factor: bool = False, app_password: str | None = None
    ) -> Mailbox:
        email = email.strip().lower()
        if not email or "@" not in email:
            raise ValueError(f"not an e-mail address: {email!r}")
        if two_factor and not app_password:
            raise ValueError("a two-factor account needs an app password")
        mailbox = self.mailboxes.get(email)
        if mailbox is None:
            mailbox = Mailbox(email=email, password=password)
            root = Folder(opaque_id(b"\x01root"), ROOT, "Root", "")
            top = Folder(
                opaque_id(b"\x01msgr"), MSG_FOLDER_ROOT, "Top of Information Store", "IPF.Note", root.id
            )
            calendar = Folder(opaque_id(b"\x01cal"), CALENDAR, "Calendar", "IPF.Appointment", top.id)
            deleted = Folder(opaque_id(b"\x01del"), DELETED_ITEMS, "Deleted Items", "IPF.Note", top.id)
            # Where SendAndSaveCopy files sent meeting responses (exchangelib names it by default).
            sent = Folder(opaque_id(b"\x01snt"), SENT_ITEMS, "Sent Items", "IPF.Note", top.id)
            mailbox.folders = {f.key: f for f in (root, top, calendar, deleted, sent)}
            self.mailboxes[email] = mailbox
        mailbox.password = password
        mailbox.two_factor = two_factor
        mailbox.app_password = app_password
        return mailbox

    def add_calendar(self, mailbox: Mailbox, folder_id: str, name: str) -> Folder:
        """Another calendar folder of the mailbox (under the default one, as Outlook makes them)."""
        folder = mailbox.folder_by_id(folder_id)
        if folder is None:
            parent = mailbox.folder(CALENDAR)
            folder = Folder(folder_id, "", name, "IPF.Appointment", parent.id)
            mailbox.folders[folder.key] = folder
        folder.name = name
        return folder

    def mailbox(self, email: str) -> Mailbox:
        try:
            return self.mailboxes[email.strip().lower()]
        except KeyError:
            raise KeyError(f"no emulated Exchange mailbox {email!r}") from None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def take_item_fault(self, item_id: str) -> None:
        """Raise the refusal waiting for a change to this item, if any (and use it up)."""
        fault = self.item_faults.get(item_id)
        if fault is None:
            return
        fault.remaining -= 1
        if fault.remaining <= 0:
            del self.item_faults[item_id]
        raise EwsError(fault.code, fault.message)

    # -- items ---------------------------------------------------------------------------

    def create_item(self, folder: Folder, data: ItemData, uid: str | None = None) -> StoredItem:
        validate_item(data)
        seq = self.next_seq()
        moment = now()
        item = StoredItem(
            id=opaque_id(b"\x00\x00\x00\x2e"),
            data=data,
            uid=uid or secrets.token_hex(32).upper(),
            created=moment,
            modified=moment,
            created_seq=seq,
            change_seq=seq,
            folder=folder.key,
        )
        folder.items[item.id] = item
        return item

    def touch(self, item: StoredItem) -> None:
        item.version += 1
        item.change_seq = self.next_seq()
        # Exchange's LastModifiedTime has second precision: keep it growing so clients see a change.
        item.modified = max(now(), item.modified + dt.timedelta(seconds=1))

    def remove_item(self, mailbox: Mailbox, item: StoredItem, *, hard: bool) -> None:
        """Delete: hard, or move to Deleted Items under a new id (what Outlook's Delete does)."""
        folder = mailbox.folder(item.folder)
        folder.items.pop(item.id, None)
        folder.tombstones[item.id] = (self.next_seq(), item.created_seq)
        if hard or item.folder == DELETED_ITEMS:
            return
        trash = mailbox.folder(DELETED_ITEMS)
        moved = copy.deepcopy(item)
        moved.id = opaque_id(b"\x00\x00\x00\x2e")
        moved.folder = DELETED_ITEMS
        moved.created_seq = moved.change_seq = self.next_seq()
        trash.items[moved.id] = moved

    # -- sync states ---------------------------------------------------------------------

    def new_sync_state(self, email: str, folder_id: str, seq: int) -> str:
        token = base64.b64encode(b"\x02\x00calsync-emu\x00" + secrets.token_bytes(48)).decode()
        self.sync_states[token] = SyncStateRecord(email=email, folder_id=folder_id, seq=seq)
        return token

    def sync_state(self, token: str, email: str, folder_id: str) -> SyncStateRecord:
        record = self.sync_states.get(token)
        # Unknown states (e.g. after the emulator restarted) are invalid too: the client resyncs.
        if record is None or record.email != email or record.folder_id != folder_id or record.expired:
            raise EwsError(
                "ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid."
            )
        return record

    def expire_sync_states(self, email: str | None) -> None:
        for record in self.sync_states.values():
            if email is None or record.email == email.strip().lower():
                record.expired = True


def validate_item(data: ItemData) -> None:
    if data.end < data.start:
        raise EwsError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "The end date is earlier than the start date."
        )
    recurrence = data.recurrence
    if recurrence is None:
        return
    if recurrence.interval < 1 or (recurrence.count is not None and recurrence.count < 1):
        raise EwsError("ErrorCalendarInvalidRecurrence", "The recurrence pattern is invalid.")
    if recurrence.pattern == "AbsoluteMonthlyRecurrence" or recurrence.pattern == "AbsoluteYearlyRecurrence":
        first = data.start.astimezone(zone_of(data.start_tz))
        if recurrence.day_of_month not in (None, first.day):
            raise EwsError(
                "ErrorCalendarInvalidRecurrence",
                "The emulator repeats monthly and yearly on the start's day only.",
            )
        if recurrence.month is not None and recurrence.month != MONTH_NAMES[first.month - 1]:
            raise EwsError(
                "ErrorCalendarInvalidRecurrence", "The emulator repeats yearly on the start's month only."
            )


def data_summary(data: ItemData) -> dict[str, Any]:
    """A plain view of an item's content for the control API and the demo page."""
    return {
        "subject": data.subject,
        "body": data.body,
        "location": data.location,
        "start": data.start.isoformat(),
        "end": data.end.isoformat(),
        "all_day": data.all_day,
        "time_zone": data.start_tz,
        "sensitivity": data.sensitivity,
        "free_busy": data.free_busy,
        "attendees": [
            {"email": a.email, "name": a.name, "response": a.response, "optional": a.optional}
            for a in data.attendees
        ],
        "extended_properties": {"|".join(key): value for key, value in data.extended.items()},
        "recurrence": None
        if data.recurrence is None
        else {
            "pattern": data.recurrence.pattern,
            "interval": data.recurrence.interval,
            "days_of_week": list(data.recurrence.days_of_week),
            "range": data.recurrence.range_kind,
            "count": data.recurrence.count,
            "end_date": data.recurrence.end_date.isoformat() if data.recurrence.end_date else None,
        },
    }
