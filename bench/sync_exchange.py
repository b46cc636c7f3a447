"""``bench/sync.py``'s figures for Microsoft Exchange: exchangelib over HTTP against the EWS emulator.

Run ``.venv/bin/python bench/sync_exchange.py`` (``--accounts N`` to change the 1,000). Same
method and figures as ``bench/sync.py`` (see there), through the Exchange adapter: the emulator
runs in a process of its own, each database in a worker subprocess, and every sync goes through
``calendarsync.sync.runner.run_account_sync``.

* ``http_requests_per_no_change_sync``: EWS requests per account during a pass where nothing
  changed (goal: exactly 1, the SyncFolderItems call).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: CreateItem round trips (goal:
  <= ceil(200/50) = 4), all EWS requests (per 50 items one FindItem for the idempotency keys,
  one CreateItem and one GetItem to read the items back), the sync's time and the time of those
  bare exchangelib calls (items made beforehand), median of three; ``engine_overhead`` is their
  ratio (goal: <= 1.5).
* ``no_change_syncs_per_second``: one process syncing every account in turn (goal: >= 100).

The last line printed is a JSON object with every figure, per database. The shared scaffolding is
in ``bench/common.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root, for `bench.common`

from bench import common
from bench.common import changed_activities

PASSWORD = "bench-exchange-password"  # noqa: S105 - a fixed credential of the local emulator
EWS_PATH = "/EWS/Exchange.asmx"
BATCH_SIZE = 50
CONFIG = common.BenchConfig(
    script=Path(__file__).resolve(),
    postgres_db="calsync_bench_sync_exchange",
    temp_prefix="calsync-bench-ews-",
    batch_size=BATCH_SIZE,
    round_trip_name="CreateItem round trips",
    bare_name="bare EWS calls",
    label="Microsoft Exchange",
    provider="exchange",
)
EMULATOR_CODE = (
    "import sys\n"
    "from calendarsync.emulators.exchange import ExchangeEmulator\n"
    "from calendarsync.emulators.server import EmulatorServer\n"
    "EmulatorServer(ExchangeEmulator(), port=int(sys.argv[1])).serve_until_interrupted()\n"
)


def worker(accounts: int) -> None:
    """Inside one database's process: the Exchange emulator, Django, then every figure."""
    port = common.free_port()
    # The "401" counter is not an EWS request the sync made.
    emulator = common.Emulator(f"http://127.0.0.1:{port}", not_counted=frozenset({"401"}))
    with common.emulator_process(EMULATOR_CODE, [str(port)], emulator):
        common.setup_django()
        common.report(
            common.measure_all(
                emulator,
                accounts,
                connect=lambda company, count, prefix: connect_accounts(emulator, company, count, prefix),
                bare_push=time_bare_client_push,
                round_trip_counter="CreateItem",
            )
        )


def connect_accounts(emulator: common.Emulator, company: Any, count: int, prefix: str) -> list[int]:
    """``count`` users, each with an Exchange mailbox whose sync has started; their account ids."""
    from calendarsync.models import Provider

    def link(email: str) -> tuple[dict[str, Any], str, str]:
        emulator.post("users", {"email": email, "password": PASSWORD})
        calendar_id = emulator.get("calendar", email=email)["id"]
        credentials = {"email": email, "password": PASSWORD, "server_url": emulator.url + EWS_PATH}
        return credentials, calendar_id, "Calendar"

    return common.connect_accounts(company, count, prefix, Provider.EXCHANGE, link)


def time_bare_client_push(account_id: int) -> float:
    """The EWS calls the same push needs (sync, then per 50: find keys, create, read back), timed alone."""
    from exchangelib.restriction import Q

    from calendarsync.models import CalendarAccount
    from calendarsync.providers.exchange.client import KEY_FIELD, ExchangeClient, ExchangeLogin
    from calendarsync.providers.exchange.mapping import item_fields
    from calendarsync.providers.exchange.services import EwsCalls
    from calendarsync.sync.context import idempotency_key, tag_for
    from calendarsync.sync.mapping import crm_fields, event_data

    account = CalendarAccount.objects.select_related("user").prefetch_related("calendars").get(pk=account_id)
    tz = account.user.tzinfo
    calendar_id = account.calendars.get().external_id
    activities = changed_activities(account_id)
    keys = [idempotency_key(a, account) for a in activities]
    values = [
        item_fields(event_data(crm_fields(a, [], frozenset()), tz=tz, tag=tag_for(a), details=""), key=key)
        for a, key in zip(activities, keys, strict=True)
    ]
    login = ExchangeLogin.from_credentials(account.credentials or {})
    _, sync_state = EwsCalls(ExchangeClient(login)).sync(calendar_id, None)

    started = time.perf_counter()
    client = ExchangeClient(login)
    calls = EwsCalls(client)
    calls.sync(calendar_id, sync_state)
    folders = [client.calendar_folder(calendar_id), client.deleted_items_folder()]
    for offset in range(0, len(values), BATCH_SIZE):
        calls.find(folders, Q(**{f"{KEY_FIELD}__in": keys[offset : offset + BATCH_SIZE]}), (KEY_FIELD,))
        created = calls.create_items(
            calendar_id, values[offset : offset + BATCH_SIZE], chunk_size=BATCH_SIZE, notify=False
        )
        calls.get_items([str(item.id) for item in created])
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    common.main(CONFIG, worker)
