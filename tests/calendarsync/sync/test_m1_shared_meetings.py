"""M1-M3: one meeting, one activity per company, whichever colleagues' calendars hold a copy.

Alice is the ``sync_env`` owner; Bob is a colleague with his own account on the same provider
(and, for the mixed pair, on another provider). Copies reach Bob's calendar the way the provider
delivers them: Google always; Graph with the invitation it always sends; EWS with the invitation
CalSync asks for (O11 on).
"""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import User
from activities.filters import ActivityFilters, OwnerChoice, filter_activities
from activities.models import Activity
from activities.visibility import visible_activities
from calendarsync.models import EventLink, LinkRole, Meeting, Provider
from calendarsync.providers.base import DECLINED
from calendarsync.sync import push
from tests.calendarsync.sync.conftest import SYNC_SETUPS, SyncEnv, soon
from tests.calendarsync.sync.second_account import second_env
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(owner: User) -> User:
    return make_user(owner.company, "bob@acme.test", time_zone="Europe/Berlin")


@pytest.fixture
def bob_env(sync_env: SyncEnv, request: pytest.FixtureRequest, bob: User) -> SyncEnv:
    return second_env(sync_env, request, bob)


def start_both(alice: SyncEnv, bob: SyncEnv) -> None:
    alice.start()
    bob.start()
    alice.sync()
    bob.sync()


def mine(user: User) -> list[Activity]:
    """What the user sees under "me" in the list and the calendar."""
    filters = ActivityFilters(owner=OwnerChoice.ME)
    return list(
        filter_activities(visible_activities(user), filters, user=user, now=soon(0, 0), with_time=False)
    )


def meeting_activities() -> list[Activity]:
    return list(Activity.objects.filter(subject__startswith="Pricing"))


def test_m1_crm_meeting_with_a_colleague_as_guest_is_one_activity_for_both(
    sync_env: SyncEnv, bob_env: SyncEnv, bob: User
) -> None:
    start_both(sync_env, bob_env)
    activity = sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email])
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.ical_uid
    bob_env.sync()
    bob_env.sync()  # a second run changes nothing
    assert meeting_activities() == [activity]
    copy = EventLink.objects.get(account=bob_env.account)
    assert (copy.activity_id, copy.role) == (activity.pk, LinkRole.ATTENDEE)
    assert list(activity.attending_users.all()) == [bob]
    assert activity in mine(bob)
    assert activity in mine(sync_env.owner)
    assert Meeting.objects.get(ical_uid=event.ical_uid).activity_id == activity.pk
    activity.refresh_from_db()
    assert activity.owner == sync_env.owner


def test_m1_edits_on_a_colleagues_copy_are_not_applied(sync_env: SyncEnv, bob_env: SyncEnv) -> None:
    start_both(sync_env, bob_env)
    activity = sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email])
    sync_env.sync()
    bob_env.sync()
    copy = EventLink.objects.get(account=bob_env.account)
    try:
        bob_env.control.update_event(copy.external_id, location="Bob's own note")
    except Exception:  # Google refuses shared changes on a guest's copy (403)
        pytest.skip("this calendar refuses edits of a guest's copy")
    bob_env.sync()
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.location == ""
    assert meeting_activities() == [activity]


@pytest.mark.parametrize("organizer_first", [True, False], ids=["organizer-first", "colleague-first"])
def test_m1_calendar_meeting_between_colleagues_is_one_activity_owned_by_the_organizer(
    sync_env: SyncEnv, bob_env: SyncEnv, bob: User, organizer_first: bool
) -> None:
    start_both(sync_env, bob_env)
    # Bob's sync gives calendar events another type: the organizer's arrival must not retype.
    bob_env.set_preferences(incoming_type=bob_env.activity_type("Call"))
    sync_env.control.create_meeting(
        "Pricing workshop", soon(3, 14), soon(3, 15), attendees=(bob_env.setup.email, "buyer@partner.test")
    )
    first, second = (sync_env, bob_env) if organizer_first else (bob_env, sync_env)
    first.sync()
    [activity] = meeting_activities()
    kept_type = activity.type_id
    second.sync()
    first.sync()
    second.sync()
    [activity] = meeting_activities()
    assert activity.owner == sync_env.owner
    assert activity.type_id == kept_type
    assert list(activity.attending_users.all()) == [bob]
    roles = dict(EventLink.objects.filter(activity=activity).values_list("account_id", "role"))
    assert roles == {sync_env.account.pk: LinkRole.OWN, bob_env.account.pk: LinkRole.ATTENDEE}
    # The organizer's later edits reach the activity; the colleague's sync changes nothing.
    organizer_copy = EventLink.objects.get(account=sync_env.account, activity=activity)
    sync_env.control.update_event(organizer_copy.external_id, location="Room 4")
    bob_env.sync()
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.location == "Room 4"
    assert meeting_activities() == [activity]


def test_m1_organizer_outside_the_crm_first_seen_owns(sync_env: SyncEnv, bob_env: SyncEnv, bob: User) -> None:
    start_both(sync_env, bob_env)
    uid = "outside-meeting-1@partner.test"
    start, end = soon(4, 9), soon(4, 10)
    people = (sync_env.setup.email, bob_env.setup.email)
    for env in (bob_env, sync_env):
        env.control.deliver_invitation(
            uid, organizer="host@partner.test", subject="Pricing demo", start=start, end=end, attendees=people
        )
    bob_env.sync()
    sync_env.sync()
    bob_env.sync()
    [activity] = meeting_activities()
    assert activity.owner == bob
    assert list(activity.attending_users.all()) == [sync_env.owner]
    assert activity in mine(sync_env.owner)


def test_m2_a_colleague_who_declines_no_longer_attends_and_the_answer_shows(
    sync_env: SyncEnv, bob_env: SyncEnv
) -> None:
    start_both(sync_env, bob_env)
    activity = sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email])
    sync_env.sync()
    bob_env.sync()
    assert activity.attending_users.count() == 1
    copy = EventLink.objects.get(account=bob_env.account)
    bob_env.control.respond(copy.external_id, DECLINED)
    bob_env.sync()
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.attending_users.count() == 0
    assert activity.guest_responses.get(bob_env.setup.email.lower()) == DECLINED
    assert meeting_activities() == [activity]  # the meeting itself stays


def test_m2_rsvps_of_guests_show_on_the_activity(sync_env: SyncEnv, bob_env: SyncEnv) -> None:
    start_both(sync_env, bob_env)
    activity = sync_env.activity(
        subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email, "buyer@partner.test"]
    )
    sync_env.sync()
    bob_env.sync()
    copy = EventLink.objects.get(account=bob_env.account)
    bob_env.control.respond(copy.external_id, "accepted")
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.guest_responses == {
        bob_env.setup.email.lower(): "accepted",
        "buyer@partner.test": "needsAction",
    }


def test_m2_a_colleague_removed_from_the_guests_no_longer_attends(
    sync_env: SyncEnv, bob_env: SyncEnv
) -> None:
    start_both(sync_env, bob_env)
    activity = sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email])
    sync_env.sync()
    bob_env.sync()
    assert activity.attending_users.count() == 1
    activity.refresh_from_db()
    activity.guests = []
    activity.save()
    sync_env.sync()
    bob_env.sync()
    assert activity.attending_users.count() == 0
    assert not EventLink.objects.filter(account=bob_env.account).exists()
    assert meeting_activities() == [activity]


def test_m2_the_owner_declining_hands_the_meeting_to_an_attending_colleague(
    sync_env: SyncEnv, bob_env: SyncEnv, bob: User
) -> None:
    start_both(sync_env, bob_env)
    uid = "outside-meeting-2@partner.test"
    people = (sync_env.setup.email, bob_env.setup.email)
    for env in (sync_env, bob_env):
        env.control.deliver_invitation(
            uid,
            organizer="host@partner.test",
            subject="Pricing demo",
            start=soon(4, 9),
            end=soon(4, 10),
            attendees=people,
        )
    sync_env.sync()
    bob_env.sync()
    [activity] = meeting_activities()
    assert activity.owner == sync_env.owner
    alice_copy = EventLink.objects.get(account=sync_env.account, activity=activity)
    sync_env.control.respond(alice_copy.external_id, DECLINED)
    sync_env.sync()
    [activity] = meeting_activities()  # not in the trash: Bob still attends
    assert activity.owner == bob
    assert activity.attending_users.count() == 0


def test_m3_the_organizer_leaving_the_crm_hands_the_meeting_to_a_colleague(
    sync_env: SyncEnv, bob_env: SyncEnv, bob: User
) -> None:
    start_both(sync_env, bob_env)
    event_id = sync_env.control.create_meeting(
        "Pricing workshop", soon(3, 14), soon(3, 15), attendees=(bob_env.setup.email,)
    )
    sync_env.sync()
    bob_env.sync()
    [activity] = meeting_activities()
    assert activity.owner == sync_env.owner
    User.objects.filter(pk=sync_env.owner.pk).update(is_active=False)
    # The organizer still runs the meeting in their calendar: the change reaches Bob's copy.
    sync_env.control.update_event(event_id, location="Room 9")
    bob_env.sync()
    bob_env.sync()
    [activity] = meeting_activities()
    assert activity.owner == bob
    assert activity.location == "Room 9"


def test_m1_google_organizer_and_microsoft_colleague_share_one_activity(
    request: pytest.FixtureRequest, owner: User, bob: User
) -> None:
    """Mixed providers: the invitation reaches Bob's Microsoft 365 mailbox by mail (here: delivered
    by the emulator's control), with the UID of Alice's Google event."""
    alice = SyncEnv(SYNC_SETUPS[Provider.GOOGLE](request), owner)
    bob_ms = SyncEnv(SYNC_SETUPS[Provider.MICROSOFT](request), bob)
    start_both(alice, bob_ms)
    activity = alice.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_ms.setup.email])
    alice.sync()
    event = alice.event_of(activity)
    assert event is not None
    assert event.ical_uid
    bob_ms.control.deliver_invitation(
        event.ical_uid,
        organizer=alice.setup.email,
        subject="Pricing call",
        start=soon(2, 10),
        end=soon(2, 10) + dt.timedelta(minutes=30),
        attendees=(bob_ms.setup.email,),
    )
    bob_ms.sync()
    alice.sync()
    bob_ms.sync()
    assert meeting_activities() == [activity]
    assert list(activity.attending_users.all()) == [bob]


class WorkerKilled(Exception):
    """The worker dies between the provider's create and our commit."""


def test_m1_o11_a_meeting_deleted_while_its_create_was_unrecorded_is_cancelled_for_the_colleague(
    sync_env: SyncEnv, bob_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the meetings machine (exchange, M1-stray-activity): the create invited Bob, the
    worker died before recording it, Bob's sync made the meeting his, then Alice deleted it."""
    start_both(sync_env, bob_env)
    activity = sync_env.activity(subject="Pricing call", start_at=soon(2, 10), guests=[bob_env.setup.email])

    def killed(*args: object, **kwargs: object) -> None:
        raise WorkerKilled

    monkeypatch.setattr(push, "record_created", killed)
    sync_env.sync(expect="failed")
    monkeypatch.undo()
    bob_env.sync()
    assert [a.owner for a in meeting_activities()] == [sync_env.owner, bob_env.owner]
    activity.delete()
    sync_env.sync()
    bob_env.sync()
    assert meeting_activities() == []
    assert sync_env.control.events() == []
    assert [kind for kind, _to, _uid in sync_env.control.invitations()] == ["invitation", "cancellation"]


def test_m1_one_activity_per_meeting_and_company_never_across_companies(
    sync_env: SyncEnv, request: pytest.FixtureRequest, other_company: object
) -> None:
    """Two companies' users invited to one outside meeting: each company gets its own activity."""
    stranger = make_user(other_company, "eve@globex.test", time_zone="Europe/Berlin")  # type: ignore[arg-type]
    eve = second_env(sync_env, request, stranger)
    start_both(sync_env, eve)
    uid = "outside-meeting-3@partner.test"
    for env in (sync_env, eve):
        env.control.deliver_invitation(
            uid,
            organizer="host@partner.test",
            subject="Pricing summit",
            start=soon(5, 9),
            end=soon(5, 10),
            attendees=(sync_env.setup.email, eve.setup.email),
        )
    sync_env.sync()
    eve.sync()
    sync_env.sync()
    activities = meeting_activities()
    assert {a.company_id for a in activities} == {sync_env.owner.company_id, stranger.company_id}
    assert len(activities) == 2
    assert all(a.attending_users.count() == 0 for a in activities)
    assert Meeting.objects.filter(ical_uid=uid).count() == 2
