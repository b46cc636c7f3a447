"""The one check every adapter puts a provider's "open in the web calendar" link through.

A provider payload is untrusted, and this link ends up in an ``href`` the user clicks. So only an
absolute https URL with a host is kept; anything else becomes None, never an error: a bad link must
not stop the event itself from syncing.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Longer than any link a provider builds, and than what some browsers accept.
MAX_WEB_URL_LENGTH = 2048
# RFC 3986's unreserved and reserved characters and '%': a link the provider built is percent-encoded
# ASCII. This leaves out whitespace, control and format characters (bidi overrides), non-ASCII,
# backslashes (browsers read them as '/'), quotes and angle brackets.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def safe_web_url(value: object) -> str | None:
    """``value`` if it is an absolute https URL with a host, at most 2048 plain characters; else None."""
    if not isinstance(value, str) or len(value) > MAX_WEB_URL_LENGTH:
        return None
    if not _URL_CHARACTERS.fullmatch(value):
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0  # reading .port raises on a malformed one
    except ValueError:
        return None
    # A user part ("https://bank.example@evil.example/") only serves to disguise the real host.
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or not port_ok:
        return None
    return value
