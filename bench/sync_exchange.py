"""``bench/sync.py``'s figures for Microsoft Exchange: exchangelib over HTTP against the EWS emulator.

Run ``.venv/bin/python bench/sync_exchange.py`` (``--accounts N`` to change the 1,000). Same
method and figures as ``bench/sync.py`` (see there), through the Exchange adapter: the emulator
runs in a process of its own, each database in a worker subprocess, and every sync goes through
``calendarsync.runner.run_account_sync``.

* ``http_requests_per_no_change_sync``: EWS requests per account during a pass where nothing
  changed (goal: exactly 1, the SyncFolderItems call).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: CreateItem round trips (goal:
  <= ceil(200/50) = 4), all EWS requests (per 50 items one FindItem for the idempotency keys,
  one CreateItem and one GetItem to read the items back), the sync's time and the time of those
  bare exchangelib calls (items made beforehand), median of three; ``engine_overhead`` is their
  ratio (goal: <= 1.5).
* ``no_change_syncs_per_second``: one process syncing every account in turn (goal: >= 100).

The last line printed is a JSON object with every figure, per database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.sync import (  # noqa: E402  (the project root must be importable first)
    POSTGRES_SERVER_URL,
    PUSH_COUNT,
    PUSH_RUNS,
    RESULT_PREFIX,
    changed_activities,
    free_port,
)

POSTGRES_DB = "calsync_bench_sync_exchange"
PASSWORD = "bench-exchange-password"  # noqa: S105 - a fixed credential of the local emulator
EWS_PATH = "/EWS/Exchange.asmx"
BATCH_SIZE = 50
GOALS = {
    "http_requests_per_no_change_sync": "== 1",
    "sql_queries_per_no_change_sync": "<= 5",
    "push_round_trips": f"<= {math.ceil(PUSH_COUNT / BATCH_SIZE)}",
    "engine_overhead": "<= 1.5",
    "no_change_syncs_per_second": ">= 100",
}
EMULATOR_CODE = (
    "import sys\n"
    "from calendarsync.emulators.exchange import ExchangeEmulator\n"
    "from calendarsync.emulators.server import EmulatorServer\n"
    "EmulatorServer(ExchangeEmulator(), port=int(sys.argv[1])).serve_until_interrupted()\n"
)
# Emulator counters that are not EWS requests the sync made.
NOT_COUNTED = frozenset({"401"})

Result = dict[str, Any]


# --- orchestrator: one subprocess per database --------------------------------------------------


def run_worker(database_url: str, var_dir: str, accounts: int) -> Result:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "calsync_project.settings",
        "CALSYNC_VAR_DIR": var_dir,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    completed = subprocess.run(  # noqa: S603 - our own interpreter running this very file
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--accounts", str(accounts)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: Result = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    raise RuntimeError(f"benchmark worker failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")


def bench_sqlite(accounts: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="calsync-bench-ews-") as var_dir:
        return run_worker(f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}", var_dir, accounts)


def bench_postgresql(accounts: int) -> Result | str:
    """The figures, or why PostgreSQL could not be measured."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER_URL}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_SERVER_URL}: {str(exc).strip()}"
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{POSTGRES_DB}"')
        try:
            with tempfile.TemporaryDirectory(prefix="calsync-bench-ews-") as var_dir:
                return run_worker(f"{POSTGRES_SERVER_URL}/{POSTGRES_DB}", var_dir, accounts)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')


def print_table(results: dict[str, Result], skipped: dict[str, str]) -> None:
    for database, figures in results.items():
        push = figures["push_200"]
        queries = figures["sql_queries_per_no_change_sync"]
        print(f"Microsoft Exchange, {database} ({figures['accounts']} accounts)")
        print(
            f"  HTTP requests per no-change sync   {figures['http_requests_per_no_change_sync']:.2f}  (goal == 1)"
        )
        print(
            f"  SQL queries per no-change sync     max {queries['max']}, mean {queries['mean']:.2f}  (goal <= 5)"
        )
        print(
            f"  push {PUSH_COUNT}: {push['round_trips']} CreateItem round trips, {push['http_requests']} requests  "
            f"(goal <= {math.ceil(PUSH_COUNT / BATCH_SIZE)})"
        )
        print(
            f"  push {PUSH_COUNT}: sync {push['sync_ms']:.1f} ms, bare EWS calls {push['bare_client_ms']:.1f} ms, "
            f"overhead {push['engine_overhead']:.2f}  (goal <= 1.5)"
        )
        print(
            f"  no-change syncs per second         {figures['no_change_syncs_per_second']:.1f}  (goal >= 100)"
        )
    for database, reason in skipped.items():
        print(f"{database} not measured: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    if args.worker:
        worker(args.accounts)
        return
    results: dict[str, Result] = {}
    skipped: dict[str, str] = {}
    print("Benchmarking Microsoft Exchange on SQLite ...", flush=True)
    results["sqlite"] = bench_sqlite(args.accounts)
    print("Benchmarking Microsoft Exchange on PostgreSQL ...", flush=True)
    postgresql = bench_postgresql(args.accounts)
    if isinstance(postgresql, str):
        print(f"PostgreSQL skipped: {postgresql}", flush=True)
        skipped["postgresql"] = postgresql
    else:
        results["postgresql"] = postgresql
    print()
    print_table(results, skipped)
    print(json.dumps({"provider": "exchange", "goals": GOALS, **results}, sort_keys=False))


# --- the emulator, in a process of its own -------------------------------------------------------


class Emulator:
    """The Exchange emulator in a subprocess, driven through its /_control/ JSON endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def server_url(self) -> str:
        return self.url + EWS_PATH

    def post(self, name: str, data: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback URL of our own emulator
            f"{self.url}/_control/{name}",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"null")

    def get(self, name: str, **params: str) -> Any:
        url = f"{self.url}/_control/{name}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def counts(self) -> dict[str, int]:
        return dict(self.get("counts"))

    def requests_made(self) -> int:
        return sum(n for name, n in self.counts().items() if name not in NOT_COUNTED)


@contextmanager
def emulator_process() -> Iterator[Emulator]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter serving the emulator
        [sys.executable, "-c", EMULATOR_CODE, str(port)], cwd=PROJECT_DIR
    )
    emulator = Emulator(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                emulator.counts()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield emulator
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- worker: runs inside Django with the DATABASE_URL it was given -----------------------------


def worker(accounts: int) -> None:
    with emulator_process() as emulator:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        print(RESULT_PREFIX + json.dumps(measure_all(emulator, accounts)), flush=True)


def connect_accounts(emulator: Emulator, company: Any, count: int, prefix: str) -> list[int]:
    """``count`` users, each with an Exchange mailbox whose sync has started; their account ids."""
    import datetime as dt

    from django.utils import timezone

    from accounts.models import User
    from activities.models import ActivityType
    from calendarsync.crypto import Secret
    from calendarsync.models import CalendarAccount, Provider, RemoteCalendar, SyncPreferences

    emails = [f"{prefix}{n}@bench.test" for n in range(count)]
    users = User.objects.bulk_create(
        [User(email=email, company=company, time_zone="Europe/Berlin", password="!") for email in emails]
    )
    accounts, calendar_ids = [], []
    for user, email in zip(users, emails, strict=True):
        emulator.post("users", {"email": email, "password": PASSWORD})
        calendar_ids.append(emulator.get("calendar", email=email)["id"])
        credentials = {"email": email, "password": PASSWORD, "server_url": emulator.server_url}
        accounts.append(
            CalendarAccount(
                user=user, provider=Provider.EXCHANGE, email=email, credentials=Secret(credentials)
            )
        )
    accounts = CalendarAccount.objects.bulk_create(accounts)
    calendars = RemoteCalendar.objects.bulk_create(
        [
            RemoteCalendar(account=a, external_id=calendar_id, name="Calendar", is_primary=True)
            for a, calendar_id in zip(accounts, calendar_ids, strict=True)
        ]
    )
    meeting = ActivityType.objects.get(company=company, name="Meeting")
    started = timezone.now() - dt.timedelta(minutes=1)
    preferences = SyncPreferences.objects.bulk_create(
        [
            SyncPreferences(account=a, calendar=c, incoming_type=meeting, sync_started_at=started)
            for a, c in zip(accounts, calendars, strict=True)
        ]
    )
    through = SyncPreferences.outgoing_types.through
    through.objects.bulk_create(
        [through(syncpreferences_id=p.pk, activitytype_id=meeting.pk) for p in preferences]
    )
    return [a.pk for a in accounts]


def measure_all(emulator: Emulator, count: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Company
    from calendarsync.runner import RunStatus, run_account_sync

    company = Company.objects.create(name="Bench Sales")
    ids = connect_accounts(emulator, company, count, "user")
    for account_id in ids:  # the first run of each: the baseline listing
        assert run_account_sync(account_id).status == RunStatus.OK  # noqa: S101 - a broken bench must stop

    emulator.post("reset_counts", {})
    queries: list[int] = []
    for account_id in ids:
        with CaptureQueriesContext(connection) as captured:
            run_account_sync(account_id)
        queries.append(len(captured.captured_queries))
    requests_per_sync = emulator.requests_made() / len(ids)

    started = time.perf_counter()
    for account_id in ids:
        run_account_sync(account_id)
    per_second = len(ids) / (time.perf_counter() - started)

    return {
        "accounts": count,
        "http_requests_per_no_change_sync": round(requests_per_sync, 3),
        "sql_queries_per_no_change_sync": {"max": max(queries), "mean": round(statistics.fmean(queries), 3)},
        "push_200": measure_push(emulator, company),
        "no_change_syncs_per_second": round(per_second, 1),
    }


def measure_push(emulator: Emulator, company: Any) -> Result:
    sync_times: list[float] = []
    bare_times: list[float] = []
    round_trips: list[int] = []
    requests: list[int] = []
    for _ in range(PUSH_RUNS):
        prefix = f"push{uuid.uuid4().hex[:8]}-"
        [account_id] = connect_accounts(emulator, company, 1, prefix)
        [bare_id] = connect_accounts(emulator, company, 1, f"bare-{prefix}")
        sync_ms, trips, made = time_engine_push(emulator, account_id)
        sync_times.append(sync_ms)
        round_trips.append(trips)
        requests.append(made)
        bare_times.append(time_bare_client_push(bare_id))
    sync_ms = statistics.median(sync_times)
    bare_ms = statistics.median(bare_times)
    return {
        "activities": PUSH_COUNT,
        "round_trips": max(round_trips),
        "http_requests": max(requests),
        "sync_ms": round(sync_ms, 1),
        "bare_client_ms": round(bare_ms, 1),
        "engine_overhead": round(sync_ms / bare_ms, 3),
    }


def time_engine_push(emulator: Emulator, account_id: int) -> tuple[float, int, int]:
    from calendarsync.runner import RunStatus, run_account_sync

    assert run_account_sync(account_id).status == RunStatus.OK  # noqa: S101 - the baseline run
    changed_activities(account_id)
    emulator.post("reset_counts", {})
    started = time.perf_counter()
    outcome = run_account_sync(account_id)
    elapsed = (time.perf_counter() - started) * 1000
    assert outcome.result is not None  # noqa: S101
    assert outcome.result.pushed.created == PUSH_COUNT, outcome  # noqa: S101
    return elapsed, int(emulator.counts().get("CreateItem", 0)), emulator.requests_made()


def time_bare_client_push(account_id: int) -> float:
    """The EWS calls the same push needs (sync, then per 50: find keys, create, read back), timed alone."""
    from exchangelib.restriction import Q

    from calendarsync.engine_context import idempotency_key, tag_for
    from calendarsync.mapping import crm_fields, event_data
    from calendarsync.models import CalendarAccount
    from calendarsync.providers.exchange.client import KEY_FIELD, ExchangeClient, ExchangeLogin
    from calendarsync.providers.exchange.mapping import item_fields
    from calendarsync.providers.exchange.services import EwsCalls

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
        created = calls.create_items(calendar_id, values[offset : offset + BATCH_SIZE], chunk_size=BATCH_SIZE)
        calls.get_items([str(item.id) for item in created])
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
