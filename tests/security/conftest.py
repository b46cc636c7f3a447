"""The activity UI's fixed clock (Monday 13 January 2025), shared with the security tests."""

from __future__ import annotations

from tests.activities.conftest import frozen_now

__all__ = ["frozen_now"]
