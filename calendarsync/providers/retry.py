"""What every provider adapter shares: bounded retries that honour Retry-After, and chunking.

Each adapter keeps its own error map (``to_error``); this module only decides when to try
again and how long to wait, so the three providers back off the same way. An adapter waits in
line only for short delays; when the server asks for more (a 429 with ``Retry-After: 120``), the
``TransientError`` goes up with the server's delay and the caller reschedules the account no
earlier than that (PROVIDERS.md: honour Retry-After; a worker never sits out minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from calendarsync.providers.base import ProviderError, TransientError
from calendarsync.providers.redaction import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 1.0
# The longest an adapter waits in line before trying again; a longer wait ends the call.
MAX_INLINE_WAIT_SECONDS = 10.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(error: TransientError, attempt: int) -> float:
    """The server's Retry-After when it gave one, else exponential backoff (never shortened)."""
    wanted = error.retry_after if error.retry_after is not None else BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
    return max(wanted, 0.0)


def waits_inline(delay: float) -> bool:
    """Whether to wait ``delay`` seconds and try again now, or give up and let the run be rescheduled."""
    return delay <= MAX_INLINE_WAIT_SECONDS


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def call_with_retries(
    call: Callable[[], T],
    *,
    catch: tuple[type[BaseException], ...],
    to_error: Callable[[BaseException], ProviderError],
    sleep: Callable[[float], None],
    label: str,
    attempts: int = MAX_ATTEMPTS,
) -> T:
    """Run ``call``; a failure in ``catch`` becomes ``to_error(exc)``, and transient ones are retried."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except catch as exc:
            error = to_error(exc)
            if not isinstance(error, TransientError) or attempt >= attempts:
                raise error from exc
            delay = retry_delay(error, attempt)
            if not waits_inline(delay):
                raise error from exc  # the caller reschedules no earlier than ``retry_after``
            logger.warning("%s: %s; retry %d of %d", label, redact(error.message), attempt, attempts - 1)
            sleep(delay)
