"""What the emulated APIs were sent: the last requests, with their bodies, for tests and the demo.

Each emulator records the API requests it serves (a batch's parts one by one) and keeps only
the most recent ones, so a long-running development server does not grow without bound.
Recording never changes how a request is answered.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

MAX_LOGGED_REQUESTS = 1000


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    name: str  # the emulator's endpoint name (Google, Graph) or EWS operation (Exchange)
    body: bytes


class RequestLog:
    def __init__(self, limit: int = MAX_LOGGED_REQUESTS) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)

    def record(self, method: str, path: str, name: str, body: bytes) -> None:
        with self._lock:
            self._entries.append(LoggedRequest(method, path, name, body))

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
