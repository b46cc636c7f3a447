"""Google OAuth 2.0 connect flow (C3, C4): authorization code + PKCE, offline access.

https://developers.google.com/identity/protocols/oauth2/web-server

The view keeps ``state`` and ``code_verifier`` in the session between
``start_authorization`` and ``finish_authorization``. Plain-HTTP endpoints (the local
emulator) need ``OAUTHLIB_INSECURE_TRANSPORT=1`` in the environment: tests and local
development only, never production settings.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749 import errors as oauth_errors  # type: ignore[import-untyped]

from calendarsync.providers.base import InsufficientPermissions, ProviderError, TransientError
from calendarsync.providers.google.client import format_expiry, userinfo_uri


class OAuthError(ProviderError):
    """The connect flow failed; the user can start it again."""


class ConsentDenied(OAuthError):
    """The user declined on Google's consent screen."""


class StateMismatch(OAuthError):
    """The callback's ``state`` is not the one we issued (forged or stale callback)."""


class InvalidGrant(OAuthError):
    """Google refused the code: used twice, expired, or the PKCE verifier does not match."""


@dataclass(frozen=True, slots=True)
class GrantedTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expiry: datetime | None
    granted_scopes: tuple[str, ...]
    email: str

    def as_credentials(self) -> dict[str, Any]:
        """The dict stored (encrypted) in ``CalendarAccount.credentials`` (see client.py)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expiry": format_expiry(self.expiry),
            "scopes": list(self.granted_scopes),
        }


class MissingCalendarScope(InsufficientPermissions):
    """Sign-in worked but calendar access was not ticked (C4); carries what was granted.

    ``tokens`` lets the caller keep the account (shown as "Insufficient permissions");
    reconnecting with access fixes it.
    """

    def __init__(self, tokens: GrantedTokens) -> None:
        super().__init__("Calendar access was not granted on Google's consent screen")
        self.tokens = tokens


def _flow(redirect_uri: str, *, state: str | None = None, code_verifier: str | None = None) -> Any:
    client_config = {
        "web": {
            "client_id": settings.GOOGLE_CLIENT_ID,
            "client_secret": settings.GOOGLE_CLIENT_SECRET,
            "auth_uri": settings.GOOGLE_AUTH_URI,
            "token_uri": settings.GOOGLE_TOKEN_URI,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        client_config,
        scopes=list(settings.GOOGLE_SCOPES),
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
        autogenerate_code_verifier=True,
    )


def start_authorization(redirect_uri: str, *, login_hint: str | None = None) -> tuple[str, str, str]:
    """The consent URL to redirect the user to, and the ``state`` and PKCE ``code_verifier`` to keep."""
    flow = _flow(redirect_uri)
    extra = {"login_hint": login_hint} if login_hint else {}
    # offline + consent: always get a refresh token, also when the user connected before.
    auth_url, state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="true", **extra
    )
    return str(auth_url), str(state), str(flow.code_verifier)


def _callback_params(authorization_response_url: str) -> dict[str, str]:
    query = parse_qs(urlsplit(authorization_response_url).query)
    return {key: values[0] for key, values in query.items() if values}


def _scopes_of(token: Any, requested: list[str]) -> tuple[str, ...]:
    raw = token.get("scope") if hasattr(token, "get") else None
    if raw is None:
        return tuple(requested)  # RFC 6749, 5.1: omitted scope means "as requested"
    if isinstance(raw, str):
        return tuple(raw.split())
    return tuple(str(scope) for scope in raw)


def finish_authorization(
    redirect_uri: str, state: str, code_verifier: str, authorization_response_url: str
) -> GrantedTokens:
    """Exchange the callback's code for tokens and check calendar access was granted (C4)."""
    if not state or not code_verifier:
        raise OAuthError("The sign-in session expired (no state or PKCE verifier): please connect again")
    params = _callback_params(authorization_response_url)
    returned_state = params.get("state", "")
    if not hmac.compare_digest(returned_state.encode(), state.encode()):
        raise StateMismatch("The Google callback does not belong to this sign-in: please connect again")
    if "error" in params:
        if params["error"] == "access_denied":
            raise ConsentDenied("Google access was not granted")
        raise OAuthError(f"Google sign-in failed ({params['error'][:60]})", code=params["error"])
    if not params.get("code"):
        raise OAuthError("The Google callback carries no authorization code")

    flow = _flow(redirect_uri, state=state, code_verifier=code_verifier)
    requested = list(settings.GOOGLE_SCOPES)
    try:
        # https://developers.google.com/identity/protocols/oauth2/web-server#exchange-authorization-code
        token = flow.fetch_token(
            authorization_response=authorization_response_url, timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS
        )
    except oauth_errors.MismatchingStateError as exc:
        raise StateMismatch("The Google callback does not belong to this sign-in") from exc
    except oauth_errors.AccessDeniedError as exc:
        raise ConsentDenied("Google access was not granted") from exc
    except oauth_errors.InvalidGrantError as exc:
        raise InvalidGrant("Google refused the authorization code: please connect again") from exc
    except oauth_errors.OAuth2Error as exc:
        raise OAuthError(f"Google sign-in failed ({exc.error})", code=exc.error) from exc
    except requests.RequestException as exc:
        raise TransientError("Google sign-in could not be reached") from exc
    except Warning as scope_changed:
        # oauthlib raises (not warns) "Scope has changed" when the user granted fewer or
        # other scopes than requested (granular consent); the token rides on the warning.
        token = getattr(scope_changed, "token", None)
        if token is None:
            raise OAuthError("Google sign-in returned an unreadable token") from scope_changed

    granted = _scopes_of(token, requested)
    access_token = token.get("access_token")
    refresh_token = token.get("refresh_token")
    if not access_token:
        raise OAuthError("Google returned no access token")
    if not refresh_token:
        raise OAuthError("Google returned no refresh token (offline access): please connect again")
    expires_at = token.get("expires_at")
    tokens = GrantedTokens(
        access_token=str(access_token),
        refresh_token=str(refresh_token),
        expiry=datetime.fromtimestamp(float(expires_at), tz=UTC) if expires_at else None,
        granted_scopes=granted,
        email=_account_email(str(access_token), token.get("id_token")),
    )
    if settings.GOOGLE_CALENDAR_SCOPE not in granted:
        raise MissingCalendarScope(tokens)
    return tokens


def _account_email(access_token: str, id_token: object) -> str:
    try:
        return fetch_email(access_token)
    except OAuthError:
        # The ID token came straight from Google's token endpoint, so (OpenID Connect Core
        # 3.1.3.7) TLS stands in for checking its signature.
        email = _unverified_claims(id_token).get("email")
        if isinstance(email, str) and "@" in email:
            return email
        raise


def _unverified_claims(id_token: object) -> dict[str, Any]:
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def fetch_email(access_token: str) -> str:
    """The account's e-mail address from the OpenID Connect userinfo endpoint."""
    try:
        # https://developers.google.com/identity/openid-connect/openid-connect#obtaininguserprofileinformation
        response = requests.get(
            userinfo_uri(),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise TransientError("Google userinfo could not be reached") from exc
    if response.status_code >= 500:
        raise TransientError(f"Google userinfo answered {response.status_code}", code=response.status_code)
    if response.status_code != 200:
        raise OAuthError(f"Google userinfo answered {response.status_code}", code=response.status_code)
    try:
        email = response.json().get("email")
    except ValueError as exc:
        raise OAuthError("Google userinfo sent an unreadable answer") from exc
    if not isinstance(email, str) or "@" not in email:
        raise OAuthError("Google did not tell us the account's e-mail address")
    return email


def revoke_grant(credentials: Mapping[str, Any]) -> None:
    """Give the account's access back to Google (disconnect): revoking the refresh token ends its
    access tokens too; without one, the access token is revoked. Raises ``ProviderError``."""
    token = credentials.get("refresh_token") or credentials.get("access_token")
    if token:
        revoke(str(token))


def revoke(token: str) -> None:
    """Revoke a refresh or access token; an already invalid token counts as revoked."""
    try:
        # https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        response = requests.post(
            settings.GOOGLE_REVOKE_URI,
            data={"token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise TransientError("Google token revocation could not be reached") from exc
    if response.status_code >= 500:
        raise TransientError(
            f"Google token revocation answered {response.status_code}", code=response.status_code
        )
    if response.status_code not in (200, 400):  # 400 invalid_token: nothing left to revoke
        raise OAuthError(
            f"Google token revocation answered {response.status_code}", code=response.status_code
        )
