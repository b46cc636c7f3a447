"""What the three sync benchmarks share: the orchestrator, the emulator process, the measurements.

``bench/sync.py`` (Google), ``bench/sync_microsoft.py`` (Microsoft 365) and
``bench/sync_exchange.py`` (Exchange) each describe their provider in a :class:`BenchConfig`
and keep only what differs: how the emulator is started, how an account is connected to it, and
the bare client-library calls a push of ``PUSH_COUNT`` activities needs. Everything else lives
here: one worker subprocess per database (SQLite, and PostgreSQL when reachable), the emulator in
a process of its own driven through its ``/_control/`` endpoints, the no-change pass, the push
runs, the table and the last-line JSON object.
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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_SERVER_URL = "postgres://postgres@127.0.0.1:5432"
RESULT_PREFIX = "BENCH-RESULT "
PUSH_COUNT = 200
PUSH_RUNS = 3

Result = dict[str, Any]
# Registers one mailbox with the emulator: (credentials, calendar external id, calendar name).
LinkAccount = Callable[[str], tuple[dict[str, Any], str, str]]
# ``count`` connected accounts of a company, their emails starting with a prefix: their ids.
ConnectAccounts = Callable[[Any, int, str], list[int]]


@dataclass(frozen=True)
class BenchConfig:
    """What one provider's benchmark calls itself, and the batch size its push goal is based on."""

    script: Path
    postgres_db: str
    temp_prefix: str
    batch_size: int
    round_trip_name: str  # "batch round trips", "CreateItem round trips"
    bare_name: str  # "bare client calls", "bare HTTP calls", "bare EWS calls"
    label: str = ""  # "Microsoft 365"; empty for Google, whose output has no provider prefix
    provider: str | None = None  # the "provider" key of the JSON object; absent when None

    @property
    def goals(self) -> dict[str, str]:
        return {
            "http_requests_per_no_change_sync": "== 1",
            "sql_queries_per_no_change_sync": "<= 5",
            "push_round_trips": f"<= {math.ceil(PUSH_COUNT / self.batch_size)}",
            "engine_overhead": "<= 1.5",
            "no_change_syncs_per_second": ">= 100",
        }


# --- orchestrator: one subprocess per database --------------------------------------------------


def run_worker(config: BenchConfig, database_url: str, var_dir: str, accounts: int) -> Result:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "calsync_project.settings",
        "CALSYNC_VAR_DIR": var_dir,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        # The emulators listen on loopback, which an Exchange server may only use when allowed.
        "EXCHANGE_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
    }
    completed = subprocess.run(  # noqa: S603 - our own interpreter running the benchmark script
        [sys.executable, str(config.script), "--worker", "--accounts", str(accounts)],
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


def bench_sqlite(config: BenchConfig, accounts: int) -> Result:
    with tempfile.TemporaryDirectory(prefix=config.temp_prefix) as var_dir:
        return run_worker(config, f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}", var_dir, accounts)


def bench_postgresql(config: BenchConfig, accounts: int) -> Result | str:
    """The figures, or why PostgreSQL could not be measured."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER_URL}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_SERVER_URL}: {str(exc).strip()}"
    database = config.postgres_db
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            with tempfile.TemporaryDirectory(prefix=config.temp_prefix) as var_dir:
                return run_worker(config, f"{POSTGRES_SERVER_URL}/{database}", var_dir, accounts)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def print_table(config: BenchConfig, results: dict[str, Result], skipped: dict[str, str]) -> None:
    title = f"{config.label}, " if config.label else ""
    for database, figures in results.items():
        push = figures["push_200"]
        queries = figures["sql_queries_per_no_change_sync"]
        print(f"{title}{database} ({figures['accounts']} accounts)")
        print(
            f"  HTTP requests per no-change sync   {figures['http_requests_per_no_change_sync']:.2f}  (goal == 1)"
        )
        print(
            f"  SQL queries per no-change sync     max {queries['max']}, mean {queries['mean']:.2f}  (goal <= 5)"
        )
        print(
            f"  push {PUSH_COUNT}: {push['round_trips']} {config.round_trip_name}, {push['http_requests']} requests  "
            f"(goal <= {math.ceil(PUSH_COUNT / config.batch_size)})"
        )
        print(
            f"  push {PUSH_COUNT}: sync {push['sync_ms']:.1f} ms, {config.bare_name} {push['bare_client_ms']:.1f} ms, "
            f"overhead {push['engine_overhead']:.2f}  (goal <= 1.5)"
        )
        print(
            f"  no-change syncs per second         {figures['no_change_syncs_per_second']:.1f}  (goal >= 100)"
        )
    for database, reason in skipped.items():
        print(f"{database} not measured: {reason}")


def main(config: BenchConfig, worker: Callable[[int], None]) -> None:
    """The command line: ``--accounts N``; ``--worker`` runs ``worker`` inside one database's process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    if args.worker:
        worker(args.accounts)
        return
    on = f"{config.label} on " if config.label else ""
    results: dict[str, Result] = {}
    skipped: dict[str, str] = {}
    print(f"Benchmarking {on}SQLite ...", flush=True)
    results["sqlite"] = bench_sqlite(config, args.accounts)
    print(f"Benchmarking {on}PostgreSQL ...", flush=True)
    postgresql = bench_postgresql(config, args.accounts)
    if isinstance(postgresql, str):
        print(f"PostgreSQL skipped: {postgresql}", flush=True)
        skipped["postgresql"] = postgresql
    else:
        results["postgresql"] = postgresql
    print()
    print_table(config, results, skipped)
    provider = {} if config.provider is None else {"provider": config.provider}
    print(json.dumps({**provider, "goals": config.goals, **results}, sort_keys=False))


# --- the emulator, in a process of its own -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Emulator:
    """An emulator in a subprocess, driven through its /_control/ JSON endpoints at ``url``."""

    def __init__(self, url: str, *, not_counted: frozenset[str], batch_part: str | None = None) -> None:
        self.url = url
        self.not_counted = not_counted  # counters that are not requests the sync made
        self.batch_part = batch_part  # the counter of requests that also arrive as parts of a batch

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
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/_control/{name}{query}", timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def counts(self) -> dict[str, int]:
        return dict(self.get("counts"))

    def requests_made(self) -> int:
        """Requests the API and token endpoint received (batch parts are counted by the batch)."""
        counts = self.counts()
        batch_parts = counts.get(self.batch_part, 0) if self.batch_part and counts.get("batch") else 0
        return sum(n for name, n in counts.items() if name not in self.not_counted) - batch_parts


E = TypeVar("E", bound=Emulator)


@contextmanager
def emulator_process(code: str, args: list[str], emulator: E) -> Iterator[E]:
    """``python -c code *args`` serving ``emulator``, once its control endpoint answers."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter serving the emulator
        [sys.executable, "-c", code, *args], cwd=PROJECT_DIR
    )
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


def setup_django() -> None:
    """Django set up from the environment, and the empty database migrated."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def report(result: Result) -> None:
    """Hand the worker's figures to the orchestrator (``run_worker`` reads this line)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def connect_accounts(company: Any, count: int, prefix: str, provider: str, link: LinkAccount) -> list[int]:
    """``count`` users, each with an account whose sync has started (``link`` registers the mailbox
    with the emulator); their account ids."""
    import datetime as dt

    from django.utils import timezone

    from accounts.models import User
    from activities.models import ActivityType
    from calendarsync.crypto import Secret
    from calendarsync.models import CalendarAccount, RemoteCalendar, SyncPreferences

    emails = [f"{prefix}{n}@bench.test" for n in range(count)]
    users = User.objects.bulk_create(
        [User(email=email, company=company, time_zone="Europe/Berlin", password="!") for email in emails]
    )
    accounts, calendars = [], []
    for user, email in zip(users, emails, strict=True):
        credentials, calendar_id, calendar_name = link(email)
        accounts.append(
            CalendarAccount(user=user, provider=provider, email=email, credentials=Secret(credentials))
        )
        calendars.append((calendar_id, calendar_name))
    accounts = CalendarAccount.objects.bulk_create(accounts)
    remote = RemoteCalendar.objects.bulk_create(
        [
            RemoteCalendar(account=a, external_id=calendar_id, name=name, is_primary=True)
            for a, (calendar_id, name) in zip(accounts, calendars, strict=True)
        ]
    )
    meeting = ActivityType.objects.get(company=company, name="Meeting")
    started = timezone.now() - dt.timedelta(minutes=1)
    preferences = SyncPreferences.objects.bulk_create(
        [
            SyncPreferences(account=a, calendar=c, incoming_type=meeting, sync_started_at=started)
            for a, c in zip(accounts, remote, strict=True)
        ]
    )
    through = SyncPreferences.outgoing_types.through
    through.objects.bulk_create(
        [through(syncpreferences_id=p.pk, activitytype_id=meeting.pk) for p in preferences]
    )
    return [a.pk for a in accounts]


def measure_all(
    emulator: Emulator,
    count: int,
    *,
    connect: ConnectAccounts,
    bare_push: Callable[[int], float],
    round_trip_counter: str,
) -> Result:
    """Every figure for ``count`` accounts: the no-change pass (HTTP requests, SQL queries, syncs
    per second) and the push of ``PUSH_COUNT`` activities (``round_trip_counter`` names the
    emulator counter of its round trips; ``bare_push`` times the bare client calls it needs)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Company
    from calendarsync.sync.runner import RunStatus, run_account_sync

    company = Company.objects.create(name="Bench Sales")
    ids = connect(company, count, "user")
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
        "push_200": measure_push(emulator, company, connect, bare_push, round_trip_counter),
        "no_change_syncs_per_second": round(per_second, 1),
    }


def measure_push(
    emulator: Emulator,
    company: Any,
    connect: ConnectAccounts,
    bare_push: Callable[[int], float],
    round_trip_counter: str,
) -> Result:
    sync_times: list[float] = []
    bare_times: list[float] = []
    round_trips: list[int] = []
    requests: list[int] = []
    for _ in range(PUSH_RUNS):
        prefix = f"push{uuid.uuid4().hex[:8]}-"
        [account_id] = connect(company, 1, prefix)
        [bare_id] = connect(company, 1, f"bare-{prefix}")
        sync_ms, trips, made = time_engine_push(emulator, account_id, round_trip_counter)
        sync_times.append(sync_ms)
        round_trips.append(trips)
        requests.append(made)
        bare_times.append(bare_push(bare_id))
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


def time_engine_push(emulator: Emulator, account_id: int, round_trip_counter: str) -> tuple[float, int, int]:
    """The sync of PUSH_COUNT changed activities: its time, round trips and HTTP requests."""
    from calendarsync.sync.runner import RunStatus, run_account_sync

    assert run_account_sync(account_id).status == RunStatus.OK  # noqa: S101 - the baseline run
    changed_activities(account_id)
    emulator.post("reset_counts", {})
    started = time.perf_counter()
    outcome = run_account_sync(account_id)
    elapsed = (time.perf_counter() - started) * 1000
    assert outcome.result is not None  # noqa: S101
    assert outcome.result.pushed.created == PUSH_COUNT, outcome  # noqa: S101
    return elapsed, int(emulator.counts().get(round_trip_counter, 0)), emulator.requests_made()
