"""What the calendar sync costs, through the real Google client library against the emulator.

Run ``.venv/bin/python bench/sync.py`` (``--accounts N`` to change the 1,000). Each database
(SQLite, and PostgreSQL at ``postgres://postgres@127.0.0.1:5432/calsync_bench_sync`` when
reachable; created and dropped here) is measured in its own subprocess with ``DATABASE_URL``
set. That worker starts the Google emulator in a process of its own (so its CPU time is not
counted against the sync), migrates an empty database, connects N accounts with a started sync,
and measures through ``calendarsync.runner.run_account_sync`` (claim, engine, record), the
path the Celery task takes:

* ``http_requests_per_no_change_sync``: requests the calendar API and token endpoint received
  per account during a pass where nothing changed (goal: exactly 1).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: the batch round trips it takes (goal:
  <= ceil(200/50) = 4), all HTTP requests (the batches, the listing, and the second listing a
  run that created events makes so change feeds that hide create-then-delete report a later
  deletion), the sync's time, and the time of the bare client-library calls that work needs
  (build the service, list with the sync token, insert the 200 events in batches of 50),
  median of three runs; ``engine_overhead`` is their ratio (goal: <= 1.5).
* ``no_change_syncs_per_second``: one process syncing every account in turn, nothing changed
  (goal: >= 100).

The last line printed is a JSON object with every figure, per database.

Microsoft Exchange (exchangelib over EWS): the same figures by ``bench/sync_exchange.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_SERVER_URL = "postgres://postgres@127.0.0.1:5432"
POSTGRES_DB = "calsync_bench_sync"
RESULT_PREFIX = "BENCH-RESULT "
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"  # noqa: S105 - a fixed credential of the local emulator
PUSH_COUNT = 200
PUSH_RUNS = 3
GOALS = {
    "http_requests_per_no_change_sync": "== 1",
    "sql_queries_per_no_change_sync": "<= 5",
    "push_round_trips": f"<= {math.ceil(PUSH_COUNT / 50)}",
    "engine_overhead": "<= 1.5",
    "no_change_syncs_per_second": ">= 100",
}
EMULATOR_CODE = (
    "import sys\n"
    "from calendarsync.emulators.google import GoogleEmulator\n"
    "from calendarsync.emulators.server import EmulatorServer\n"
    "EmulatorServer(GoogleEmulator(), port=int(sys.argv[1])).serve_until_interrupted()\n"
)

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
    with tempfile.TemporaryDirectory(prefix="calsync-bench-") as var_dir:
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
            with tempfile.TemporaryDirectory(prefix="calsync-bench-") as var_dir:
                return run_worker(f"{POSTGRES_SERVER_URL}/{POSTGRES_DB}", var_dir, accounts)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')


def print_table(results: dict[str, Result], skipped: dict[str, str]) -> None:
    for database, figures in results.items():
        push = figures["push_200"]
        queries = figures["sql_queries_per_no_change_sync"]
        print(f"{database} ({figures['accounts']} accounts)")
        print(
            f"  HTTP requests per no-change sync   {figures['http_requests_per_no_change_sync']:.2f}  (goal == 1)"
        )
        print(
            f"  SQL queries per no-change sync     max {queries['max']}, mean {queries['mean']:.2f}  (goal <= 5)"
        )
        print(
            f"  push {PUSH_COUNT}: {push['round_trips']} batch round trips, {push['http_requests']} requests  "
            f"(goal <= {math.ceil(PUSH_COUNT / 50)})"
        )
        print(
            f"  push {PUSH_COUNT}: sync {push['sync_ms']:.1f} ms, bare client calls {push['bare_client_ms']:.1f} ms, "
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
    print("Benchmarking SQLite ...", flush=True)
    results["sqlite"] = bench_sqlite(args.accounts)
    print("Benchmarking PostgreSQL ...", flush=True)
    postgresql = bench_postgresql(args.accounts)
    if isinstance(postgresql, str):
        print(f"PostgreSQL skipped: {postgresql}", flush=True)
        skipped["postgresql"] = postgresql
    else:
        results["postgresql"] = postgresql
    print()
    print_table(results, skipped)
    print(json.dumps({"goals": GOALS, **results}, sort_keys=False))


# --- the emulator, in a process of its own -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Emulator:
    """The Google emulator in a subprocess, driven through its /_control/ JSON endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, name: str, data: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback URL of our own emulator
            f"{self.url}/_control/{name}",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"null")

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_control/counts", timeout=30) as response:  # noqa: S310
            return dict(json.loads(response.read()))

    def requests_made(self) -> int:
        """Requests the API and token endpoint received (batch parts are counted by the batch)."""
        counts = self.counts()
        batch_parts = counts.get("events.insert", 0) if counts.get("batch") else 0
        return sum(n for name, n in counts.items() if name != "auth") - batch_parts


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
    sys.path.insert(0, str(PROJECT_DIR))
    with emulator_process() as emulator:
        os.environ.update(
            {
                "GOOGLE_CLIENT_ID": CLIENT_ID,
                "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
                "GOOGLE_TOKEN_URI": f"{emulator.url}/token",
                "GOOGLE_API_BASE_URL": f"{emulator.url}/",
                "GOOGLE_BATCH_URI": f"{emulator.url}/batch/calendar/v3",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        emulator.post("clients", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        print(RESULT_PREFIX + json.dumps(measure_all(emulator, accounts)), flush=True)


def connect_accounts(emulator: Emulator, company: Any, count: int, prefix: str) -> list[int]:
    """``count`` users, each with a Google account whose sync has started; their account ids."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from accounts.models import User
    from activities.models import ActivityType
    from calendarsync.crypto import Secret
    from calendarsync.models import CalendarAccount, Provider, RemoteCalendar, SyncPreferences

    emails = [f"{prefix}{n}@bench.test" for n in range(count)]
    users = User.objects.bulk_create(
        [User(email=email, company=company, time_zone="Europe/Berlin", password="!") for email in emails]
    )
    scopes = list(settings.GOOGLE_SCOPES)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    accounts = []
    for user, email in zip(users, emails, strict=True):
        emulator.post("users", {"email": email})
        issued = emulator.post("tokens", {"email": email, "scopes": scopes, "client_id": CLIENT_ID})
        credentials = {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expiry": expiry,
            "scopes": scopes,
        }
        accounts.append(
            CalendarAccount(user=user, provider=Provider.GOOGLE, email=email, credentials=Secret(credentials))
        )
    accounts = CalendarAccount.objects.bulk_create(accounts)
    calendars = RemoteCalendar.objects.bulk_create(
        [RemoteCalendar(account=a, external_id=a.email, name=a.email, is_primary=True) for a in accounts]
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

    push = measure_push(emulator, company)
    return {
        "accounts": count,
        "http_requests_per_no_change_sync": round(requests_per_sync, 3),
        "sql_queries_per_no_change_sync": {"max": max(queries), "mean": round(statistics.fmean(queries), 3)},
        "push_200": push,
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


def changed_activities(account_id: int) -> list[Any]:
    """PUSH_COUNT future activities whose synced fields changed after the sync started."""
    import datetime as dt

    from django.utils import timezone

    from activities.models import Activity, ActivityType
    from calendarsync.models import CalendarAccount

    account = CalendarAccount.objects.select_related("user").get(pk=account_id)
    user = account.user
    company_id = user.company_id
    if company_id is None:
        raise RuntimeError("bench users belong to a company")
    meeting = ActivityType.objects.get(company_id=company_id, name="Meeting")
    now = timezone.now().replace(microsecond=0)
    activities = []
    for n in range(PUSH_COUNT):
        start = now + dt.timedelta(days=1 + n % 30, hours=n % 8)
        activities.append(
            Activity(
                company_id=company_id,
                owner=user,
                type=meeting,
                subject=f"Bench meeting {n}",
                start_at=start,
                due_date=start.astimezone(user.tzinfo).date(),
                duration=dt.timedelta(minutes=30),
                location=f"Room {n % 12}",
                note="Agenda: numbers, next steps",
                guests=[f"guest{n % 7}@partner.test"],
                sync_changed_at=now,
            )
        )
    return Activity.objects.bulk_create(activities)


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
    counts = emulator.counts()
    return elapsed, int(counts.get("batch", 0)), emulator.requests_made()


def time_bare_client_push(account_id: int) -> float:
    """The client-library calls the same push needs, with their request bodies made beforehand."""
    from calendarsync.engine_context import idempotency_key, tag_for
    from calendarsync.mapping import crm_fields, event_data
    from calendarsync.models import CalendarAccount
    from calendarsync.providers.google.adapter import BATCH_SIZE
    from calendarsync.providers.google.client import GoogleClient
    from calendarsync.providers.google.mapping import event_body, event_id_for_key

    account = CalendarAccount.objects.select_related("user").get(pk=account_id)
    tz = account.user.tzinfo
    calendar_id = account.email
    tokens = dict(account.credentials or {})
    activities = changed_activities(account_id)
    bodies = [
        {
            **event_body(event_data(crm_fields(a, [], frozenset()), tz=tz, tag=tag_for(a), details="")),
            "id": event_id_for_key(idempotency_key(a, account)),
        }
        for a in activities
    ]
    first = GoogleClient(tokens)
    sync_token = first.execute(
        first.events.list(calendarId=calendar_id, singleEvents=True, showDeleted=True)
    )["nextSyncToken"]

    def ignore(*_args: Any) -> None:
        return None

    started = time.perf_counter()
    client = GoogleClient(tokens)
    events = client.events  # the method resource, built once
    client.execute(
        events.list(calendarId=calendar_id, syncToken=sync_token, singleEvents=True, showDeleted=True)
    )
    for offset in range(0, len(bodies), BATCH_SIZE):
        batch = client.new_batch()
        for body in bodies[offset : offset + BATCH_SIZE]:
            batch.add(events.insert(calendarId=calendar_id, body=body), callback=ignore)
        client.execute_batch(batch)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
