"""Replays a step list from a ``make fuzz`` report through the state machine's own rules.

``replay(request, owner, provider, steps)`` builds the machine for ``provider`` and performs each
step as written in the report (``"cal_delete(item 2)"``, ``"sync(runs=2, both)"``, ...); ``item N``
picks the item whose key is N, as the report names it. ``"final quiesce"`` is the teardown. A broken
rule raises its ``Violation``, so a regression test is the report's steps, verbatim.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from accounts.models import User
from tests.calendarsync.sync.state_machine_judge import Outcomes
from tests.calendarsync.sync.state_machine_support import Item
from tests.calendarsync.sync.test_state_machine import SyncStateMachine, bind

_STEP = re.compile(r"^(?P<name>[a-z_]+)\((?P<args>.*)\)$")

# Positional arguments, in the order the report writes them (``name=value`` ones are keywords).
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "arm_transient_fault": ("kind", "count", "method"),
    "arm_database_error": ("model",),
    "crm_change_type": ("type_name",),
    "crm_create": ("type_name",),
    "toggle_outgoing_type": ("type_name",),
    "set_incoming_type": ("type_name",),
    "set_private_events": ("choice",),
    "cal_set_private": ("private",),
    "cal_make_recurring": ("count",),
    "cal_edit": ("name",),
    "crm_edit": ("name",),
    "cal_edit_occurrence": ("name",),
}


def _value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


class _Replayed(SyncStateMachine):
    wanted: int | None = None

    def _pick(self, candidates: list[Item], pick: int) -> Item:
        if self.wanted is None:
            return super()._pick(candidates, pick)
        [item] = [i for i in candidates if i.key == self.wanted]
        return item


def _call(machine: _Replayed, step: str) -> None:
    match = _STEP.match(step)
    assert match is not None, step
    name, args = match["name"], [a.strip() for a in match["args"].split(",") if a.strip()]
    kwargs: dict[str, Any] = {}
    positional = list(_POSITIONAL.get(name, ()))
    machine.wanted = None
    for arg in args:
        if arg.startswith("item "):
            machine.wanted = int(arg.removeprefix("item "))
            kwargs["pick"] = 0
        elif arg.startswith("day "):
            kwargs["day"] = int(arg.removeprefix("day "))
        elif "=" in arg:
            key, text = arg.split("=", 1)
            kwargs[key] = _value(text)
        elif name == "crm_create" and arg in ("owner", "colleague"):
            kwargs["colleague"] = arg == "colleague"
        elif name == "sync" and arg in ("owner", "colleague", "both"):
            kwargs["who"] = arg
        else:
            kwargs[positional.pop(0)] = _value(arg)
    getattr(machine, name)(**kwargs)
    machine.wanted = None


def replay(request: pytest.FixtureRequest, owner: User, provider: str, steps: list[str]) -> None:
    machine_class = bind(request, provider, owner, Outcomes(raise_violations=True))
    machine = type(f"Replayed_{provider}", (_Replayed, machine_class), {})()
    finished = False
    try:
        for step in steps:
            if step == "final quiesce":
                finished = True
                machine.teardown()
            else:
                _call(machine, step)
    finally:
        if not finished:
            machine.teardown()
    if machine.failed is not None:  # a rule in KNOWN_OPEN is counted, not raised: fail here anyway
        raise machine.failed
