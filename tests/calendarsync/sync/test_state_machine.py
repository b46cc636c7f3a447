"""The hunter (issue #12): a randomized user on both sides, faults in between, against each provider.

One ``RuleBasedStateMachine`` drives the real engine through the real adapters against each
provider's emulator: the CRM user creates, edits, moves, retypes, reassigns, deletes and restores
activities; the calendar user creates, edits, moves, makes recurring, edits or cancels an
occurrence, marks private and deletes events; preferences change (types, one-way / two-way, O6,
stop / start, revoke / reconnect); the provider forgets cursors; faults fire (500, 429 with
Retry-After, timeouts, a per-event 403, a database error while applying a change, the worker
killed between the provider's write and our commit). After every quiescent point (faults off,
two clean runs) the model in ``state_machine_support`` judges both sides by SPEC R1-R16: no
duplicate, no lost edit, deletions propagated, links agree field by field.

``test_sync_state_machine`` is the CI budget (a fixed, derandomized set of sequences per
provider, SQLite or PostgreSQL as ``DATABASE_URL`` says); ``test_sync_state_machine_fuzz`` is the
long run behind ``make fuzz`` (``FUZZ_EXAMPLES`` sequences per provider; skipped otherwise).
Counterexamples become named tests in ``test_state_machine_regressions.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.db import connection, transaction
from django.db.models import Max, Model
from django.utils import timezone
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, FlakyStrategyDefinition
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import User
from activities.models import Activity, ActivityType, Person
from calendarsync import actions
from calendarsync.models import (
    ActivityTrash,
    CalendarAccount,
    EventLink,
    PrivateEvents,
    SyncType,
)
from calendarsync.providers.base import CalendarProvider, RemoteCalendarInfo
from calendarsync.sync import runner
from calendarsync.sync.trash import restore
from tests.calendarsync.sync.conftest import SyncEnv, SyncSetup
from tests.calendarsync.sync.state_machine_judge import ModelJudge, Outcomes
from tests.calendarsync.sync.state_machine_support import (
    BERLIN,
    LATER_MARGIN_SECONDS,
    PLAIN_FIELDS,
    CrashAfterWrite,
    Item,
    Series,
    Side,
    Violation,
    WorkerKilled,
    colleague_setup,
    database_error_once,
    fresh_credentials,
    moment,
    now_seconds,
    owner_setup,
    pending_event_faults,
    reset_emulator,
    run_at_once,
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

# CI: this many sequences per provider (each up to STEPS steps); tuned to stay under a minute each.
EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "25"))
STEPS = int(os.environ.get("STATE_MACHINE_STEPS", "25"))
SUBJECTS = ("Review", "Review (moved)", "Café talk", "Plan")
LOCATIONS = ("", "Room 1", "Room 2", "Café")
NOTES = ("", "Agenda", "Line 1\nLine 2", "Notes")
ATTENDEE_POOL = ("g1@partner.test", "g2@partner.test", "pat@buyer.test")  # pat is a CRM participant
PARTICIPANT = "pat@buyer.test"
DURATIONS = (15, 30, 60, 90)
TYPES = ("Meeting", "Call", "Task")
CRM_FIELDS = ("subject", "time", "duration", "location", "note", "attendees")
CAL_FIELDS = ("subject", "time", "duration", "location", "description", "attendees")
PICK = st.integers(min_value=0, max_value=63)
SEED = st.integers(min_value=0, max_value=63)


# Counterexamples the engine still fails, each pinned by an xfail test in
# test_state_machine_regressions.py: CI counts them without failing; whoever fixes one flips its
# regression test and removes it here, so the machine guards the fix from then on.
KNOWN_OPEN: dict[str, str] = {}


def attendees_of(seed: int) -> list[str]:
    return [email for bit, email in enumerate(ATTENDEE_POOL) if seed & (1 << bit)]


class SyncStateMachine(ModelJudge, RuleBasedStateMachine):
    """A user on both sides of one provider, and a colleague; bound to a test by ``bind``."""

    request: ClassVar[pytest.FixtureRequest]
    provider: ClassVar[str]
    owner_user: ClassVar[User]
    colleague_user: ClassVar[User]
    outcomes: ClassVar[Outcomes]
    # PostgreSQL, committed data: workers in other threads (their own connections) see it, so
    # two can run at once. Every example then deletes what it made instead of rolling back.
    transactional: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        # Every example runs in a savepoint rolled back at teardown; the emulators start afresh.
        self._atomic = transaction.atomic()
        self._baseline = {model: _max_pk(model) for model in EXAMPLE_ROWS} if self.transactional else {}
        if not self.transactional:
            self._atomic.__enter__()
        self.in_step = False
        self.failed: Violation | None = None
        self.running = reset_emulator(self.request, self.provider)
        owner = owner_setup(self.request, self.provider)
        colleague = colleague_setup(self.running, owner)
        self.setups: dict[str, SyncSetup] = {"owner": owner, "colleague": colleague}
        self.users: dict[str, User] = {"owner": self.owner_user, "colleague": self.colleague_user}
        self.envs = {key: SyncEnv(self.setups[key], self.users[key]) for key in ("owner", "colleague")}
        company = self.owner_user.company
        assert company is not None
        self.types = {t.name: t for t in ActivityType.objects.filter(company=company, name__in=TYPES)}
        self.participant = Person.objects.create(
            company=company, owner=self.owner_user, name="Pat Buyer", email=PARTICIPANT
        )
        self.items: list[Item] = []
        self.epoch = 0
        self.revoked = False
        self.stopped = False
        self.crash_armed = [False]
        self.db_fault: str | None = None
        self.refusals: set[str] = set()
        self.steps: list[str] = []
        self.margin = LATER_MARGIN_SECONDS[self.provider]

    # ----------------------------------------------------------------------- bookkeeping

    def teardown(self) -> None:
        try:
            if not self.in_step and self.failed is None:
                self._guard("final quiesce", lambda: self._quiesce())
            self.outcomes.ran += 1
            if self.failed is None:
                self.outcomes.converged += 1
            if os.environ.get("STATE_MACHINE_VERBOSE"):
                sys.stderr.write(
                    f"example {self.outcomes.ran}: {'ok' if self.failed is None else self.failed.rule}; {self.steps}\n"
                )
        finally:
            for setup in self.setups.values():
                setup.control.clear_faults()
            if self.transactional:
                for model, baseline in self._baseline.items():
                    model._default_manager.filter(pk__gt=baseline).delete()
            else:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

    def _guard(self, what: str, action: Callable[[], object]) -> None:
        """Run one step; a broken rule fails the example (CI) or is counted (fuzz run)."""
        if self.failed is not None:
            return  # a known open counterexample ended this sequence (CI), or the fuzz run counted it
        self.in_step = True
        self.steps.append(what)
        try:
            action()
        except Violation as violation:
            self.failed = violation
            self.outcomes.violated(violation)
            if self.outcomes.raise_violations and violation.rule not in KNOWN_OPEN:
                raise
        except Exception as error:
            if self.outcomes.raise_violations:
                raise
            # The fuzz run goes on: an error escaping a step is counted like a broken rule.
            self.failed = Violation(f"error-{type(error).__name__}", f"{error!r}\n  steps: {self.steps}")
            self.outcomes.violated(self.failed)
        self.in_step = False

    def _new_item(self, origin: Side, owner_key: str = "owner") -> Item:
        item = Item(key=len(self.items), origin=origin, owner_key=owner_key, epoch=self.epoch)
        self.items.append(item)
        return item

    def _pick(self, candidates: list[Item], pick: int) -> Item:
        return candidates[pick % len(candidates)]

    def _crm_items(self) -> list[Item]:
        return [
            i
            for i in self.items
            if i.activity_id is not None
            and not i.crm_gone
            and not i.trashed
            and not i.past
            and Activity.objects.filter(pk=i.activity_id, sync_read_only_reason="").exists()
        ]

    def _cal_items(self, *, series: bool = False) -> list[Item]:
        return [
            i
            for i in self.items
            if i.event_id is not None
            and i.event_owner == "owner"
            and not i.cal_gone
            and not i.past
            and (i.series is not None) == series
            and self.setups["owner"].control.event(i.event_id) is not None
        ]

    def _touched(self, item: Item, side: Side, names: tuple[str, ...], what: str) -> None:
        at = now_seconds()
        for name in names:
            item.edited_at[(side, name)] = at
        item.epoch = self.epoch
        item.dirty = side
        item.excused = False
        item.prestart = False
        item.note(what)

    # ----------------------------------------------------------------------- start

    @initialize(prestart_activities=st.integers(0, 2), prestart_event=st.booleans())
    def start(self, prestart_activities: int, prestart_event: bool) -> None:
        def act() -> None:
            for n in range(prestart_activities):
                self._create_activity("owner", "Meeting", n, n + 1, 10, 30, prestart=True)
            if prestart_event:
                item = self._create_event(0, 2, 11, 60, private=False)
                item.prestart = True
                # Providers stamp changes to the second: the start must come a whole second later.
                self.envs["owner"].start(settle=1.1)
            else:
                self.envs["owner"].start()
            self.envs["colleague"].start()

        self._guard(f"start(prestart_activities={prestart_activities}, prestart_event={prestart_event})", act)

    # ----------------------------------------------------------------------- CRM side

    def _create_activity(
        self,
        owner_key: str,
        type_name: str,
        seed: int,
        days: int,
        hour: int,
        minutes: int,
        *,
        prestart: bool = False,
    ) -> Item:
        item = self._new_item(Side.CRM, owner_key)
        user = self._user(owner_key)
        assert user.company is not None
        activity = Activity.objects.create(
            company=user.company,
            owner=user,
            type=self.types[type_name],
            subject=f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key}",
            start_at=moment(days, hour),
            due_date=moment(days, hour).date(),
            duration=dt.timedelta(minutes=minutes),
            location=LOCATIONS[seed % len(LOCATIONS)],
            note=NOTES[(seed // 4) % len(NOTES)],
            guests=[e for e in attendees_of(seed) if e != PARTICIPANT],
        )
        if PARTICIPANT in attendees_of(seed):
            activity.participants.add(self.participant)
        item.activity_id = activity.pk
        item.type_name = type_name
        item.crm = self._crm_values(Activity.objects.get(pk=activity.pk))
        self._touched(item, Side.CRM, PLAIN_FIELDS, "created in the CRM")
        item.prestart = prestart
        return item

    @rule(
        type_name=st.sampled_from(TYPES),
        seed=SEED,
        days=st.integers(1, 9),
        hour=st.integers(8, 17),
        minutes=st.sampled_from(DURATIONS),
        colleague=st.booleans(),
    )
    def crm_create(
        self, type_name: str, seed: int, days: int, hour: int, minutes: int, colleague: bool
    ) -> None:
        owner_key = "colleague" if colleague else "owner"
        self._guard(
            f"crm_create({type_name}, seed={seed}, days={days}, hour={hour}, minutes={minutes}, {owner_key})",
            lambda: self._create_activity(owner_key, type_name, seed, days, hour, minutes),
        )

    # Items are the point of every other rule: making them is drawn twice as often.
    crm_create_more = crm_create

    @precondition(lambda self: bool(self._crm_items()))
    @rule(pick=PICK, name=st.sampled_from(CRM_FIELDS), seed=SEED)
    def crm_edit(self, pick: int, name: str, seed: int) -> None:
        item = self._pick(self._crm_items(), pick)

        def act() -> None:
            activity = self._activity(item)
            assert activity is not None
            start = activity.start_at or moment(1, 9)
            if name == "subject":
                activity.subject = f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key}"
            elif name == "time":
                start = moment(1 + seed % 9, 8 + (seed // 9) % 9)
                activity.start_at, activity.due_date = start, start.date()
            elif name == "duration":
                activity.duration = dt.timedelta(minutes=DURATIONS[seed % len(DURATIONS)])
            elif name == "location":
                activity.location = LOCATIONS[seed % len(LOCATIONS)]
            elif name == "note":
                activity.note = NOTES[seed % len(NOTES)]
            elif name == "attendees":
                emails = attendees_of(seed)
                activity.guests = [e for e in emails if e != PARTICIPANT]
            activity.save()
            if name == "attendees":
                if PARTICIPANT in attendees_of(seed):
                    activity.participants.add(self.participant)
                else:
                    activity.participants.remove(self.participant)
            self._record_crm_edit(item, f"crm_edit({name}, seed={seed})")

        self._guard(f"crm_edit(item {item.key}, {name}, seed={seed})", act)

    def _past_state(self, item: Item) -> str:
        """R15: a synced item moved into the past has the move mirrored, then ends; one that does
        not sync (R6) just ends; one the rules leave open ("may") may go either way."""
        if not self._linked(item):
            # A link the sync keeps but has not confirmed yet (a new account takes over the old one's
            # links, R10): the sync may mirror the move or not.
            known = (
                item.activity_id is not None
                and EventLink.objects.filter(activity_id=item.activity_id).exists()
            )
            return "loose" if known else "ended"
        mode = self._mode(item)
        if mode == "frozen" and item.origin is Side.CRM:
            return "loose"  # R6: deselected now; selecting the type again may mirror the move (R15)
        return {"sync": "pending", "frozen": "ended"}.get(mode, "loose")

    def _record_crm_edit(self, item: Item, what: str) -> None:
        activity = self._activity(item)
        assert activity is not None
        now = self._crm_values(activity)
        changed = tuple(name for name in now if now[name] != item.crm.get(name))
        item.crm.update(now)
        if changed:  # saving what was already there is no edit (nothing is stamped, R8)
            self._touched(item, Side.CRM, changed, what)

    @precondition(lambda self: bool(self._crm_items()))
    @rule(pick=PICK)
    def crm_move_into_the_past(self, pick: int) -> None:
        item = self._pick(self._crm_items(), pick)

        def act() -> None:
            activity = self._activity(item)
            assert activity is not None
            start = moment(-1, 10)
            activity.start_at, activity.due_date = start, start.date()
            activity.save()
            self._record_crm_edit(item, "moved into the past in the CRM")
            item.past = self._past_state(item)

        self._guard(f"crm_move_into_the_past(item {item.key})", act)

    @precondition(lambda self: bool(self._crm_items()))
    @rule(pick=PICK, type_name=st.sampled_from(TYPES))
    def crm_change_type(self, pick: int, type_name: str) -> None:
        item = self._pick(self._crm_items(), pick)

        def act() -> None:
            activity = self._activity(item)
            assert activity is not None
            if activity.type.name == type_name:
                return
            activity.type = self.types[type_name]
            activity.save()
            item.type_name = type_name
            self._touched(item, Side.CRM, (), f"type changed to {type_name} in the CRM")

        self._guard(f"crm_change_type(item {item.key}, {type_name})", act)

    @precondition(lambda self: bool([i for i in self._crm_items() if i.series is None]))
    @rule(pick=PICK)
    def crm_reassign(self, pick: int) -> None:
        item = self._pick([i for i in self._crm_items() if i.series is None], pick)

        def act() -> None:
            activity = self._activity(item)
            assert activity is not None
            new_key = "colleague" if item.owner_key == "owner" else "owner"
            linked = self._linked(item)
            activity.owner = self._user(new_key)
            activity.save()
            # R13: the old owner's event goes; the new owner's sync takes the activity over as its own.
            if item.event_id is not None and not item.cal_gone:
                item.old_events.append((item.event_owner, item.event_id, linked))
            if item.cal_gone and item.expect_gone.get(Side.CRM) is True:
                # R1, R13: its event deleted in the old owner's calendar before any run, the activity
                # is now the new owner's: the old owner's sync no longer touches it; it syncs anew.
                item.expect_gone[Side.CRM] = False
            # Given back before the sync ran: keeping its event there is as right as making a new one.
            item.old_events = [(k, e, None if k == new_key else go) for k, e, go in item.old_events]
            item.event_id, item.cal_gone, item.event_owner = None, False, new_key
            item.owner_key, item.origin, item.reassigned = new_key, Side.CRM, True
            item.cal, item.agreed = {}, {}
            self._touched(item, Side.CRM, (), f"reassigned to the {new_key}")

        self._guard(f"crm_reassign(item {item.key})", act)

    @precondition(lambda self: bool(self._crm_items()))
    @rule(pick=PICK)
    def crm_delete(self, pick: int) -> None:
        item = self._pick(self._crm_items(), pick)

        def act() -> None:
            activity = self._activity(item)
            assert activity is not None
            linked = self._linked(item)
            mode = self._mode(item) if linked else "none"
            activity.delete()
            item.crm_gone = True
            item.note("deleted in the CRM")
            if item.series is not None:
                item.expect_gone[Side.CAL] = False  # R14: a CRM action never deletes a series
            elif linked and mode == "sync" and item.epoch == self.epoch:
                item.expect_gone[Side.CAL] = True  # R3
            elif linked and mode == "frozen" and not item.past:
                item.expect_gone[Side.CAL] = False  # R6: a deselected type's event stays
            else:
                item.expect_gone[Side.CAL] = None
            item.epoch = self.epoch

        self._guard(f"crm_delete(item {item.key})", act)

    @precondition(
        lambda self: any(
            i.trashed and i.activity_id and ActivityTrash.objects.filter(activity_id=i.activity_id).exists()
            for i in self.items
        )
    )
    @rule(pick=PICK)
    def crm_restore_from_trash(self, pick: int) -> None:
        candidates = [
            i
            for i in self.items
            if i.trashed
            and i.activity_id
            and ActivityTrash.objects.filter(activity_id=i.activity_id, restored_at__isnull=True).exists()
        ]
        if not candidates:
            return
        old = self._pick(candidates, pick)

        def act() -> None:
            assert old.activity_id is not None
            entry = ActivityTrash.objects.filter(
                activity_id=old.activity_id, restored_at__isnull=True
            ).first()
            assert entry is not None
            restored = restore(entry)
            # The restored activity is a new CRM item: it goes to the calendar again as a new event.
            item = self._new_item(
                Side.CRM, "owner" if restored.owner_id == self.owner_user.pk else "colleague"
            )
            item.activity_id = restored.pk
            item.type_name = restored.type.name
            old.activity_id = None
            item.crm = self._crm_values(Activity.objects.get(pk=restored.pk))
            self._touched(item, Side.CRM, PLAIN_FIELDS, f"restored from the trash (was item {old.key})")
            if item.crm["private"] and item.origin is Side.CRM:
                item.excused = True  # a private calendar copy restored: its O6 fate is open (O10)

        self._guard(f"crm_restore_from_trash(item {old.key})", act)

    # ----------------------------------------------------------------------- calendar side

    def _create_event(self, seed: int, days: int, hour: int, minutes: int, *, private: bool) -> Item:
        item = self._new_item(Side.CAL)
        start = moment(days, hour)
        control = self.setups["owner"].control
        item.event_id = control.create_event(
            f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key}",
            start,
            start + dt.timedelta(minutes=minutes),
            location=LOCATIONS[seed % len(LOCATIONS)],
            description=NOTES[(seed // 4) % len(NOTES)],
            attendees=tuple(attendees_of(seed)),
            private=private,
        )
        event = control.event(item.event_id)
        assert event is not None
        item.cal = self._cal_values(event, "owner")
        self._touched(item, Side.CAL, PLAIN_FIELDS, "created in the calendar")
        item.private_rule = self._private_events() if private else None
        return item

    def _private_events(self) -> str:
        preferences = self._preferences("owner")
        return str(preferences.private_events) if preferences is not None else PrivateEvents.ONLY_ME

    @rule(
        seed=SEED,
        days=st.integers(1, 9),
        hour=st.integers(8, 17),
        minutes=st.sampled_from(DURATIONS),
        private=st.booleans(),
    )
    def cal_create(self, seed: int, days: int, hour: int, minutes: int, private: bool) -> None:
        self._guard(
            f"cal_create(seed={seed}, days={days}, hour={hour}, minutes={minutes}, private={private})",
            lambda: self._create_event(seed, days, hour, minutes, private=private),
        )

    cal_create_more = cal_create

    @precondition(lambda self: bool(self._cal_items()))
    @rule(pick=PICK, name=st.sampled_from(CAL_FIELDS), seed=SEED)
    def cal_edit(self, pick: int, name: str, seed: int) -> None:
        item = self._pick(self._cal_items(), pick)

        def act() -> None:
            control = self.setups["owner"].control
            assert item.event_id is not None
            event = control.event(item.event_id)
            assert event is not None
            assert event.start is not None
            assert event.end is not None
            length = event.end - event.start
            if name == "subject":
                control.update_event(item.event_id, subject=f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key}")
            elif name == "time":
                start = moment(1 + seed % 9, 8 + (seed // 9) % 9)
                control.update_event(item.event_id, start=start, end=start + length)
            elif name == "duration":
                start = event.start.astimezone(BERLIN)
                minutes = DURATIONS[seed % len(DURATIONS)]
                control.update_event(item.event_id, start=start, end=start + dt.timedelta(minutes=minutes))
            elif name == "location":
                control.update_event(item.event_id, location=LOCATIONS[seed % len(LOCATIONS)])
            elif name == "description":
                control.update_event(item.event_id, description=NOTES[seed % len(NOTES)])
            elif name == "attendees":
                control.update_event(item.event_id, attendees=attendees_of(seed))
            self._record_cal_edit(item, f"cal_edit({name}, seed={seed})")

        self._guard(f"cal_edit(item {item.key}, {name}, seed={seed})", act)

    def _record_cal_edit(self, item: Item, what: str) -> None:
        event = self._event(item)
        assert event is not None
        now = self._cal_values(event, item.event_owner)
        changed = tuple(name for name in now if now[name] != item.cal.get(name))
        item.cal.update(now)
        if changed:
            self._touched(item, Side.CAL, changed, what)
            if self._leaves_as_private(item):
                # O6 "don't sync", O10: the run that sees this change of a private event takes
                # its activity out of the CRM (R15), whenever it became private.
                item.expect_gone[Side.CRM] = True
                item.may_leave_crm = True
            elif not item.cal_gone and item.expect_gone.get(Side.CRM) is True:
                item.expect_gone[Side.CRM] = None  # public or past again before any run saw it

    @precondition(lambda self: bool(self._cal_items()))
    @rule(pick=PICK)
    def cal_move_into_the_past(self, pick: int) -> None:
        item = self._pick(self._cal_items(), pick)

        def act() -> None:
            assert item.event_id is not None
            start = moment(-1, 10)
            self.setups["owner"].control.update_event(
                item.event_id, start=start, end=start + dt.timedelta(minutes=30)
            )
            self._record_cal_edit(item, "moved into the past in the calendar")
            item.past = self._past_state(item)

        self._guard(f"cal_move_into_the_past(item {item.key})", act)

    @precondition(lambda self: bool(self._cal_items()))
    @rule(pick=PICK, private=st.booleans())
    def cal_set_private(self, pick: int, private: bool) -> None:
        item = self._pick(self._cal_items(), pick)

        def act() -> None:
            assert item.event_id is not None
            event = self._event(item)
            assert event is not None
            if event.private == private:
                return
            self.setups["owner"].control.set_private(item.event_id, private)
            # R15: under "don't sync" it leaves the CRM (to the trash) and stops syncing, once a
            # two-way run sees it (``_record_cal_edit`` says when that must be the next run).
            item.private_rule = self._private_events() if private else None
            if private and item.origin is Side.CAL and item.private_rule == PrivateEvents.SKIP:
                item.may_leave_crm = True
            self._record_cal_edit(item, f"made {'private' if private else 'public'} in the calendar")

        self._guard(f"cal_set_private(item {item.key}, {private})", act)

    @precondition(lambda self: bool(self._cal_items()))
    @rule(pick=PICK)
    def cal_delete(self, pick: int) -> None:
        item = self._pick(self._cal_items(), pick)

        def act() -> None:
            assert item.event_id is not None
            linked = self._linked(item)
            mode = self._mode(item) if linked else "none"
            self.setups["owner"].control.delete_event(item.event_id)
            item.cal_gone = True
            item.note("deleted in the calendar")
            item.may_leave_crm = linked
            if not linked and self._linked_in_stopped_account(item):
                # C6: the account that takes the stopped one's place takes its link over, and
                # with it this deletion: judged by the mode of the run that sees it.
                item.may_leave_crm = True
                item.expect_gone[Side.CRM] = None
            elif not linked or item.past:
                item.expect_gone[Side.CRM] = False if not linked else None
            elif mode == "frozen":
                item.expect_gone[Side.CRM] = False  # R6: a deselected type's activity stays
            elif not self._two_way():
                # R4: one-way keeps CRM-made activities; a calendar-made one may go or stay.
                item.expect_gone[Side.CRM] = False if item.origin is Side.CRM else None
                # R4: the activity is sent again when changed after the deletion; an earlier CRM
                # change (sent already, or seen with the deletion in one run) may or may not be.
                item.dirty = None
            elif mode == "sync" and item.epoch == self.epoch:
                item.expect_gone[Side.CRM] = True  # R3
            else:
                item.expect_gone[Side.CRM] = None
            item.epoch = self.epoch

        self._guard(f"cal_delete(item {item.key})", act)

    @precondition(lambda self: bool(self._cal_items()))
    @rule(pick=PICK, count=st.integers(2, 4))
    def cal_make_recurring(self, pick: int, count: int) -> None:
        item = self._pick(self._cal_items(), pick)

        def act() -> None:
            assert item.event_id is not None
            event = self._event(item)
            assert event is not None
            assert event.start is not None
            self.setups["owner"].control.make_recurring(item.event_id, count)
            item.series = Series(
                first_start=event.start,
                count=count,
                fields={"subject": event.subject, "location": event.location},
            )
            item.may_leave_crm = True
            item.note(f"made a daily series of {count} in the calendar")
            item.epoch = self.epoch

        self._guard(f"cal_make_recurring(item {item.key}, {count})", act)

    def _series_items(self) -> list[Item]:
        return self._cal_items(series=True)

    @precondition(lambda self: bool(self._series_items()))
    @rule(pick=PICK, day=st.integers(0, 3), name=st.sampled_from(("subject", "location")), seed=SEED)
    def cal_edit_occurrence(self, pick: int, day: int, name: str, seed: int) -> None:
        item = self._pick(self._series_items(), pick)

        def act() -> None:
            series = item.series
            assert series is not None
            assert item.event_id is not None
            if day >= series.count or day in series.cancelled:
                return
            value = (
                f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key}.{day}"
                if name == "subject"
                else LOCATIONS[seed % len(LOCATIONS)]
            )
            occurrence = series.first_start + dt.timedelta(days=day)
            self.setups["owner"].control.update_instance(item.event_id, occurrence, **{name: value})
            # Google keeps an edited instance as an exception of its own, a full copy that later
            # series edits do not reach (as the emulator does); Graph / EWS: see cal_edit_series.
            kept = dict(series.expected(day)) if self.provider == "google" else {}
            series.overrides.setdefault(day, kept)[name] = value
            item.note(f"occurrence {day}: {name} changed in the calendar")

        self._guard(f"cal_edit_occurrence(item {item.key}, day {day}, {name}, seed={seed})", act)

    @precondition(lambda self: bool(self._series_items()))
    @rule(pick=PICK, day=st.integers(0, 3))
    def cal_cancel_occurrence(self, pick: int, day: int) -> None:
        item = self._pick(self._series_items(), pick)

        def act() -> None:
            series = item.series
            assert series is not None
            assert item.event_id is not None
            if day >= series.count or day in series.cancelled:
                return
            if len(series.cancelled) + 1 >= series.count:
                return  # keep one: a series without occurrences is another story
            occurrence = series.first_start + dt.timedelta(days=day)
            self.setups["owner"].control.cancel_instance(item.event_id, occurrence)
            series.cancelled.add(day)
            item.note(f"occurrence {day} cancelled in the calendar")

        self._guard(f"cal_cancel_occurrence(item {item.key}, day {day})", act)

    @precondition(lambda self: bool(self._series_items()))
    @rule(pick=PICK, seed=SEED)
    def cal_edit_series(self, pick: int, seed: int) -> None:
        item = self._pick(self._series_items(), pick)

        def act() -> None:
            series = item.series
            assert series is not None
            assert item.event_id is not None
            subject = f"{SUBJECTS[seed % len(SUBJECTS)]} #{item.key} (series)"
            self.setups["owner"].control.update_event(item.event_id, subject=subject)
            series.fields["subject"] = subject
            # Google: an exception keeps all its fields (cal_edit_occurrence). Graph / EWS: an
            # exception keeps the fields it overrides; the rest follows the series
            # (https://learn.microsoft.com/en-us/graph/api/resources/event, type "exception").
            item.note("series subject changed in the calendar")

        self._guard(f"cal_edit_series(item {item.key}, seed={seed})", act)

    # ----------------------------------------------------------------------- preferences

    def _update_preferences(self, **changes: Any) -> None:
        account = self._account("owner")
        if account is None:
            return
        actions.do_update_preferences(acting_user=self.owner_user, account=account, changes=changes)
        self.epoch += 1

    def _deletion_unseen(self, item: Item) -> bool:
        """Deleted in the calendar, and no run has seen it yet (the link, or a stopped account's
        that the next account takes over, still stands)."""
        return item.cal_gone and (self._linked(item) or self._linked_in_stopped_account(item))

    @precondition(lambda self: not self.stopped)
    @rule(type_name=st.sampled_from(TYPES))
    def toggle_outgoing_type(self, type_name: str) -> None:
        def act() -> None:
            preferences = self._preferences("owner")
            assert preferences is not None
            selected = {t.name: t for t in preferences.outgoing_types.all()}
            if type_name in selected:
                del selected[type_name]
            else:
                selected[type_name] = self.types[type_name]
                for item in self.items:  # O10: they resume when they next change
                    if item.type_name == type_name:
                        item.excused = True
            for item in self.items:
                if item.type_name == type_name and item.origin is Side.CRM and self._deletion_unseen(item):
                    # R3/R6: a deletion no run has seen yet is judged by the mode of the run that sees it.
                    item.expect_gone[Side.CRM] = None
            self._update_preferences(outgoing_types=list(selected.values()))

        self._guard(f"toggle_outgoing_type({type_name})", act)

    @precondition(lambda self: not self.stopped)
    @rule(type_name=st.sampled_from(("Meeting", "Call")))
    def set_incoming_type(self, type_name: str) -> None:
        self._guard(
            f"set_incoming_type({type_name})",
            lambda: self._update_preferences(incoming_type=self.types[type_name]),
        )

    @precondition(lambda self: not self.stopped)
    @rule(two_way=st.booleans())
    def set_sync_type(self, two_way: bool) -> None:
        def act() -> None:
            if self._two_way() == two_way:
                return
            for item in self.items:
                if item.origin is Side.CAL:
                    item.excused = True  # calendar-made items resume when they next change
                if self._deletion_unseen(item):
                    # R3/R4: a deletion no run has seen yet is judged by the mode of the run that sees it.
                    item.expect_gone[Side.CRM] = None
                if not item.cal_gone and item.expect_gone.get(Side.CRM) is True:
                    # R15: so is a private event's leaving (two-way only).
                    item.expect_gone[Side.CRM] = None
                if (
                    item.past == "pending"
                    and item.origin is Side.CAL
                    and item.dirty is Side.CAL
                    and not two_way
                ):
                    # R4, R15: and a calendar move into the past of a calendar-made item (one-way
                    # leaves it in the calendar).
                    item.past = "loose"
            self._update_preferences(sync_type=SyncType.TWO_WAY if two_way else SyncType.ONE_WAY)

        self._guard(f"set_sync_type(two_way={two_way})", act)

    @precondition(lambda self: not self.stopped)
    @rule(choice=st.sampled_from([c.value for c in PrivateEvents]))
    def set_private_events(self, choice: str) -> None:
        def act() -> None:
            if choice != self._private_events():
                for item in self.items:
                    self._o6_changes_for(item, choice)
            self._update_preferences(private_events=choice)

        self._guard(f"set_private_events({choice})", act)

    def _o6_changes_for(self, item: Item, choice: str) -> None:
        """O10: the new option applies to the changes of private events no run has seen yet."""
        event = self._event(item) if item.origin is Side.CAL and not item.cal_gone else None
        if event is None or not event.private or item.series is not None:
            return
        unseen = not self._privacy_seen(item)
        if unseen:
            item.private_rule = choice
        linked = self._linked(item) or self._linked_in_stopped_account(item)
        if not linked or item.crm_gone or item.trashed or self._activity(item) is None:
            return
        if choice == PrivateEvents.SKIP:
            # R15: it leaves the CRM once a run sees it change (the next run, if it saw it become private).
            item.may_leave_crm = True
            item.expect_gone[Side.CRM] = True if unseen and self._leaves_as_private(item, choice) else None
        elif item.expect_gone.get(Side.CRM) is True:
            item.expect_gone[Side.CRM] = False  # its leaving was not seen, and now never happens

    @precondition(lambda self: not self.stopped and not self.revoked)
    @rule()
    def stop_sync(self) -> None:
        def act() -> None:
            account = self._account("owner")
            assert account is not None
            actions.do_stop_sync(acting_user=self.owner_user, account=account)
            self.stopped = True
            self.epoch += 1

        self._guard("stop_sync()", act)

    @precondition(lambda self: self.stopped)
    @rule()
    def add_account_and_start(self) -> None:
        """C6: Add account -> authenticate -> review the options -> Start sync (same calendar)."""

        def act() -> None:
            setup = self.setups["owner"]
            account = actions.do_connect_account(
                acting_user=self.owner_user,
                provider=setup.provider,  # type: ignore[arg-type]
                email=setup.email,
                credentials=fresh_credentials(self.running, setup.provider, setup.email),
                calendars=[RemoteCalendarInfo(setup.calendar_id, "Primary", True, True)],
            )
            actions.do_start_sync(acting_user=self.owner_user, account=account)
            self.envs["owner"].account = account
            self.stopped = False
            self.epoch += 1
            for item in self.items:
                item.excused = True  # what changed while stopped syncs when it next changes (R2)

        self._guard("add_account_and_start()", act)

    @precondition(lambda self: not self.stopped and not self.revoked)
    @rule()
    def revoke(self) -> None:
        def act() -> None:
            self.setups["owner"].control.revoke()
            self.revoked = True

        self._guard("revoke()", act)

    @precondition(lambda self: self.revoked)
    @rule()
    def reconnect(self) -> None:
        self._guard("reconnect()", self._reconnect)

    def _reconnect(self) -> None:
        setup = self.setups["owner"]
        actions.do_connect_account(
            acting_user=self.owner_user,
            provider=setup.provider,  # type: ignore[arg-type]
            email=setup.email,
            credentials=fresh_credentials(self.running, setup.provider, setup.email),
            calendars=[RemoteCalendarInfo(setup.calendar_id, "Primary", True, True)],
        )
        self.revoked = False

    # ----------------------------------------------------------------------- provider and faults

    @rule()
    def expire_cursor(self) -> None:
        self._guard("expire_cursor()", self.setups["owner"].control.expire_cursor)

    @rule()
    def force_full_listing(self) -> None:
        self._guard(
            "force_full_listing()",
            lambda: CalendarAccount.objects.filter(user=self.owner_user).update(full_sync_at=None),
        )

    @rule(
        kind=st.sampled_from(("server_error", "rate_limit", "server_error", "rate_limit", "timeout")),
        count=st.integers(1, 3),
        method=st.sampled_from((None, "GET", "POST", "PATCH", "DELETE")),
    )
    def arm_transient_fault(self, kind: str, count: int, method: str | None) -> None:
        self._guard(
            f"arm_transient_fault({kind}, {count}, {method})",
            lambda: self.setups["owner"].control.inject_failure(kind, count, retry_after=1, method=method),
        )

    @precondition(lambda self: bool([i for i in self._cal_items() if self._linked(i)]))
    @rule(pick=PICK)
    def arm_event_refusal(self, pick: int) -> None:
        item = self._pick([i for i in self._cal_items() if self._linked(i)], pick)

        def act() -> None:
            assert item.event_id is not None
            self.setups["owner"].control.inject_event_failure(item.event_id, 403)
            self.refusals.add(item.event_id)

        self._guard(f"arm_event_refusal(item {item.key})", act)

    @rule(model=st.sampled_from(("activity", "link")))
    def arm_database_error(self, model: str) -> None:
        def act() -> None:
            self.db_fault = model

        self._guard(f"arm_database_error({model})", act)

    @rule()
    def arm_crash_after_write(self) -> None:
        def act() -> None:
            self.crash_armed[0] = True

        self._guard("arm_crash_after_write()", act)

    # ----------------------------------------------------------------------- sync

    def _factory(self, setup: SyncSetup) -> Callable[[CalendarAccount], CalendarProvider]:
        inner = setup.provider_factory
        if not self.crash_armed[0]:
            return inner
        return lambda account: CrashAfterWrite(inner(account), self.crash_armed)

    def _run(self, key: str) -> runner.RunOutcome | None:
        account = self._account(key)
        if account is None:
            return None
        factory = self._factory(self.setups[key])
        try:
            if self.db_fault is not None and key == "owner":
                with database_error_once(self.db_fault) as fired:
                    outcome = runner.run_account_sync(account.pk, provider_factory=factory)
                if fired[0]:
                    self.db_fault = None
            else:
                outcome = runner.run_account_sync(account.pk, provider_factory=factory)
        except WorkerKilled:
            # The worker died holding the lease; the lease runs out before the next run.
            CalendarAccount.objects.filter(pk=account.pk).update(
                sync_lease_until=timezone.now() - dt.timedelta(seconds=1)
            )
            return None
        return outcome

    def _after_runs(self) -> None:
        fired = self.refusals - pending_event_faults(self.setups["owner"].control)
        for item in self.items:
            if item.event_id in fired:
                item.excused = True  # R16: refused; retried with backoff or when it changes
                item.note("a write to its event was refused (403)")
                if item.crm_gone:
                    item.expect_gone[Side.CAL] = None
            if any(event_id in fired for _key, event_id, _go in item.old_events):
                # R16: deleting the old owner's event (R13) was refused: retried after its backoff.
                item.old_events = [(k, e, None if e in fired else go) for k, e, go in item.old_events]
                item.note("deleting its old event was refused (403)")
        self.refusals -= fired

    @rule(runs=st.integers(1, 2), who=st.sampled_from(("owner", "owner", "colleague", "both")))
    def sync(self, runs: int, who: str) -> None:
        def act() -> None:
            keys = ("owner", "colleague") if who == "both" else (who,)
            for _ in range(runs):
                for key in keys:
                    self._run(key)
            self._after_runs()
            self._observe(final=False)

        self._guard(f"sync(runs={runs}, {who})", act)

    @precondition(lambda self: self.transactional and self.db_fault is None)
    @rule(pair=st.sampled_from(("owner+owner", "owner+colleague")))
    def two_workers_at_once(self, pair: str) -> None:
        """Two Celery workers at the same moment (PostgreSQL): on one account (its lease lets one
        work, the other finds it busy), or on the owner's and the colleague's accounts, which
        share items given from one to the other (R13)."""

        def act() -> None:
            run_at_once(self._run, pair.split("+"))
            self._after_runs()
            self._observe(final=False)

        self._guard(f"two_workers_at_once({pair})", act)

    @rule()
    def quiesce(self) -> None:
        self._guard("quiesce()", self._quiesce)

    def _quiesce(self) -> None:
        """Faults off, the user reconnects if asked to, two clean runs; then every rule must hold."""
        for setup in self.setups.values():
            setup.control.clear_faults()
        self.crash_armed[0] = False
        self.db_fault = None
        self._after_runs()
        self.refusals.clear()
        if self.revoked:
            self._reconnect()
        for key in ("owner", "colleague"):
            if not self._syncing(key):
                continue
            clean = 0
            for _attempt in range(6):
                outcome = self._run(key)
                assert outcome is not None
                if outcome.status == runner.RunStatus.OK:
                    clean += 1
                    if clean == 2:
                        break
                elif str(outcome.status) == "throttled":
                    # The provider's Retry-After (a 429 armed earlier): the user waits it out.
                    time.sleep(min((outcome.retry_after or 0) + 0.05, 3.0))
                elif outcome.status != runner.RunStatus.RETRY:
                    raise Violation(
                        "R10-clean-run-fails",
                        f"the {key}'s run with no fault armed ended {outcome.status}: {outcome.error}",
                    )
            if clean < 2:
                raise Violation("R10-clean-run-fails", f"the {key}'s runs keep asking for a retry")
        self._observe(final=True)
        for item in self.items:
            if self._syncing(item.owner_key):
                item.dirty = None


# What an example makes, deleted after it on a transactional run (cascades take links, runs,
# preferences, failures and trash entries with them).
EXAMPLE_ROWS: tuple[type[Model], ...] = (ActivityTrash, Activity, Person, CalendarAccount)


def _max_pk(model: type[Model]) -> int:
    return int(model._default_manager.aggregate(top=Max("pk"))["top"] or 0)


def bind(
    request: pytest.FixtureRequest,
    provider: str,
    owner: User,
    outcomes: Outcomes,
    *,
    transactional: bool = False,
) -> type[SyncStateMachine]:
    colleague = make_user(owner.company, "colleague.owner@acme.test", time_zone="Europe/Berlin")
    return type(
        f"SyncStateMachine_{provider}",
        (SyncStateMachine,),
        {
            "request": request,
            "provider": provider,
            "owner_user": owner,
            "colleague_user": colleague,
            "outcomes": outcomes,
            "transactional": transactional,
        },
    )


SHORT = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    # Shrinking a sequence re-runs it hundreds of times (minutes): opt in with STATE_MACHINE_SHRINK=1.
    phases=list(Phase) if os.environ.get("STATE_MACHINE_SHRINK") else [Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    verbosity=Verbosity.verbose if os.environ.get("STATE_MACHINE_VERBOSE") else Verbosity.normal,
)


def test_sync_state_machine(sync_setup: SyncSetup, owner: User, request: pytest.FixtureRequest) -> None:
    """R1-R16 under random sequences, a fixed budget per provider (CI)."""
    machine = bind(request, sync_setup.provider, owner, Outcomes(raise_violations=True))
    run_state_machine_as_test(machine, settings=SHORT)


TWO_WORKER_EXAMPLES = int(os.environ.get("STATE_MACHINE_TWO_WORKER_EXAMPLES", "15"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two workers at once need PostgreSQL")
def test_sync_state_machine_two_workers_at_once(
    sync_setup: SyncSetup, owner: User, request: pytest.FixtureRequest
) -> None:
    """The same machine on committed data, where two workers can also run at the same moment."""
    machine = bind(request, sync_setup.provider, owner, Outcomes(raise_violations=True), transactional=True)
    run_state_machine_as_test(machine, settings=settings(SHORT, max_examples=TWO_WORKER_EXAMPLES))


FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
MAX_FUZZ_RESTARTS = 20


@pytest.mark.skipif(
    FUZZ_EXAMPLES <= 0, reason="the long run: make fuzz (FUZZ_EXAMPLES sequences per provider)"
)
def test_sync_state_machine_fuzz(sync_setup: SyncSetup, owner: User, request: pytest.FixtureRequest) -> None:
    """``make fuzz``: FUZZ_EXAMPLES random sequences per provider; counts what converged and what broke."""
    outcomes = Outcomes(raise_violations=False)
    long_run = settings(
        SHORT,
        max_examples=FUZZ_EXAMPLES,
        derandomize=os.environ.get("FUZZ_SEED") is None,
        stateful_step_count=int(os.environ.get("FUZZ_STEPS", str(STEPS))),
    )
    machine = bind(request, sync_setup.provider, owner, outcomes)
    started = time.monotonic()
    try:
        # Preconditions read the database and the emulator (time-dependent, e.g. what is past), so
        # Hypothesis may find a replayed prefix drawing differently and stop the run
        # (FlakyStrategyDefinition): go on with fresh sequences until the budget is spent.
        for _restart in range(MAX_FUZZ_RESTARTS):
            if outcomes.ran >= FUZZ_EXAMPLES:
                break
            try:
                run_state_machine_as_test(
                    machine, settings=settings(long_run, max_examples=FUZZ_EXAMPLES - outcomes.ran)
                )
            except (FlakyStrategyDefinition, Flaky) as flaky:
                outcomes.restarts += 1
                outcomes.first_messages.setdefault("restart", f"{type(flaky).__name__}: {flaky}"[:500])
            long_run = settings(long_run, derandomize=False)  # what follows: fresh sequences
    finally:
        outcomes.seconds = time.monotonic() - started
        report = os.environ.get("FUZZ_REPORT")
        if report:
            path = Path(report)
            data = json.loads(path.read_text()) if path.exists() else {}
            data[str(sync_setup.provider)] = outcomes.as_dict()
            path.write_text(json.dumps(data, indent=2))
    assert outcomes.ran > 0
