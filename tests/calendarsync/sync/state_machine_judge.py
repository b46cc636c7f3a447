"""How the randomized sync test judges what it sees (SPEC R1-R16): the model's side of
``test_state_machine.py``.

``ModelJudge`` is mixed into the state machine: after every run it learns from the sync's links
which activity and which event belong together, and checks each linked pair field by field
against what the user left on each side (R10, R11); at quiescent points it also checks what must
exist, what must be gone, and that nothing exists twice (R1-R6, R13-R16).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import F
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, SyncStatus
from calendarsync.models import (
    AccountState,
    ActivityTrash,
    CalendarAccount,
    EventLink,
    LinkState,
    PrivateEvents,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import RemoteEvent
from calendarsync.sync.context import fields_of_snapshot, parse_tag
from calendarsync.sync.explain import explain
from calendarsync.sync.reasons import WORDING, Kind, reason_of
from tests.calendarsync.sync.conftest import SyncSetup
from tests.calendarsync.sync.state_machine_support import (
    BERLIN,
    PLAIN_FIELDS,
    Item,
    Side,
    Violation,
    account_of,
    attendee_merge,
    cal_side,
    crm_side,
    later_side,
)

# D1: what each stored status may say about itself (the words come from the stored code).
STATUS_KINDS = {
    SyncStatus.SYNCED: {Kind.SYNCED, Kind.READ_ONLY},
    SyncStatus.PENDING: {Kind.WAITING},
    SyncStatus.ERROR: {Kind.ERROR},
    SyncStatus.SKIPPED: {Kind.NOT_SENT, Kind.READ_ONLY, Kind.WAITING},
}


class Outcomes:
    """What each example of one provider ended with (the fuzz run's report)."""

    def __init__(self, raise_violations: bool) -> None:
        self.raise_violations = raise_violations
        self.ran = 0
        self.converged = 0
        self.restarts = 0  # fresh runs after Hypothesis found a replay drawing differently
        self.pairs_judged = 0
        self.seconds = 0.0  # linked pairs checked field by field at quiescent points (a sanity figure)
        self.violations: dict[str, int] = {}
        self.first_messages: dict[str, str] = {}

    def violated(self, violation: Violation) -> None:
        self.violations[violation.rule] = self.violations.get(violation.rule, 0) + 1
        self.first_messages.setdefault(violation.rule, str(violation)[:2000])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "converged": self.converged,
            "restarts": self.restarts,
            "pairs_judged": self.pairs_judged,
            "seconds": round(self.seconds, 1),
            "examples_per_second": round(self.ran / self.seconds, 2) if self.seconds else None,
            "violations": self.violations,
            "first_messages": self.first_messages,
        }


class ModelJudge:
    """The checks; the state machine supplies the users, setups, items and counters."""

    setups: dict[str, SyncSetup]
    users: dict[str, User]
    owner_user: ClassVar[User]
    items: list[Item]
    epoch: int
    stopped: bool
    revoked: bool
    margin: float
    steps: list[str]
    outcomes: ClassVar[Outcomes]

    # ----------------------------------------------------------------------- reading both sides

    def _user(self, key: str) -> User:
        return self.users[key]

    def _account(self, key: str) -> CalendarAccount | None:
        return account_of(self._user(key))

    def _preferences(self, key: str) -> SyncPreferences | None:
        account = self._account(key)
        return None if account is None else SyncPreferences.objects.filter(account=account).first()

    def _activity(self, item: Item) -> Activity | None:
        if item.activity_id is None:
            return None
        return Activity.objects.filter(pk=item.activity_id).select_related("type", "owner").first()

    def _event(self, item: Item) -> RemoteEvent | None:
        if item.event_id is None:
            return None
        return self.setups[item.event_owner].control.event(item.event_id)

    def _crm_values(self, activity: Activity) -> dict[str, Any]:
        key = "owner" if activity.owner_id == self.owner_user.pk else "colleague"
        return crm_side(activity, self.setups[key].email, self._user(key).email)

    def _cal_values(self, event: RemoteEvent, key: str) -> dict[str, Any]:
        return cal_side(event, self.setups[key].email, self._user(key).email)

    def _type_selected(self, key: str, type_name: str) -> bool:
        preferences = self._preferences(key)
        return preferences is not None and preferences.outgoing_types.filter(name=type_name).exists()

    def _two_way(self, key: str = "owner") -> bool:
        preferences = self._preferences(key)
        return preferences is not None and preferences.sync_type == SyncType.TWO_WAY

    def _syncing(self, key: str) -> bool:
        if key == "owner" and (self.stopped or self.revoked):
            return False
        preferences = self._preferences(key)
        return preferences is not None and preferences.sync_started_at is not None

    # ----------------------------------------------------------------------- the model's judgement

    def _linked(self, item: Item) -> bool:
        return self._link_between(item) is not None

    def _link_between(self, item: Item) -> EventLink | None:
        if item.activity_id is None or item.event_id is None:
            return None
        return EventLink.objects.filter(
            activity_id=item.activity_id,
            external_id=item.event_id,
            state=LinkState.ACTIVE,
            account__stopped_at__isnull=True,
        ).first()

    def _linked_in_stopped_account(self, item: Item) -> bool:
        """Linked by an account the owner stopped: the account that takes its place takes the link
        over (C6), and with it whatever happened to the item meanwhile."""
        if item.activity_id is None or item.event_id is None:
            return False
        return EventLink.objects.filter(
            activity_id=item.activity_id,
            external_id=item.event_id,
            state=LinkState.ACTIVE,
            account__user=self._user(item.event_owner),
            account__stopped_at__isnull=False,
        ).exists()

    def _privacy_seen(self, item: Item) -> bool:
        """A run has seen the event's privacy as it is now: its link (in a running account, or in
        a stopped one whose successor takes it over) agrees on it."""
        event = self._event(item)
        if event is None or item.activity_id is None:
            return False
        link = (
            EventLink.objects.filter(
                activity_id=item.activity_id,
                external_id=item.event_id,
                state=LinkState.ACTIVE,
                account__user=self._user(item.event_owner),
            )
            .order_by(F("account__stopped_at").asc(nulls_first=True), "-updated_at")
            .first()
        )
        agreed = None if link is None else fields_of_snapshot(link.snapshot, "cal")
        return agreed is not None and agreed.get("private") == event.private

    def _leaves_as_private(self, item: Item, option: str | None = None) -> bool:
        """R15, O6, O10: the run that sees a change of this calendar-made private event does so
        under "don't sync" (``option``, else the current one): its activity leaves the CRM."""
        event = self._event(item)
        if option is None:
            preferences = self._preferences("owner")
            option = None if preferences is None else str(preferences.private_events)
        return (
            item.origin is Side.CAL
            and event is not None
            and event.private
            and event.end is not None
            and event.end > timezone.now()
            and option == PrivateEvents.SKIP
            and self._linked(item)
            and self._mode(item) == "sync"
        )

    def _mode(self, item: Item) -> str:
        """How the sync must treat a linked item now: "sync", "frozen" (R6, R15) or "may"."""
        if item.past == "ended":
            return "frozen"
        if item.excused or item.past in ("pending", "loose") or not self._syncing(item.owner_key):
            return "may"
        if item.origin is Side.CRM and not self._type_selected(item.owner_key, item.type_name):
            return "frozen"
        if item.origin is Side.CAL and not self._two_way(item.owner_key):
            return "may"  # R4: CRM edits go out, calendar edits of calendar-made items stay there
        return "sync"

    def _observe(self, *, final: bool) -> None:
        for item in self.items:
            if item.series is not None:
                self._observe_series(item, final=final)
            else:
                self._observe_item(item, final=final)
        self._check_links(final=final)
        if final:
            self._check_no_stray_copies()
            self._check_accounts()

    def _fail(self, rule_id: str, item: Item | None, message: str) -> None:
        where = "" if item is None else f"{item.label()}: "
        history = "" if item is None else f"\n  item history: {item.history}"
        raise Violation(rule_id, f"{where}{message}{history}\n  steps: {self.steps}")

    def _learn_links(self, item: Item) -> None:
        """What the sync made of the item: the event of its activity, the activity of its event."""
        running_links = EventLink.objects.filter(state=LinkState.ACTIVE, account__stopped_at__isnull=True)
        if item.activity_id is not None and not item.crm_gone:
            link = (
                running_links.filter(activity_id=item.activity_id, account__user=self._user(item.owner_key))
                .select_related("account")
                .first()
            )
            if link is not None and link.external_id != item.event_id:
                key = "owner" if link.account.user_id == self.owner_user.pk else "colleague"
                if (key, link.external_id) in {(k, e) for k, e, _ in item.old_events}:
                    # Reassigned back and forth: the sync kept (or took back) the first owner's event.
                    item.old_events = [o for o in item.old_events if o[1] != link.external_id]
                    item.event_id = None
                if item.event_id is not None and not item.cal_gone and self._event(item) is not None:
                    rule_id = "R13-old-event-kept" if item.reassigned else "R10-duplicate-event"
                    self._fail(
                        rule_id, item, f"its activity is now linked to a second event {link.external_id}"
                    )
                item.event_id, item.event_owner = link.external_id, key
                item.cal_gone = False
                self._first_link(item, Side.CAL)
        if item.event_id is not None and not item.cal_gone:
            link = running_links.filter(
                external_id=item.event_id, activity__isnull=False, account__user=self._user(item.event_owner)
            ).first()
            if link is not None and link.activity_id != item.activity_id:
                if item.activity_id is not None and not item.crm_gone and self._activity(item) is not None:
                    self._fail(
                        "R10-duplicate-activity",
                        item,
                        f"its event is now linked to a second activity {link.activity_id}",
                    )
                item.activity_id = link.activity_id
                item.crm_gone = item.trashed = False
                self._first_link(item, Side.CRM)

    def _first_link(self, item: Item, made: Side) -> None:
        """The sync made the ``made`` side's copy: take it as it is, agreed where it matches."""
        activity, event = self._activity(item), self._event(item)
        if activity is None or event is None:
            return
        crm, cal = self._crm_values(activity), self._cal_values(event, item.event_owner)
        item.note(f"linked: activity {item.activity_id} <-> event {item.event_id}")
        if made is Side.CRM:
            item.crm = dict(crm)
            item.agreed = dict(crm)  # the copy; the calendar's newer edits must still win
            if item.imported_type is None and item.origin is Side.CAL:
                item.imported_type = activity.type.name
                item.type_name = activity.type.name
            if item.origin is Side.CAL and event.private:
                # O6, O10: a private event comes in under the option of the run that imports it.
                preferences = self._preferences("owner")
                item.private_rule = None if preferences is None else str(preferences.private_events)
            self._check_import_visibility(item, activity, event)
        else:
            item.cal = dict(cal)
            item.agreed = dict(cal)

    def _check_import_visibility(self, item: Item, activity: Activity, event: RemoteEvent) -> None:
        """O5 / O6 at import: a private event becomes what O6 says; the model checks only unambiguous cases."""
        if item.epoch != self.epoch or item.excused:
            return
        preferences = self._preferences("owner")
        if preferences is None or preferences.sync_type != SyncType.TWO_WAY or item.origin is not Side.CAL:
            return
        if event.private:
            if preferences.private_events == PrivateEvents.SKIP:
                self._fail(
                    "O6-skipped-private-event-imported", item, "a private event came in under O6 'don't sync'"
                )
            expected = preferences.private_events == PrivateEvents.ONLY_ME
            if activity.is_private != expected:
                self._fail(
                    "O6-private-event-visibility", item, f"imported with visibility {activity.visibility}"
                )

    def _observe_item(self, item: Item, *, final: bool) -> None:
        self._learn_links(item)
        activity, event = self._activity(item), self._event(item)
        if item.activity_id is not None and activity is None and not item.crm_gone and not item.trashed:
            if not item.may_leave_crm or item.expect_gone.get(Side.CRM) is False:
                self._fail(
                    "R10-activity-lost", item, "the sync removed the activity, and no rule says it may"
                )
            if not ActivityTrash.objects.filter(activity_id=item.activity_id).exists():
                self._fail(
                    "R3-removed-without-trash", item, "the activity left the CRM without a copy in the trash"
                )
            item.trashed = True
            item.note("moved to the trash by the sync")
        if item.event_id is not None and event is None and not item.cal_gone:
            may_go = item.crm_gone or item.reassigned or item.series is not None
            if not may_go or item.expect_gone.get(Side.CAL) is False:
                rule_id = "R6-deselected-event-deleted" if item.crm_gone else "R10-event-lost"
                self._fail(rule_id, item, "the sync deleted the event, and no rule says it may")
            item.cal_gone = True
            item.note("deleted in the calendar by the sync")
        if activity is not None:
            self._check_explained(item, activity)
        if activity is not None and event is not None and self._linked(item):
            self._judge_fields(item, activity, event, final=final)
        else:
            self._check_untouched(item, activity, event)
        if final:
            self._check_final(item, activity, event)

    def _check_explained(self, item: Item, activity: Activity) -> None:
        """D1: a status the sync recorded carries a known code whose words agree with it."""
        if not activity.sync_status:
            return
        reason = reason_of(activity.sync_code)
        if reason is None:
            self._fail(
                "D1-unknown-code", item, f"status {activity.sync_status} with code {activity.sync_code!r}"
            )
            return
        if WORDING[reason].kind not in STATUS_KINDS[SyncStatus(activity.sync_status)]:
            self._fail("D1-status-and-words-disagree", item, f"status {activity.sync_status}, code {reason}")
        account = activity.calendar_account
        preferences = SyncPreferences.objects.filter(account=account).first() if account is not None else None
        if explain(activity, account, preferences, None, timezone.now()) is None:
            self._fail("D1-unexplained", item, "the owner's own activity has no explanation")

    def _check_untouched(self, item: Item, activity: Activity | None, event: RemoteEvent | None) -> None:
        """A side the sync does not link keeps exactly what the user left there."""
        if activity is not None and item.crm:
            now = self._crm_values(activity)
            changed = [n for n in PLAIN_FIELDS if n in item.crm and now[n] != item.crm[n]]
            if changed:
                self._fail(
                    "R10-unlinked-activity-changed",
                    item,
                    f"fields {changed} changed with no link: {[(now[n], item.crm[n]) for n in changed]}",
                )
        if event is not None and item.cal:
            now = self._cal_values(event, item.event_owner)
            changed = [n for n in PLAIN_FIELDS if n in item.cal and now[n] != item.cal[n]]
            if changed:
                self._fail(
                    "R10-unlinked-event-changed",
                    item,
                    f"fields {changed} changed with no link: {[(now[n], item.cal[n]) for n in changed]}",
                )

    def _judge_fields(self, item: Item, activity: Activity, event: RemoteEvent, *, final: bool) -> None:
        crm_now = self._crm_values(activity)
        cal_now = self._cal_values(event, item.event_owner)
        mode = self._mode(item)
        if final:
            self.outcomes.pairs_judged += 1
        names = PLAIN_FIELDS + (("private",) if item.origin is Side.CRM else ())
        if item.past == "pending" and final:
            deselected = item.origin is Side.CRM and not self._type_selected(item.owner_key, item.type_name)
            # R6: a type deselected before the sync saw the move stops syncing: the move stays one-sided.
            if crm_now["time"] != cal_now["time"] and not deselected:
                self._fail(
                    "R15-past-move-not-mirrored",
                    item,
                    f"moved into the past on one side: CRM {crm_now['time']}, calendar {cal_now['time']}",
                )
            item.past = "ended"
            item.crm, item.cal = dict(crm_now), dict(cal_now)
            return
        for name in names:
            a_crm, a_cal = crm_now[name], cal_now[name]
            m_crm, m_cal = item.crm.get(name, a_crm), item.cal.get(name, a_cal)
            if mode == "frozen":
                if a_crm != m_crm or a_cal != m_cal:
                    rule_id = "R15-ended-item-synced" if item.past else "R6-deselected-item-synced"
                    self._fail(
                        rule_id,
                        item,
                        f"{name} changed though it no longer syncs: CRM {a_crm!r}, calendar {a_cal!r}",
                    )
                continue
            self._judge_field(item, name, a_crm, a_cal, final=final and mode == "sync")
        if item.origin is Side.CAL and final and mode == "sync":
            self._judge_private(item, activity, event)

    def _expected(self, item: Item, name: str) -> tuple[Any, str] | None:
        """What both sides must show for ``name`` (R10, R11), and the rule that says so; None: either edit."""
        edited_crm, edited_cal = item.edited(Side.CRM, name), item.edited(Side.CAL, name)
        if not edited_crm and not edited_cal:
            return (item.agreed.get(name, item.crm.get(name)), "R10-value-from-nowhere")
        if edited_crm and not edited_cal:
            return (item.crm[name], "R10-lost-crm-edit")
        if edited_cal and not edited_crm:
            return (item.cal[name], "R10-lost-calendar-edit")
        if name == "attendees":
            merged = attendee_merge(item.agreed.get(name, []), item.crm[name], item.cal[name])
            return (merged, "R11-attendee-set-merge")
        later = later_side(item, name, self.margin)
        if later is None:
            return None
        return (item.crm[name] if later is Side.CRM else item.cal[name], "R11-later-edit-of-the-field-wins")

    def _judge_field(self, item: Item, name: str, a_crm: Any, a_cal: Any, *, final: bool) -> None:
        m_crm, m_cal = item.crm.get(name, a_crm), item.cal.get(name, a_cal)
        expected = self._expected(item, name)
        candidates = [m_crm, m_cal] if expected is None else [expected[0]]
        if a_crm == a_cal:
            if a_crm not in candidates and not (a_crm == m_crm == m_cal):
                rule_id = "R11-conflict-value-from-nowhere" if expected is None else expected[1]
                self._fail(
                    rule_id,
                    item,
                    f"{name}: both sides show {a_crm!r}; expected {candidates!r} "
                    f"(CRM edit {m_crm!r}, calendar edit {m_cal!r}, agreed {item.agreed.get(name)!r})",
                )
            item.crm[name] = item.cal[name] = item.agreed[name] = a_crm
            return
        if final:
            self._fail("R3-linked-sides-disagree", item, f"{name}: CRM {a_crm!r}, calendar {a_cal!r}")
        if a_crm != m_crm and a_crm not in [*candidates, m_cal]:
            self._fail("R10-crm-value-from-nowhere", item, f"{name}: CRM shows {a_crm!r}")
        if a_cal != m_cal and a_cal not in [*candidates, m_crm]:
            self._fail("R10-calendar-value-from-nowhere", item, f"{name}: calendar shows {a_cal!r}")
        item.crm[name], item.cal[name] = a_crm, a_cal

    def _judge_private(self, item: Item, activity: Activity, event: RemoteEvent) -> None:
        """O6 for a calendar-made item made private in the calendar, under the option of the run
        that saw it become private (O10; ``private_rule``)."""
        if item.private_rule in (None, PrivateEvents.SKIP) or item.epoch != self.epoch:
            return
        expected = item.private_rule == PrivateEvents.ONLY_ME
        if event.private and activity.is_private != expected:
            self._fail(
                "O6-private-event-visibility",
                item,
                f"made private under O6 {item.private_rule!r}: activity visibility {activity.visibility}",
            )

    def _check_final(self, item: Item, activity: Activity | None, event: RemoteEvent | None) -> None:
        """After a quiescent point: what must exist exists, what must be gone is gone (R2-R6, R13, R15)."""
        # C6: a deletion made before the user stopped sync cannot travel while it stays stopped
        # (no run, no credentials); it is owed again once sync is started.
        propagating = self._syncing(item.event_owner)
        if (
            item.expect_gone.get(Side.CAL) is True
            and event is not None
            and item.series is None
            and propagating
        ):
            rule_id = "R13-old-event-kept" if item.reassigned else "R3-crm-deletion-not-propagated"
            self._fail(rule_id, item, "its event is still in the calendar")
        if item.expect_gone.get(Side.CRM) is True and activity is not None and propagating:
            rule_id = "R3-calendar-deletion-not-propagated" if item.cal_gone else "R15-private-event-kept"
            self._fail(rule_id, item, "its activity is still in the CRM")
        for key, event_id, must_go in item.old_events:
            # C6: as above, an old owner's stopped (or revoked) sync owes the removal until it starts again.
            if must_go and self._syncing(key) and self.setups[key].control.event(event_id) is not None:
                self._fail(
                    "R13-old-event-kept",
                    item,
                    f"the {key}'s event {event_id} is still there after the reassignment",
                )
        if item.imported_type is not None and activity is not None and activity.type.name != item.type_name:
            self._fail("R5-retyped", item, f"imported as {item.imported_type}, now {activity.type.name}")
        must = self._must_link(item, activity, event)
        linked = self._linked(item)
        if must is True and not linked:
            self._fail("R3-not-synced", item, "it should be on both sides by now (R3/R4/R8)")
        if must is False and linked:
            self._fail("R2-R6-synced-though-it-must-not", item, "it is linked though no rule lets it sync")
        if must is False and activity is not None and item.origin is Side.CRM and item.event_id is None:
            self._check_no_event_for(item, activity)

    def _check_no_event_for(self, item: Item, activity: Activity) -> None:
        tag_prefix = f"-a{activity.pk}"
        for key in ("owner", "colleague"):
            for event in self.setups[key].control.events():
                if event.tag and event.tag.endswith(tag_prefix):
                    self._fail(
                        "R2-R6-synced-though-it-must-not",
                        item,
                        f"an event {event.external_id} carries its tag",
                    )

    def _must_link(self, item: Item, activity: Activity | None, event: RemoteEvent | None) -> bool | None:
        """True: the sync must have linked it by now; False: it must not have; None: the rules leave room."""
        if item.excused or item.series is not None or item.epoch != self.epoch or item.past:
            return None
        now = timezone.now()
        if activity is not None and (item.event_id is None or item.cal_gone or event is None):
            # A CRM activity without an event: it goes out when it changed after the start (R2, R8).
            if not self._syncing(item.owner_key) or item.crm_gone:
                return None
            if item.prestart:
                return False
            future = activity.end_at is not None and activity.end_at > now
            eligible = future and activity.type.name in {
                t.name for t in (self._preferences(item.owner_key) or SyncPreferences()).outgoing_types.all()
            }
            if not eligible:
                return False if item.origin is Side.CRM and item.event_id is None else None
            return True if item.dirty is Side.CRM else None
        if event is not None and activity is None and item.origin is Side.CAL and item.activity_id is None:
            # A calendar event never imported: it comes in when it changed after the start (R2, R3, O6).
            if not self._syncing("owner") or item.event_owner != "owner":
                return None
            if item.prestart:
                return False
            preferences = self._preferences("owner")
            assert preferences is not None
            future = event.end is not None and event.end > now
            skipped_private = event.private and preferences.private_events == PrivateEvents.SKIP
            if preferences.sync_type != SyncType.TWO_WAY or skipped_private or not future:
                return False
            return True if item.dirty is Side.CAL else None
        return None

    def _observe_series(self, item: Item, *, final: bool) -> None:
        """R7 / R14: a series comes in as its read-only occurrences, once; the CRM never writes it."""
        series = item.series
        assert series is not None
        assert item.event_id is not None
        control = self.setups["owner"].control
        master = control.event(item.event_id)
        if master is None and not item.cal_gone:
            self._fail("R14-crm-deleted-a-series", item, "the series is gone from the calendar")
        if master is not None and (master.subject, master.location) != (
            series.fields["subject"],
            series.fields["location"],
        ):
            self._fail(
                "R14-crm-wrote-a-series",
                item,
                f"the series shows {master.subject!r} / {master.location!r}, the user set {series.fields}",
            )
        if not final or item.cal_gone or item.epoch != self.epoch or not self._syncing("owner"):
            return
        preferences = self._preferences("owner")
        if preferences is None or preferences.sync_type != SyncType.TWO_WAY:
            return
        links = list(
            EventLink.objects.filter(
                series_id=item.event_id, state=LinkState.ACTIVE, account__stopped_at__isnull=True
            ).select_related("activity")
        )
        days: dict[int, list[Activity]] = {}
        for link in links:
            if link.activity is None or link.activity.start_at is None:
                continue
            day = (
                link.activity.start_at.astimezone(BERLIN).date()
                - series.first_start.astimezone(BERLIN).date()
            ).days
            days.setdefault(day, []).append(link.activity)
        live = series.live_days(timezone.now())
        skipped = master is not None and master.private and preferences.private_events == PrivateEvents.SKIP
        if skipped:
            # O6 "don't sync" / O10: a private series' occurrences, synced after the option, never come in.
            live = []
        if sorted(days) != live or any(len(found) != 1 for found in days.values()):
            self._fail(
                "R7-R14-occurrences",
                item,
                f"occurrences in the CRM by day { ({d: [a.pk for a in found] for d, found in days.items()}) }, "
                f"expected one for each of days {live}",
            )
        for day, (occurrence,) in days.items():
            expected = series.expected(day)
            if (occurrence.subject, occurrence.location) != (expected["subject"], expected["location"]):
                self._fail(
                    "R7-occurrence-fields",
                    item,
                    f"day {day}: {occurrence.subject!r} / {occurrence.location!r}, expected {expected}",
                )
        original = self._activity(item)
        occurrence_ids = {a.pk for found in days.values() for a in found}
        if original is not None and original.pk not in occurrence_ids and not skipped:
            self._fail(
                "R14-single-event-kept-beside-its-occurrences",
                item,
                f"activity {original.pk} is still there beside the series' occurrences",
            )

    def _check_links(self, *, final: bool) -> None:
        """R1 and no duplicate link: each activity in at most one running account, its owner's."""
        seen: dict[int, EventLink] = {}
        for link in EventLink.objects.filter(
            state=LinkState.ACTIVE, account__stopped_at__isnull=True, activity__isnull=False
        ).select_related("account", "activity"):
            assert link.activity is not None
            if final and link.activity.owner_id != link.account.user_id:
                item = next((i for i in self.items if i.activity_id == link.activity_id), None)
                rule_id = (
                    "R13-old-link-kept"
                    if item is not None and item.reassigned
                    else "R1-other-owners-activity-synced"
                )
                self._fail(
                    rule_id,
                    item,
                    f"activity {link.activity_id} (owner {link.activity.owner_id}) linked in account of user {link.account.user_id}",
                )
            earlier = seen.get(link.activity_id)  # type: ignore[arg-type]
            if earlier is not None and final:
                self._fail(
                    "R10-activity-linked-twice",
                    None,
                    f"activity {link.activity_id} linked to {earlier.external_id} and {link.external_id}",
                )
            seen[link.activity_id] = link  # type: ignore[index]

    def _check_no_stray_copies(self) -> None:
        """No activity and no event the model cannot account for: a stray copy is a duplicate (R10)."""
        known_activities = {i.activity_id for i in self.items if i.activity_id is not None}
        occurrences = set(
            EventLink.objects.exclude(series_id="")
            .filter(activity__isnull=False)
            .values_list("activity_id", flat=True)
        )
        for activity in Activity.objects.filter(company=self.owner_user.company).exclude(
            pk__in=known_activities | occurrences
        ):
            self._fail(
                "R10-duplicate-activity",
                None,
                f"activity {activity.pk} {activity.subject!r} matches no item (links: "
                f"{list(EventLink.objects.filter(activity=activity).values_list('external_id', 'state'))})",
            )
        for key in ("owner", "colleague"):
            known_events = {i.event_id for i in self.items if i.event_id is not None and i.event_owner == key}
            known_events |= {event_id for i in self.items for k, event_id, _ in i.old_events if k == key}
            tags: dict[str, str] = {}
            for event in self.setups[key].control.events():
                if event.tag:
                    if event.tag in tags:
                        self._fail(
                            "R10-duplicate-event",
                            None,
                            f"two events carry the tag {event.tag}: {tags[event.tag]} and {event.external_id}",
                        )
                    tags[event.tag] = event.external_id
                tagged = parse_tag(event.tag)
                owner_id = self._user(key).pk
                if event.external_id not in known_events and tagged is not None and not self._syncing(key):
                    # C6: the one copy a run made just before a crash, in a calendar whose sync was
                    # stopped (or revoked) since: no run can take it over or remove it until the
                    # sync starts again (a second copy of the activity is caught above).
                    continue
                if (
                    event.external_id not in known_events
                    and tagged is not None
                    and Activity.objects.filter(pk=tagged[1]).exclude(owner_id=owner_id).exists()
                ):
                    self._fail(
                        "R13-R10-unrecorded-copy-kept",
                        None,
                        f"event {event.external_id} of activity {tagged[1]}, never linked, stays in the "
                        f"{key}'s calendar after a reassignment",
                    )
                if event.external_id not in known_events:
                    self._fail(
                        "R10-duplicate-event",
                        None,
                        f"event {event.external_id} {event.subject!r} (tag {event.tag}) in the {key}'s "
                        f"calendar matches no item",
                    )

    def _check_accounts(self) -> None:
        """R16: after the faults are gone no account is blocked or in error because of one item."""
        for key in ("owner", "colleague"):
            account = self._account(key)
            if account is None:
                continue
            if account.state not in (AccountState.ACTIVE,):
                self._fail(
                    "R16-account-state",
                    None,
                    f"the {key}'s account is {account.state}: {account.state_detail or account.last_sync_error}",
                )
