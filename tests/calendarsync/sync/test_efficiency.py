"""What a sync costs: one HTTP request and a constant handful of queries when nothing changed."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db

NO_CHANGE_QUERY_BUDGET = 5


def test_a_no_change_sync_costs_one_request_and_constant_queries(sync_env: SyncEnv) -> None:
    sync_env.start()
    for n in range(5):
        sync_env.activity(subject=f"Meeting {n}", start_at=soon(2, 8 + n))
    sync_env.control.create_event("From calendar", soon(3, 9), soon(3, 10))
    sync_env.sync()
    sync_env.sync()
    sync_env.control.reset_counts()
    with CaptureQueriesContext(connection) as queries:
        outcome = sync_env.sync()
    assert outcome.result is not None
    assert not outcome.result.changed
    assert sync_env.control.api_requests() == 1
    assert len(queries.captured_queries) <= NO_CHANGE_QUERY_BUDGET, [
        q["sql"] for q in queries.captured_queries
    ]


def test_bulk_pushes_go_out_in_batches(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    count = 120
    for n in range(count):
        sync_env.activity(subject=f"Bulk {n}", start_at=soon(2 + n % 20, 8 + n % 9))
    sync_env.control.reset_counts()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.created == count
    assert sync_env.control.bulk_requests() == math.ceil(count / sync_env.setup.bulk_batch_size)
    assert len(sync_env.control.events()) == count
