# ruff: noqa: F811  (the sync fixtures are imported by name, then requested by name)
"""O7 with A5: an event's description carries only the deal and contacts its owner may view now.

A colleague's deal or person made owner-only drops out of the owner's calendar at the next push;
one that was already owner-only never reaches it.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from activities.models import Visibility
from tests.activities.conftest import make_deal, make_person
from tests.calendarsync.conftest import google_emulator, google_emulator_server  # noqa: F401
from tests.calendarsync.conftest_exchange import exchange_emulator, exchange_emulator_server  # noqa: F401
from tests.calendarsync.conftest_microsoft import microsoft_emulator, microsoft_emulator_servers  # noqa: F401
from tests.calendarsync.sync.conftest import SyncEnv, soon, sync_env, sync_setup  # noqa: F401

pytestmark = pytest.mark.django_db


def description(sync_env: SyncEnv, activity: object) -> str:
    event = sync_env.event_of(activity)  # type: ignore[arg-type]
    assert event is not None
    return event.description


def test_o7_a_colleagues_deal_made_owner_only_leaves_the_owners_calendar(
    sync_env: SyncEnv, colleague: User
) -> None:
    sync_env.start()
    sync_env.sync()
    deal = make_deal(colleague, "Hush-hush renewal")
    person = make_person(colleague, "Pat Buyer")
    person.email = "pat@buyer.test"
    person.save()
    activity = sync_env.activity(subject="Renewal call", start_at=soon(2, 10), deal=deal, person=person)
    sync_env.sync()
    assert "Deal: Hush-hush renewal" in description(sync_env, activity)
    assert "Person: Pat Buyer (pat@buyer.test)" in description(sync_env, activity)

    deal.visibility = Visibility.OWNER
    deal.save()
    person.visibility = Visibility.OWNER
    person.save()
    sync_env.sync()
    text = description(sync_env, activity)
    assert "Hush-hush" not in text
    assert "pat@buyer.test" not in text
    assert "Pat Buyer" not in text
    # A later sync writes nothing more (the block written is remembered).
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.updated == 0


def test_o7_details_the_owner_cannot_view_are_never_sent(sync_env: SyncEnv, colleague: User) -> None:
    sync_env.start()
    sync_env.sync()
    deal = make_deal(colleague, "Hush-hush renewal", visibility=Visibility.OWNER)
    own_deal = make_deal(sync_env.owner, "Initech renewal")
    hidden = sync_env.activity(subject="Hidden deal", start_at=soon(2, 10), deal=deal)
    shown = sync_env.activity(subject="Own deal", start_at=soon(2, 12), deal=own_deal)
    sync_env.sync()
    assert "Hush-hush" not in description(sync_env, hidden)
    assert "Deal: Initech renewal" in description(sync_env, shown)
