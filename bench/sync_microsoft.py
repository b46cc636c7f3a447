"""``bench/sync.py``'s figures for Microsoft 365: msal + requests against the Graph emulator.

Run ``.venv/bin/python bench/sync_microsoft.py`` (``--accounts N`` to change the 1,000). Same
method and figures as ``bench/sync.py`` (see there), through the Microsoft adapter: the emulator
(identity over HTTPS with its test CA, Graph over HTTP) runs in a process of its own, each database
in a worker subprocess, and every sync goes through ``calendarsync.runner.run_account_sync``.

* ``http_requests_per_no_change_sync``: requests Graph and the token endpoint received per
  account during a pass where nothing changed (goal: exactly 1, the delta call).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: JSON batch round trips (goal:
  <= ceil(200/20) = 10, Graph's batch limit), all HTTP requests (batch parts counted once, by
  their batch), the sync's time and the time of the bare HTTP calls that work needs (the delta
  call and the 10 batches, bodies made beforehand), median of three; ``engine_overhead`` is
  their ratio (goal: <= 1.5).
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

POSTGRES_DB = "calsync_bench_sync_microsoft"
CLIENT_ID = "bench-microsoft-client"
CLIENT_SECRET = "bench-microsoft-secret"  # noqa: S105 - a fixed credential of the local emulator
SCOPES = ["Calendars.ReadWrite", "User.Read"]
BATCH_LIMIT = 20
GOALS = {
    "http_requests_per_no_change_sync": "== 1",
    "sql_queries_per_no_change_sync": "<= 5",
    "push_round_trips": f"<= {math.ceil(PUSH_COUNT / BATCH_LIMIT)}",
    "engine_overhead": "<= 1.5",
    "no_change_syncs_per_second": ">= 100",
}
EMULATOR_CODE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from calendarsync.emulators.microsoft_demo import start_microsoft_emulator\n"
    "running = start_microsoft_emulator(client_id=sys.argv[4], client_secret=sys.argv[5], host='127.0.0.1',\n"
    "    graph_port=int(sys.argv[1]), identity_port=int(sys.argv[2]), var_dir=Path(sys.argv[3]))\n"
    "running.graph.serve_until_interrupted()\n"
)
# Emulator counters that are not HTTP requests to Graph or the token endpoint.
NOT_COUNTED = frozenset({"authorize"})

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
    with tempfile.TemporaryDirectory(prefix="calsync-bench-ms-") as var_dir:
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
            with tempfile.TemporaryDirectory(prefix="calsync-bench-ms-") as var_dir:
                return run_worker(f"{POSTGRES_SERVER_URL}/{POSTGRES_DB}", var_dir, accounts)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')


def print_table(results: dict[str, Result], skipped: dict[str, str]) -> None:
    for database, figures in results.items():
        push = figures["push_200"]
        queries = figures["sql_queries_per_no_change_sync"]
        print(f"Microsoft 365, {database} ({figures['accounts']} accounts)")
        print(
            f"  HTTP requests per no-change sync   {figures['http_requests_per_no_change_sync']:.2f}  (goal == 1)"
        )
        print(
            f"  SQL queries per no-change sync     max {queries['max']}, mean {queries['mean']:.2f}  (goal <= 5)"
        )
        print(
            f"  push {PUSH_COUNT}: {push['round_trips']} batch round trips, {push['http_requests']} requests  "
            f"(goal <= {math.ceil(PUSH_COUNT / BATCH_LIMIT)})"
        )
        print(
            f"  push {PUSH_COUNT}: sync {push['sync_ms']:.1f} ms, bare HTTP calls {push['bare_client_ms']:.1f} ms, "
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
    print("Benchmarking Microsoft 365 on SQLite ...", flush=True)
    results["sqlite"] = bench_sqlite(args.accounts)
    print("Benchmarking Microsoft 365 on PostgreSQL ...", flush=True)
    postgresql = bench_postgresql(args.accounts)
    if isinstance(postgresql, str):
        print(f"PostgreSQL skipped: {postgresql}", flush=True)
        skipped["postgresql"] = postgresql
    else:
        results["postgresql"] = postgresql
    print()
    print_table(results, skipped)
    print(json.dumps({"provider": "microsoft", "goals": GOALS, **results}, sort_keys=False))


# --- the emulator, in a process of its own -------------------------------------------------------


class Emulator:
    """The Microsoft 365 emulator in a subprocess, driven through its /_control/ JSON endpoints."""

    def __init__(self, graph_url: str, identity_url: str, ca_file: Path) -> None:
        self.graph_url = graph_url
        self.identity_url = identity_url
        self.ca_file = ca_file

    def post(self, name: str, data: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback URL of our own emulator
            f"{self.graph_url}/_control/{name}",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"null")

    def get(self, name: str, **params: str) -> Any:
        url = f"{self.graph_url}/_control/{name}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def counts(self) -> dict[str, int]:
        return dict(self.get("counts"))

    def requests_made(self) -> int:
        """Requests Graph and the identity platform received (batch parts are counted by the batch)."""
        counts = self.counts()
        batch_parts = counts.get("events.create", 0) if counts.get("batch") else 0
        return sum(n for name, n in counts.items() if name not in NOT_COUNTED) - batch_parts


@contextmanager
def emulator_process(var_dir: Path) -> Iterator[Emulator]:
    graph_port, identity_port = free_port(), free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter serving the emulator
        [
            sys.executable,
            "-c",
            EMULATOR_CODE,
            str(graph_port),
            str(identity_port),
            str(var_dir),
            CLIENT_ID,
            CLIENT_SECRET,
        ],
        cwd=PROJECT_DIR,
    )
    emulator = Emulator(
        f"http://127.0.0.1:{graph_port}",
        f"https://127.0.0.1:{identity_port}",
        var_dir / "microsoft-emulator-ca.pem",
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


def worker(accounts: int) -> None:
    var_dir = Path(os.environ["CALSYNC_VAR_DIR"])
    with emulator_process(var_dir) as emulator:
        os.environ.update(
            {
                "MICROSOFT_CLIENT_ID": CLIENT_ID,
                "MICROSOFT_CLIENT_SECRET": CLIENT_SECRET,
                "MICROSOFT_AUTHORITY": f"{emulator.identity_url}/common",
                "MICROSOFT_GRAPH_BASE_URL": f"{emulator.graph_url}/v1.0/",
                "MICROSOFT_CA_BUNDLE": str(emulator.ca_file),
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        print(RESULT_PREFIX + json.dumps(measure_all(emulator, accounts)), flush=True)


def connect_accounts(emulator: Emulator, company: Any, count: int, prefix: str) -> list[int]:
    """``count`` users, each with a Microsoft 365 account whose sync has started; their account ids."""
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
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    accounts, calendar_ids = [], []
    for user, email in zip(users, emails, strict=True):
        emulator.post("users", {"email": email})
        calendar_ids.append(
            next(c["id"] for c in emulator.get("calendars", email=email)["value"] if c["is_default"])
        )
        issued = emulator.post("tokens", {"email": email, "scopes": SCOPES, "client_id": CLIENT_ID})
        credentials = {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expiry": expiry,
            "scopes": SCOPES,
        }
        accounts.append(
            CalendarAccount(
                user=user, provider=Provider.MICROSOFT, email=email, credentials=Secret(credentials)
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
    counts = emulator.counts()
    return elapsed, int(counts.get("batch", 0)), emulator.requests_made()


def time_bare_client_push(account_id: int) -> float:
    """The HTTP calls the same push needs (one session, bodies made beforehand), timed alone."""
    import datetime as dt

    import requests

    from calendarsync.engine_context import idempotency_key, tag_for
    from calendarsync.mapping import crm_fields, event_data
    from calendarsync.models import CalendarAccount
    from calendarsync.providers.microsoft.adapter import BATCH_SIZE
    from calendarsync.providers.microsoft.client import graph_base_url, graph_path
    from calendarsync.providers.microsoft.mapping import event_body, transaction_id_for

    account = CalendarAccount.objects.select_related("user").prefetch_related("calendars").get(pk=account_id)
    tz = account.user.tzinfo
    calendar_id = account.calendars.get().external_id
    tokens = dict(account.credentials or {})
    activities = changed_activities(account_id)
    events = [
        event_data(crm_fields(a, [], frozenset()), tz=tz, tag=tag_for(a), details="") for a in activities
    ]
    requests_ = [
        {
            "id": str(n),
            "method": "POST",
            "url": "/" + graph_path("me", "calendars", calendar_id, "events"),
            "headers": {"Content-Type": "application/json"},
            "body": {
                **event_body(event),
                "transactionId": transaction_id_for(idempotency_key(a, account), event.tag),
            },
        }
        for n, (a, event) in enumerate(zip(activities, events, strict=True))
    ]
    base = graph_base_url()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    now = dt.datetime.now(dt.UTC)
    window = {
        "startDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (now + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with requests.Session() as first:
        delta_link = first.get(
            base + graph_path("me", "calendars", calendar_id, "calendarView", "delta", query=window),
            headers=headers,
            timeout=30,
        ).json()["@odata.deltaLink"]

    started = time.perf_counter()
    with requests.Session() as session:
        session.get(delta_link, headers=headers, timeout=30).raise_for_status()
        for offset in range(0, len(requests_), BATCH_SIZE):
            session.post(
                base + "$batch",
                json={"requests": requests_[offset : offset + BATCH_SIZE]},
                headers=headers,
                timeout=30,
            ).raise_for_status()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
