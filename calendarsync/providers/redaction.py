"""Secrets out of log lines, and provider error codes we may store (issue #13, finding 8).

A provider's error body or message may echo what it was sent: tokens, passwords, credentials.
Such text only ever reaches the debug log, through ``redact``; what is stored and shown is our
own wording plus the provider's error code, accepted only when ``error_code`` finds it a short
plain token.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"
# A value named like a secret: access_token=..., "refresh_token": "...", password: ..., etc. The
# name is a whole run of name characters (possessive, never started inside a run) ending in one of
# the secret words, so a provider's body costs one pass however it is shaped.
_SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "apikey",
    "api_key",
    "api-key",
    "assertion",
    "code_verifier",
)
_NAMED_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])(?P<name>[A-Za-z0-9_-]++)"
    + "(?:"
    + "|".join(f"(?<={word})" for word in _SECRET_WORDS)
    + ")"
    + r"""(?P<sep>["']?\s*+[:=]\s*+)(?P<value>"[^"]*+"|'[^']*+'|[^\s&,;"'<>{}\[\]]++)"""
)
# Credentials after an authentication scheme (an echoed Authorization header).
_SCHEME_CREDENTIALS = re.compile(r"(?i)\b(?P<scheme>Bearer|Basic|NTLM|Negotiate)\s++[A-Za-z0-9._~+/=-]++")
# JWTs, Google access and refresh tokens.
_KNOWN_TOKENS = re.compile(
    r"\beyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]++(?:\.[A-Za-z0-9_-]*+)?|\bya29\.[A-Za-z0-9._-]++|\b1//[A-Za-z0-9._-]++"
)
# Long base64-like runs with upper case, lower case and digits (keys, tokens, signatures).
_LONG_RUN = re.compile(r"[A-Za-z0-9+/_=-]{40,}")
# A provider's error code as we store it: Google's reason, Graph's error.code, an EWS ResponseCode,
# a token endpoint's error, an HTTP status.
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _mixed(run: str) -> bool:
    return any(c.isdigit() for c in run) and any(c.islower() for c in run) and any(c.isupper() for c in run)


def _named_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{match.group('sep')}{quote}{REDACTED}{quote}"


def redact(text: object) -> str:
    """``text`` for a log line: secret-named values, credentials, JWTs and token-like runs replaced."""
    cleaned = _NAMED_VALUE.sub(_named_value, str(text))
    cleaned = _SCHEME_CREDENTIALS.sub(lambda match: f"{match.group('scheme')} {REDACTED}", cleaned)
    cleaned = _KNOWN_TOKENS.sub(REDACTED, cleaned)
    return _LONG_RUN.sub(lambda match: REDACTED if _mixed(match.group()) else match.group(), cleaned)


def error_code(code: object) -> str | None:
    """The provider's error code if it is a short plain token that hides no secret, else None."""
    if isinstance(code, bool) or not isinstance(code, str | int):
        return None
    text = str(code).strip()
    if not _CODE.fullmatch(text) or redact(text) != text:
        return None
    return text


__all__ = ["REDACTED", "error_code", "redact"]
