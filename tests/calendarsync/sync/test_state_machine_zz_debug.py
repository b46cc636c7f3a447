from __future__ import annotations

import json
import os

import pytest

from accounts.models import User
from activities.models import Activity
from calendarsync.models import ActivityTrash, CalendarAccount, EventLink
from tests.calendarsync.sync import state_machine_replay as smr

pytestmark = pytest.mark.django_db


def dump(machine) -> None:
    print("=== ACCOUNTS", list(CalendarAccount.objects.values_list("pk", "user_id", "stopped_at")))
    for a in Activity.objects.order_by("pk"):
        print(
            "ACT",
            a.pk,
            a.owner_id,
            a.subject,
            a.type.name,
            a.start_at,
            a.visibility,
            a.sync_status,
            a.sync_error,
        )
    for l in EventLink.objects.order_by("pk"):
        print(
            "LINK",
            l.pk,
            l.account_id,
            l.activity_id,
            l.external_id[-12:],
            l.state,
            l.origin,
            json.dumps(l.snapshot.get("cal", {}).get("private") if isinstance(l.snapshot, dict) else None),
        )
    for t in ActivityTrash.objects.all():
        print("TRASH", t.activity_id, t.reason)
    for key, setup in machine.setups.items():
        for e in setup.control.events():
            print("EV", key, e.external_id[-12:], e.subject, e.start, e.private)
    for i in machine.items:
        print(
            "ITEM",
            i.key,
            i.origin,
            i.activity_id,
            (i.event_id or "")[-12:],
            i.private_rule,
            i.expect_gone,
            i.may_leave_crm,
            i.epoch,
            i.past,
            i.excused,
            i.history,
        )


@pytest.mark.parametrize("sync_setup", [os.environ.get("DBG_PROVIDER", "exchange")], indirect=True)
def test_debug(sync_setup: object, owner: User, request: pytest.FixtureRequest) -> None:
    steps = json.loads(open(os.environ["DBG_STEPS"]).read())
    provider = os.environ.get("DBG_PROVIDER", "exchange")
    machine_class = smr.bind(request, provider, owner, smr.Outcomes(raise_violations=True))
    machine = type(f"Replayed_{provider}", (smr._Replayed, machine_class), {})()
    try:
        for step in steps:
            if step == "final quiesce":
                machine._quiesce()
            else:
                print("STEP", step)
                smr._call(machine, step)
                if os.environ.get("DBG_EACH"):
                    dump(machine)
    except Exception as e:
        print("FAILED", e)
    dump(machine)
    machine.failed = None
    machine.in_step = True
    machine.teardown()
