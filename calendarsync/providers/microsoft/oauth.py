"""Microsoft 365 sign-in (C3, C4) through msal: authorization code flow with PKCE and nonce.

https://learn.microsoft.com/en-us/entra/msal/python/getting-started/acquire-token-interactive
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow

``start_authorization`` returns msal's flow dict; the view keeps it in the session and hands it
back with the callback's query to ``finish_authorization`` (msal checks state, PKCE and nonce).
Every flow builds a fresh msal application: msal caches discovery and throttles repeated errors.
"""

from __future__ import annotations

import hmac
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msal
import requests
from django.conf import settings

from calendarsync.providers.base import InsufficientPermissions, ProviderError, TransientError
from calendarsync.providers.microsoft.common import format_expiry, graph_base_url
from calendarsync.providers.microsoft.errors import TokenRefreshFailed
from calendarsync.providers.redaction import redact

logger = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com/"

# Microsoft offers an app no way to revoke the delegated refresh tokens it holds
# (https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens#token-revocation);
# revokeSignInSessions needs admin-consented permissions and signs the user out of every app
# (https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions). So a disconnect forgets
# the tokens, and the user removes CalSync's consent in their account: (kind of account, page).
CONSENT_PAGES: tuple[tuple[str, str], ...] = (
    ("personal Microsoft account", "https://account.live.com/consent/Manage"),
    ("work or school account", "https://myapps.microsoft.com"),
)


class OAuthError(ProviderError):
    """The connect flow failed; the user can start it again."""


class ConsentDenied(OAuthError):
    """The user declined on Microsoft's consent screen."""


class StateMismatch(OAuthError):
    """The callback does not belong to the sign-in we started (state or nonce differ)."""


class InvalidGrant(OAuthError):
    """Microsoft refused the code: used twice, expired, or the PKCE verifier does not match."""


@dataclass(frozen=True, slots=True)
class GrantedTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expiry: datetime | None
    granted_scopes: tuple[str, ...]
    email: str

    def as_credentials(self, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The dict stored (encrypted) in ``CalendarAccount.credentials`` (see client.py)."""
        return {
            **(previous or {}),
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expiry": format_expiry(self.expiry),
            "scopes": list(self.granted_scopes),
        }


class MissingCalendarScope(InsufficientPermissions):
    """Sign-in worked but calendar access was not granted (C4); carries what was granted."""

    def __init__(self, tokens: GrantedTokens) -> None:
        super().__init__("Calendar access was not granted on Microsoft's consent screen")
        self.tokens = tokens


class _IdentitySession(requests.Session):
    """requests for msal with our CA bundle and timeout on every call.

    A ``verify`` given per request wins over the REQUESTS_CA_BUNDLE environment variable
    (a session's ``verify`` does not), so the emulator's test CA works wherever that is set.
    """

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout)
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def _msal_app() -> msal.ConfidentialClientApplication:
    """A fresh msal app for one flow or refresh (builds from the authority's discovery document)."""
    verify: str | bool = str(settings.MICROSOFT_CA_BUNDLE) or True
    try:
        return msal.ConfidentialClientApplication(
            settings.MICROSOFT_CLIENT_ID,
            client_credential=settings.MICROSOFT_CLIENT_SECRET,
            authority=settings.MICROSOFT_AUTHORITY,
            # Our authority may be a local emulator: do not ask login.microsoftonline.com about it.
            instance_discovery=False,
            http_client=_IdentitySession(verify, float(settings.CALSYNC_HTTP_TIMEOUT_SECONDS)),
            verify=verify,
            timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise TransientError("Microsoft sign-in could not be reached") from exc
    except ValueError as exc:  # msal: the discovery document is unavailable or malformed
        raise TransientError(f"Microsoft sign-in is not available ({str(exc)[:80]})") from exc


def normalized_scopes(raw: object) -> tuple[str, ...]:
    """Granted scopes without Graph's resource prefix ('https://graph.microsoft.com/Calendars.ReadWrite')."""
    scopes = raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
    return tuple(s[len(GRAPH_RESOURCE) :] if s.lower().startswith(GRAPH_RESOURCE) else s for s in scopes)


def has_scope(granted: tuple[str, ...], wanted: str) -> bool:
    return wanted.lower() in {scope.lower() for scope in granted}


def start_authorization(redirect_uri: str, *, login_hint: str | None = None) -> tuple[str, dict[str, Any]]:
    """The sign-in URL to send the user to, and msal's flow (state, PKCE verifier, nonce) to keep."""
    app = _msal_app()
    with warnings.catch_warnings():
        # msal recommends response_mode=form_post; that cross-site POST would arrive without our
        # SameSite=Lax session cookie, so the callback uses the query (still state + PKCE + nonce).
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
        flow = app.initiate_auth_code_flow(
            list(settings.MICROSOFT_SCOPES),
            redirect_uri=redirect_uri,
            login_hint=login_hint,
            prompt="select_account",
        )
    return str(flow["auth_uri"]), dict(flow)


def finish_authorization(flow: Mapping[str, Any], callback_params: Mapping[str, str]) -> GrantedTokens:
    """Exchange the callback's code for tokens (msal checks state, PKCE, nonce) and check C4."""
    if not flow or not flow.get("state") or not flow.get("code_verifier"):
        raise OAuthError("The sign-in session expired: please connect again")
    returned_state = str(callback_params.get("state", ""))
    if not hmac.compare_digest(returned_state.encode(), str(flow["state"]).encode()):
        raise StateMismatch("The Microsoft callback does not belong to this sign-in: please connect again")
    error = callback_params.get("error")
    if error:
        if error in ("access_denied", "consent_required"):
            raise ConsentDenied("Microsoft 365 access was not granted")
        raise OAuthError(f"Microsoft sign-in failed ({str(error)[:60]})", code=str(error))
    if not callback_params.get("code"):
        raise OAuthError("The Microsoft callback carries no authorization code")
    app = _msal_app()
    try:
        # https://learn.microsoft.com/en-us/python/api/msal/msal.application.clientapplication#msal-application-clientapplication-acquire-token-by-auth-code-flow
        result = app.acquire_token_by_auth_code_flow(dict(flow), dict(callback_params))
    except ValueError as exc:  # msal: state mismatch or a malformed flow
        raise StateMismatch("The Microsoft callback does not belong to this sign-in") from exc
    except RuntimeError as exc:  # msal: the id_token's nonce is not ours (a replayed code)
        raise StateMismatch("The Microsoft sign-in could not be verified") from exc
    except requests.RequestException as exc:
        raise TransientError("Microsoft sign-in could not be reached") from exc
    if "error" in result:
        if result["error"] == "invalid_grant":
            raise InvalidGrant("Microsoft refused the authorization code: please connect again")
        raise OAuthError(f"Microsoft sign-in failed ({str(result['error'])[:60]})", code=str(result["error"]))
    tokens = _granted(result, previous_refresh_token=None)
    if not has_scope(tokens.granted_scopes, settings.MICROSOFT_CALENDAR_SCOPE):
        raise MissingCalendarScope(tokens)
    return tokens


def _granted(result: Mapping[str, Any], previous_refresh_token: str | None) -> GrantedTokens:
    access_token = result.get("access_token")
    refresh_token = result.get("refresh_token") or previous_refresh_token
    if not access_token:
        raise OAuthError("Microsoft returned no access token")
    if not refresh_token:
        raise OAuthError("Microsoft returned no refresh token (offline access): please connect again")
    expires_in = result.get("expires_in")
    expiry = datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None
    claims = result.get("id_token_claims") or {}
    email = claims.get("preferred_username") or claims.get("email") or ""
    if previous_refresh_token is None and "@" not in str(email):
        email = fetch_email(str(access_token))
    return GrantedTokens(
        access_token=str(access_token),
        refresh_token=str(refresh_token),
        expiry=expiry,
        granted_scopes=normalized_scopes(result.get("scope")),
        email=str(email).lower(),
    )


def fetch_email(access_token: str) -> str:
    """The account's address from Graph's /me (when the id_token carries no preferred_username)."""
    try:
        # https://learn.microsoft.com/en-us/graph/api/user-get
        response = requests.get(
            graph_base_url() + "me",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise TransientError("Microsoft Graph could not be reached") from exc
    if response.status_code >= 500:
        raise TransientError(f"Microsoft Graph answered {response.status_code}", code=response.status_code)
    if response.status_code != 200:
        raise OAuthError(
            f"Microsoft Graph answered {response.status_code} for the account's address",
            code=response.status_code,
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise OAuthError("Microsoft Graph sent an unreadable answer") from exc
    email = data.get("mail") or data.get("userPrincipalName") if isinstance(data, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise OAuthError("Microsoft did not tell us the account's e-mail address")
    return email


def refresh_access_token(refresh_token: str) -> GrantedTokens:
    """New tokens for a stored refresh token; raises ``TokenRefreshFailed`` when Microsoft refuses."""
    app = _msal_app()
    try:
        # https://learn.microsoft.com/en-us/python/api/msal/msal.application.clientapplication#msal-application-clientapplication-acquire-token-by-refresh-token
        result = app.acquire_token_by_refresh_token(refresh_token, list(settings.MICROSOFT_SCOPES))
    except requests.HTTPError as exc:  # msal raises for 5xx from the token endpoint
        raise TokenRefreshFailed("temporarily_unavailable", str(exc)[:120]) from exc
    if "error" in result:
        description = str(result.get("error_description") or "")
        logger.warning("Microsoft token refresh refused: %s", redact(str(result["error"])[:60]))
        raise TokenRefreshFailed(str(result["error"]), description[:200])
    try:
        return _granted(result, previous_refresh_token=refresh_token)
    except OAuthError as exc:
        raise TokenRefreshFailed("invalid_grant", exc.message) from exc
