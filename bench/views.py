"""Query count and server time of the activity list (A7) and month calendar (A8), on SQLite and PostgreSQL.

Run ``.venv/bin/python bench/views.py``. Each database is measured in its own subprocess with
``DATABASE_URL`` set, so Django reads its settings fresh: the worker migrates an empty database,
bulk-creates a company, two users and their activities, then times requests made through
``django.test.Client`` (the whole request: middleware, view, template) and counts their SQL queries
with ``CaptureQueriesContext``. The last line printed is one JSON object with every figure.

The PostgreSQL database ``calsync_bench`` is created and dropped here; when PostgreSQL is not
reachable the run says so and reports SQLite only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_SERVER_URL = "postgres://postgres@127.0.0.1:5432"
POSTGRES_DB = "calsync_bench"
RESULT_PREFIX = "BENCH-RESULT "
REQUESTS = 15
WARMUP_REQUESTS = 2
LIST_ROWS = 100
QUERY_GOAL = 10

Result = dict[str, dict[str, Any]]


# --- orchestrator: one subprocess per database --------------------------------------------------


def run_worker(database_url: str, var_dir: str) -> Result:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "calsync_project.settings",
        "CALSYNC_VAR_DIR": var_dir,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    completed = subprocess.run(  # noqa: S603 - our own interpreter running this very file
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
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


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="calsync-bench-") as var_dir:
        return run_worker(f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}", var_dir)


def bench_postgresql() -> Result | str:
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
                return run_worker(f"{POSTGRES_SERVER_URL}/{POSTGRES_DB}", var_dir)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')


def print_table(results: dict[str, Result], skipped: dict[str, str]) -> None:
    header = f"{'database':<11} {'scenario':<18} {'in db':>6} {'shown':>6} {'queries':>8} {'median ms':>10}"
    print(header)
    print("-" * len(header))
    for database, scenarios in results.items():
        for name, figures in scenarios.items():
            print(
                f"{database:<11} {name:<18} {figures['activities']:>6} {figures['rows']:>6} "
                f"{figures['queries']:>8} {figures['median_ms']:>10.1f}"
            )
    for database, reason in skipped.items():
        print(f"{database:<11} not measured: {reason}")
    counts = [f["queries"] for scenarios in results.values() for f in scenarios.values()]
    if counts:
        verdict = "met" if max(counts) <= QUERY_GOAL else "NOT met"
        print(f"Goal of at most {QUERY_GOAL} queries per page, whatever the row count: {verdict}.")


def main() -> None:
    results: dict[str, Result] = {}
    skipped: dict[str, str] = {}
    print("Benchmarking SQLite ...", flush=True)
    results["sqlite"] = bench_sqlite()
    print("Benchmarking PostgreSQL ...", flush=True)
    postgresql = bench_postgresql()
    if isinstance(postgresql, str):
        print(f"PostgreSQL skipped: {postgresql}", flush=True)
        skipped["postgresql"] = postgresql
    else:
        results["postgresql"] = postgresql
    print()
    print_table(results, skipped)
    print(json.dumps(results, sort_keys=False))


# --- worker: runs inside Django with the DATABASE_URL it was given -----------------------------


def worker() -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()

    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # "testserver" in ALLOWED_HOSTS, in-memory e-mail
    call_command("migrate", verbosity=0, interactive=False)
    print(RESULT_PREFIX + json.dumps(measure_all()), flush=True)


def measure_all() -> Result:
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import Company, User

    company = Company.objects.create(name="Bench Sales")
    viewer = User.objects.create_user(
        email="viewer@bench.test", password="bench-password-1", company=company, time_zone="Europe/Berlin"
    )
    colleague = User.objects.create_user(
        email="colleague@bench.test",
        password="bench-password-1",
        company=company,
        time_zone="America/New_York",
    )
    today = timezone.now().astimezone(viewer.tzinfo).date()
    month_start = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)  # next month
    client = Client()
    client.force_login(viewer)

    list_url = reverse("activities:list")
    list_params = {"owner": "all", "status": "all", "time": "all"}
    month_url = reverse("activities:calendar")
    month_params = {"view": "month", "date": month_start.isoformat(), "owner": "all", "status": "all"}

    results: Result = {}
    create_activities(company, viewer, colleague, month_start, count=500, seed=1)
    results["list_100"] = measure(client, list_url, list_params)
    results["month_500"] = measure(client, month_url, month_params)
    create_activities(company, viewer, colleague, month_start, count=1500, seed=2)
    results["month_2000"] = measure(client, month_url, month_params)
    results["list_100_of_2000"] = measure(client, list_url, list_params)
    return results


def create_activities(
    company: Any, viewer: Any, colleague: Any, month_start: dt.date, *, count: int, seed: int
) -> None:
    """``count`` activities in the month from ``month_start``: timed and all-day, linked, some private."""
    import random

    from activities.models import Activity, ActivityType, Deal, Organization, Person, Visibility

    rng = random.Random(seed)
    types = list(ActivityType.objects.filter(company=company))
    org = Organization.objects.create(company=company, owner=viewer, name=f"Initech {seed}")
    persons = [
        Person.objects.create(company=company, owner=viewer, name=f"Contact {seed}-{n}", organization=org)
        for n in range(5)
    ]
    deal = Deal.objects.create(company=company, owner=viewer, title=f"Deal {seed}", organization=org)
    activities = []
    for index in range(count):
        owner = viewer if index % 2 else colleague
        day = month_start + dt.timedelta(days=rng.randrange(28))
        all_day = index % 7 == 0
        start = (
            None
            if all_day
            else dt.datetime.combine(day, dt.time(8 + index % 10, 15 * (index % 4)), tzinfo=owner.tzinfo)
        )
        activities.append(
            Activity(
                company=company,
                owner=owner,
                type=types[index % len(types)],
                subject=f"Bench activity {seed}-{index}",
                due_date=day,
                start_at=start,
                duration=None if all_day else dt.timedelta(minutes=30),
                location="Zoom" if index % 3 == 0 else "",
                deal=deal if index % 4 == 0 else None,
                person=persons[index % len(persons)] if index % 4 == 1 else None,
                organization=org if index % 4 == 2 else None,
                done=index % 5 == 0,
                visibility=Visibility.OWNER if index % 10 == 3 else Visibility.EVERYONE,
            )
        )
    created = Activity.objects.bulk_create(activities)
    through = Activity.participants.through
    through.objects.bulk_create(
        [
            through(activity_id=a.pk, person_id=persons[i % len(persons)].pk)
            for i, a in enumerate(created)
            if i % 3 == 0
        ]
    )


def measure(client: Any, url: str, params: dict[str, str]) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from activities.models import Activity

    with list_page_size(LIST_ROWS):
        for _ in range(WARMUP_REQUESTS):
            client.get(url, params)
        timings: list[float] = []
        query_counts: list[int] = []
        response: Any = None
        for _ in range(REQUESTS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, params)
                timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            query_counts.append(len(queries.captured_queries))
    return {
        "queries": max(query_counts),
        "median_ms": round(statistics.median(timings), 1),
        "rows": shown_rows(response),
        "activities": Activity.objects.count(),
    }


@contextmanager
def list_page_size(rows: int) -> Iterator[None]:
    """The list view's page size, set to ``rows`` for the measurement (the brief asks for 100 rows)."""
    from activities.views import listing

    previous = getattr(listing, "PAGE_SIZE", None)
    if previous is not None:
        listing.PAGE_SIZE = rows
    try:
        yield
    finally:
        if previous is not None:
            listing.PAGE_SIZE = previous


def shown_rows(response: Any) -> int:
    """How many activities the page shows: the list's page, or the calendar's items."""
    context = response.context
    if context is None:
        return -1
    page = context.get("page_obj")
    if page is not None:
        return len(page.object_list)
    grid = context.get("grid")
    total = context.get("total")
    limit = context.get("limit")
    if grid is not None and isinstance(total, int) and isinstance(limit, int):
        return min(total, limit)
    return -1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().worker:
        worker()
    else:
        main()
