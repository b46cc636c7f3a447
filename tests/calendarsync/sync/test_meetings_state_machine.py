"""M1-M3, O11 under random sequences: one meeting seen through two accounts stays one activity.

Alice organizes meetings (in the CRM or in her calendar app) and invites her colleague Bob, who
syncs his own calendar on the same provider. Bob answers, edits or deletes his copy; Alice edits,
uninvites, re-invites and deletes; faults strike both syncs (server errors, throttling, a worker
killed between the provider's write and our commit); on PostgreSQL both syncs also run at the
same moment. After every quiescent point (faults off, two clean rounds) the rules must hold:

- M1: each meeting is at most one activity of the company; while the organizer's event exists it
  is exactly one, owned by Alice, holding what her event holds (the organizer's copy rules);
- M2: Bob attends (linked as a colleague's copy, listed among the attending users) exactly while
  his copy is in his calendar and he has not declined; his edits change nothing;
- O11: Bob's mail about a meeting alternates invitation and cancellation, whatever failed and was
  retried: nothing is ever mailed twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from django.db import connection, transaction
from django.db.models import Max, Model
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import User
from activities.models import Activity, ActivityType
from calendarsync.models import ActivityTrash, CalendarAccount, EventLink, LinkRole, LinkState, Meeting
from calendarsync.providers.base import DECLINED, RemoteEvent
from calendarsync.sync import runner
from tests.calendarsync.sync.conftest import SyncEnv, SyncSetup
from tests.calendarsync.sync.state_machine_support import (
    CrashAfterWrite,
    WorkerKilled,
    colleague_setup,
    moment,
    owner_setup,
    reset_emulator,
    run_at_once,
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("MEETING_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("MEETING_MACHINE_STEPS", "20"))
OUTSIDER = "buyer@partner.test"
SUBJECTS = ("Pricing", "Kick-off", "Renewal", "Roadmap")
ROOMS = ("Room 1", "Room 2", "Online", "")
ANSWERS = ("accepted", "tentative", DECLINED)
ROWS: tuple[type[Model], ...] = (ActivityTrash, Activity, CalendarAccount, Meeting)


@dataclass
class Invite:
    """One meeting Alice organizes, as the model knows it."""

    key: int
    origin: str  # "crm" or "calendar"
    activity_id: int | None = None  # the CRM-made activity
    event_id: str | None = None  # Alice's event, once known
    uid: str | None = None
    bob_invited: bool = True
    gone: bool = False  # Alice deleted it (CRM or calendar)


class MeetingMachine(RuleBasedStateMachine):
    request: ClassVar[pytest.FixtureRequest]
    provider: ClassVar[str]
    alice_user: ClassVar[User]
    bob_user: ClassVar[User]
    transactional: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._baseline = {model: _max_pk(model) for model in ROWS} if self.transactional else {}
        if not self.transactional:
            self._atomic.__enter__()
        running = reset_emulator(self.request, self.provider)
        alice = owner_setup(self.request, self.provider)
        bob = colleague_setup(running, alice)
        self.setups: dict[str, SyncSetup] = {"alice": alice, "bob": bob}
        self.envs = {"alice": SyncEnv(alice, self.alice_user), "bob": SyncEnv(bob, self.bob_user)}
        company = self.alice_user.company
        self.meeting_type = ActivityType.objects.get(company=company, name="Meeting")
        self.invites: list[Invite] = []
        self.crash_armed = [False]
        self.steps: list[str] = []

    def teardown(self) -> None:
        try:
            self._quiesce()
        finally:
            for setup in self.setups.values():
                setup.control.clear_faults()
            if self.transactional:
                for model, baseline in self._baseline.items():
                    model._default_manager.filter(pk__gt=baseline).delete()
            else:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

    # ----------------------------------------------------------------------- Alice

    @initialize()
    def start(self) -> None:
        self.steps.append("start()")
        self.envs["alice"].start()
        self.envs["bob"].start()

    def _bob_mailbox(self) -> str:
        return self.setups["bob"].email

    @rule(subject=st.sampled_from(SUBJECTS), days=st.integers(1, 8), hour=st.integers(8, 17))
    def crm_meeting(self, subject: str, days: int, hour: int) -> None:
        invite = Invite(key=len(self.invites), origin="crm")
        assert self.alice_user.company is not None
        activity = Activity.objects.create(
            company=self.alice_user.company,
            owner=self.alice_user,
            type=self.meeting_type,
            subject=f"{subject} #{invite.key}",
            start_at=moment(days, hour),
            due_date=moment(days, hour).date(),
            duration=dt.timedelta(minutes=60),
            guests=[self._bob_mailbox(), OUTSIDER],
        )
        invite.activity_id = activity.pk
        self.invites.append(invite)
        self.steps.append(f"crm_meeting(#{invite.key})")

    @rule(subject=st.sampled_from(SUBJECTS), days=st.integers(1, 8), hour=st.integers(8, 17))
    def calendar_meeting(self, subject: str, days: int, hour: int) -> None:
        invite = Invite(key=len(self.invites), origin="calendar")
        invite.event_id = self.setups["alice"].control.create_meeting(
            f"{subject} #{invite.key}",
            moment(days, hour),
            moment(days, hour) + dt.timedelta(hours=1),
            attendees=(self._bob_mailbox(), OUTSIDER),
        )
        event = self.setups["alice"].control.event(invite.event_id)
        assert event is not None
        invite.uid = event.ical_uid
        self.invites.append(invite)
        self.steps.append(f"calendar_meeting(#{invite.key})")

    def _live(self) -> list[Invite]:
        return [invite for invite in self.invites if not invite.gone]

    def _alice_activity(self, invite: Invite) -> Activity | None:
        if invite.activity_id is not None:
            return Activity.objects.filter(pk=invite.activity_id, owner=self.alice_user).first()
        if invite.event_id is None:
            return None
        link = EventLink.objects.filter(
            account__user=self.alice_user, external_id=invite.event_id, state=LinkState.ACTIVE
        ).first()
        return link.activity if link is not None and link.activity is not None else None

    def _learn(self, invite: Invite) -> None:
        """Alice's event of a CRM-made meeting, once her sync made it."""
        if invite.event_id is None and invite.activity_id is not None:
            link = EventLink.objects.filter(
                account__user=self.alice_user, activity_id=invite.activity_id, state=LinkState.ACTIVE
            ).first()
            if link is not None:
                invite.event_id = link.external_id
                invite.uid = link.ical_uid or None

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 50), room=st.sampled_from(ROOMS))
    def crm_move_room(self, pick: int, room: str) -> None:
        invite = self._pick(pick)
        activity = self._alice_activity(invite)
        self.steps.append(f"crm_move_room(#{invite.key}, {room!r})")
        if activity is not None:
            activity.location = room
            activity.save()

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 50), subject=st.sampled_from(SUBJECTS))
    def calendar_rename(self, pick: int, subject: str) -> None:
        invite = self._pick(pick)
        self._learn(invite)
        self.steps.append(f"calendar_rename(#{invite.key}, {subject!r})")
        if invite.event_id is not None and self.setups["alice"].control.event(invite.event_id) is not None:
            self.setups["alice"].control.update_event(invite.event_id, subject=f"{subject} #{invite.key}")

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 50))
    def crm_toggle_bob(self, pick: int) -> None:
        """Alice takes Bob off the guest list, or puts him back on (a new invitation)."""
        invite = self._pick(pick)
        activity = self._alice_activity(invite)
        self.steps.append(f"crm_toggle_bob(#{invite.key})")
        if activity is None:
            return
        guests = [g for g in activity.guests if g != self._bob_mailbox()]
        if not invite.bob_invited:
            guests.append(self._bob_mailbox())
        activity.guests = guests
        activity.save()
        invite.bob_invited = not invite.bob_invited

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 50), where=st.sampled_from(("crm", "calendar")))
    def alice_deletes(self, pick: int, where: str) -> None:
        invite = self._pick(pick)
        self._learn(invite)
        self.steps.append(f"alice_deletes(#{invite.key}, {where})")
        if where == "crm":
            activity = self._alice_activity(invite)
            if activity is None:
                return
            activity.delete()
        else:
            if invite.event_id is None or self.setups["alice"].control.event(invite.event_id) is None:
                return
            self.setups["alice"].control.delete_event(invite.event_id)
        invite.gone = True

    # ----------------------------------------------------------------------- Bob

    def _bob_copy(self, invite: Invite) -> RemoteEvent | None:
        self._learn(invite)
        return self.setups["bob"].control.event_by_uid(invite.uid) if invite.uid else None

    @precondition(lambda self: bool(self.invites))
    @rule(pick=st.integers(0, 50), answer=st.sampled_from(ANSWERS))
    def bob_answers(self, pick: int, answer: str) -> None:
        invite = self.invites[pick % len(self.invites)]
        copy = self._bob_copy(invite)
        self.steps.append(f"bob_answers(#{invite.key}, {answer})")
        if copy is not None:
            self.setups["bob"].control.respond(copy.external_id, answer)

    @precondition(lambda self: bool(self.invites))
    @rule(pick=st.integers(0, 50))
    def bob_edits_his_copy(self, pick: int) -> None:
        invite = self.invites[pick % len(self.invites)]
        copy = self._bob_copy(invite)
        self.steps.append(f"bob_edits_his_copy(#{invite.key})")
        if copy is None:
            return
        with contextlib.suppress(Exception):  # Google refuses shared changes on a guest's copy
            self.setups["bob"].control.update_event(copy.external_id, location="Bob's note")

    # ----------------------------------------------------------------------- faults and syncs

    @rule(kind=st.sampled_from(("server_error", "rate_limit")), count=st.integers(1, 3))
    def arm_transient_fault(self, kind: str, count: int) -> None:
        self.steps.append(f"arm_transient_fault({kind}, {count})")
        self.setups["alice"].control.inject_failure(kind, count, retry_after=0)

    @rule()
    def arm_crash_after_write(self) -> None:
        self.steps.append("arm_crash_after_write()")
        self.crash_armed[0] = True

    @rule(order=st.sampled_from(("alice", "bob", "alice,bob", "bob,alice")))
    def sync(self, order: str) -> None:
        self.steps.append(f"sync({order})")
        for key in order.split(","):
            self._run(key)

    @precondition(lambda self: self.transactional)
    @rule()
    def both_at_once(self) -> None:
        """Alice's and Bob's syncs at the same moment, each in its own worker (PostgreSQL)."""
        self.steps.append("both_at_once()")
        run_at_once(self._run, ("alice", "bob"))

    def _run(self, key: str) -> runner.RunOutcome | None:
        env = self.envs[key]
        inner = env.setup.provider_factory
        armed = self.crash_armed

        def factory(account: CalendarAccount) -> Any:
            return CrashAfterWrite(inner(account), armed) if armed[0] else inner(account)

        try:
            return runner.run_account_sync(env.account.pk, provider_factory=factory)
        except WorkerKilled:
            CalendarAccount.objects.filter(pk=env.account.pk).update(sync_lease_until=None)
            return None

    # ----------------------------------------------------------------------- the rules

    @rule()
    def quiesce(self) -> None:
        self.steps.append("quiesce()")
        self._quiesce()

    def _quiesce(self) -> None:
        for setup in self.setups.values():
            setup.control.clear_faults()
        self.crash_armed[0] = False
        for _round in range(4):
            for key in ("alice", "bob"):
                outcome = self._run(key)
                assert outcome is not None
                if str(outcome.status) == "throttled":
                    # The provider's Retry-After from an earlier 429: time passes, as it would.
                    CalendarAccount.objects.filter(pk=self.envs[key].account.pk).update(sync_not_before=None)
                    continue
                if outcome.status not in (runner.RunStatus.OK, runner.RunStatus.RETRY):
                    self._fail("R10-clean-run-fails", f"{key}'s run ended {outcome.status}: {outcome.error}")
        for invite in self.invites:
            self._learn(invite)
            self._judge(invite)
        self._judge_no_strays()

    def _fail(self, rule_id: str, message: str) -> None:
        raise AssertionError(f"{rule_id}: {message}\n  steps: {self.steps}")

    def _activities_of(self, invite: Invite) -> list[Activity]:
        """Live activities that stand for this meeting: linked to a copy of it, or made for it."""
        ids = set()
        if invite.uid:
            ids |= set(
                EventLink.objects.filter(ical_uid=invite.uid, activity__isnull=False).values_list(
                    "activity_id", flat=True
                )
            )
        if invite.activity_id is not None:
            ids.add(invite.activity_id)
        return list(Activity.objects.filter(pk__in=ids))

    def _judge(self, invite: Invite) -> None:
        alice_event = self.setups["alice"].control.event(invite.event_id) if invite.event_id else None
        bob_copy = self._bob_copy(invite)
        bob_attends = bob_copy is not None and bob_copy.my_response != DECLINED
        activities = self._activities_of(invite)
        if len(activities) > 1:
            self._fail(
                "M1-one-activity-per-meeting", f"#{invite.key}: activities {[a.pk for a in activities]}"
            )
        activity = activities[0] if activities else None
        if alice_event is not None:
            if activity is None:
                self._fail(
                    "M1-meeting-lost", f"#{invite.key}: Alice's event {invite.event_id} has no activity"
                )
            assert activity is not None
            if activity.owner_id != self.alice_user.pk:
                self._fail("M1-organizer-owns", f"#{invite.key}: owned by user {activity.owner_id}")
            if (activity.subject, activity.location) != (alice_event.subject, alice_event.location):
                self._fail(
                    "M1-organizer-copy-rules",
                    f"#{invite.key}: activity {(activity.subject, activity.location)} vs event "
                    f"{(alice_event.subject, alice_event.location)}",
                )
        elif activity is not None and not bob_attends:
            self._fail("R3-meeting-kept", f"#{invite.key}: activity {activity.pk} outlives every copy")
        if activity is not None:
            attending = set(activity.attending_users.values_list("pk", flat=True))
            bob_is_owner = activity.owner_id == self.bob_user.pk
            if bob_attends and not bob_is_owner and self.bob_user.pk not in attending:
                self._fail(
                    "M2-colleague-attends",
                    f"#{invite.key}: Bob's copy is in his calendar, he is not attending",
                )
            if not bob_attends and self.bob_user.pk in attending:
                self._fail(
                    "M2-colleague-left", f"#{invite.key}: Bob declined or lost his copy, still attending"
                )
            if bob_attends and not bob_is_owner:
                link = EventLink.objects.filter(account=self.envs["bob"].account, activity=activity).first()
                if link is None or link.role != LinkRole.ATTENDEE:
                    self._fail("M2-colleague-copy-linked", f"#{invite.key}: Bob's copy link is {link}")
        # O11: mail to Bob about this meeting alternates invitation, cancellation, invitation...
        # (a retry, a crash or a full resync that mailed again would put two in a row).
        bob = self.setups["bob"].email.lower()
        kinds = [
            kind
            for kind, recipient, uid in self.setups["alice"].control.invitations()
            if uid == invite.uid and recipient.lower() == bob and kind != "update"
        ]
        if invite.uid and (
            kinds[:1] not in ([], ["invitation"]) or any(a == b for a, b in itertools.pairwise(kinds))
        ):
            self._fail("O11-mailed-twice", f"#{invite.key}: Bob's mail for this meeting: {kinds}")

    def _judge_no_strays(self) -> None:
        known = {a.pk for invite in self.invites for a in self._activities_of(invite)}
        strays = Activity.objects.filter(company=self.alice_user.company).exclude(pk__in=known)
        if strays.exists():
            self._fail(
                "M1-stray-activity",
                f"activities no meeting accounts for: {list(strays.values_list('pk', 'subject'))}",
            )

    def _pick(self, pick: int) -> Invite:
        live = self._live()
        return live[pick % len(live)]


def _max_pk(model: type[Model]) -> int:
    return int(model._default_manager.aggregate(top=Max("pk"))["top"] or 0)


def _bind(
    request: pytest.FixtureRequest, provider: str, alice: User, *, transactional: bool
) -> type[MeetingMachine]:
    bob = make_user(alice.company, "bob.colleague@acme.test", time_zone="Europe/Berlin")
    return type(
        f"MeetingMachine_{provider}",
        (MeetingMachine,),
        {
            "request": request,
            "provider": provider,
            "alice_user": alice,
            "bob_user": bob,
            "transactional": transactional,
        },
    )


RUN = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=os.environ.get("MEETING_MACHINE_SEED") is None,
    deadline=None,
    database=None,
    print_blob=False,
    phases=list(Phase) if os.environ.get("STATE_MACHINE_SHRINK") else [Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_meetings_state_machine(sync_setup: SyncSetup, owner: User, request: pytest.FixtureRequest) -> None:
    """M1-M3, O11 under random sequences (savepoint per example)."""
    run_state_machine_as_test(_bind(request, sync_setup.provider, owner, transactional=False), settings=RUN)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two syncs at once need PostgreSQL")
def test_meetings_state_machine_two_syncs_at_once(
    sync_setup: SyncSetup, owner: User, request: pytest.FixtureRequest
) -> None:
    """The same, on committed data, where Alice's and Bob's syncs also run at the same moment."""
    run_state_machine_as_test(
        _bind(request, sync_setup.provider, owner, transactional=True),
        settings=settings(RUN, max_examples=max(EXAMPLES // 2, 4)),
    )
