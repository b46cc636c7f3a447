"""The Microsoft identity platform (v2.0 endpoints), emulated: discovery, consent page, token endpoint.

https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow
The consent page stands in for login.microsoftonline.com: a person (or a browser test) picks
the emulated account, unticks permissions if they like, and presses Allow or Deny.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import urllib.parse
import uuid

from calendarsync.emulators.google_http import (
    JsonDict,
    Request,
    Response,
    html_page,
    html_response,
    json_response,
    redirect,
)
from calendarsync.emulators.microsoft_state import (
    AUTHORIZATION_CODE_LIFETIME,
    GRAPH_RESOURCE,
    OIDC_SCOPES,
    TENANT_ID,
    AuthorizationCode,
    MicrosoftState,
    OAuthClient,
    normalize_scope,
    now,
    random_token,
)

TENANTS = ("common", "organizations", TENANT_ID)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "client_info",
)
_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned_jwt(claims: JsonDict) -> str:
    # msal decodes the id_token without checking its signature (msal >= 1.38, verified here).
    header = _b64url(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def issuer(base_url: str) -> str:
    return f"{base_url}/{TENANT_ID}/v2.0"


def redirect_uri_allowed(client: OAuthClient, uri: str) -> bool:
    if client.redirect_uris is not None:
        return uri in client.redirect_uris
    parsed = urllib.parse.urlsplit(uri)
    return parsed.scheme in ("http", "https") and parsed.hostname in LOOPBACK_HOSTS


def _with_query(uri: str, params: dict[str, str]) -> str:
    parsed = urllib.parse.urlsplit(uri)
    query = parsed.query + ("&" if parsed.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parsed._replace(query=query))


def _aad_error(error: str, code: int, description: str, status: int = 400) -> Response:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": now().strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return json_response(body, status, _NO_STORE)


def _error_page(title: str, detail: str, status: int = 400) -> Response:
    body = f"<h1>{html.escape(title)}</h1>\n<p class='error'>{html.escape(detail)}</p>"
    return html_response(html_page(title, body), status)


def graph_scopes(scopes: list[str]) -> list[str]:
    return [scope for scope in scopes if scope not in OIDC_SCOPES]


class IdentityEndpoints:
    def __init__(self, state: MicrosoftState) -> None:
        self.state = state
        # Where the discovery document sends browsers to sign in; None: this server itself.
        self.authorize_base_url: str | None = None

    # -- discovery -----------------------------------------------------------------------------

    def discovery(self, req: Request, tenant: str) -> Response:
        if tenant not in TENANTS:
            return _aad_error("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = req.base_url
        login = self.authorize_base_url or base
        return json_response(
            {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer(base),
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{login}/{tenant}/oauth2/v2.0/authorize",
                "end_session_endpoint": f"{login}/{tenant}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "oid",
                ],
                "tenant_region_scope": "EU",
            }
        )

    @staticmethod
    def keys() -> Response:
        return json_response({"keys": []})

    # -- tokens ------------------------------------------------------------------------------

    def token_response(
        self,
        base_url: str,
        email: str,
        client_id: str,
        scopes: list[str],
        *,
        nonce: str | None = None,
        client_info: bool = True,
    ) -> JsonDict:
        """Mint tokens for a grant: a refresh token with offline_access, an id_token with openid."""
        user = self.state.user(email)
        resource_scopes = graph_scopes(scopes)
        access = self.state.issue_access_token(user.email, client_id, resource_scopes)
        response: JsonDict = {
            "token_type": "Bearer",
            "scope": " ".join(
                [GRAPH_RESOURCE + scope for scope in resource_scopes]
                + [scope for scope in ("openid", "profile", "email") if scope in scopes]
            ),
            "expires_in": int((access.expires_at - now()).total_seconds()),
            "ext_expires_in": int((access.expires_at - now()).total_seconds()),
            "access_token": access.token,
        }
        if "offline_access" in scopes:
            response["refresh_token"] = self.state.issue_refresh_token(user.email, client_id, scopes).token
        if "openid" in scopes:
            issued = int(now().timestamp())
            claims: JsonDict = {
                "ver": "2.0",
                "iss": issuer(base_url),
                "sub": _b64url(hashlib.sha256(f"{user.oid}|{client_id}".encode()).digest()),
                "aud": client_id,
                "exp": issued + 3600,
                "iat": issued,
                "nbf": issued,
                "name": user.display_name,
                "preferred_username": user.email,
                "oid": user.oid,
                "tid": TENANT_ID,
            }
            if nonce:
                claims["nonce"] = nonce
            response["id_token"] = unsigned_jwt(claims)
        if client_info:
            response["client_info"] = _b64url(json.dumps({"uid": user.oid, "utid": TENANT_ID}).encode())
        return response

    def _client(self, req: Request, form: dict[str, list[str]]) -> OAuthClient | Response:
        client_id = (form.get("client_id") or [""])[0]
        client_secret = (form.get("client_secret") or [""])[0]
        authorization = req.header("authorization") or ""
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return _aad_error("invalid_client", 7000215, "Invalid client secret provided.", 401)
            basic_id, _, basic_secret = decoded.partition(":")
            client_id = urllib.parse.unquote_plus(basic_id)
            client_secret = urllib.parse.unquote_plus(basic_secret)
        client = self.state.clients.get(client_id)
        if client is None:
            return _aad_error(
                "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found."
            )
        if client.client_secret != client_secret:
            return _aad_error("invalid_client", 7000215, "Invalid client secret provided.", 401)
        return client

    def token(self, req: Request, tenant: str) -> Response:
        if tenant not in TENANTS:
            return _aad_error("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if req.method != "POST":
            return _aad_error("invalid_request", 900561, "The endpoint only accepts POST requests.")
        form = req.form()

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        client = self._client(req, form)
        if isinstance(client, Response):
            return client
        client_info = field("client_info") == "1"
        grant_type = field("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(req, client, form, client_info)
        if grant_type == "refresh_token":
            grant = self.state.refresh_grants.get(field("refresh_token"))
            if grant is None or grant.client_id != client.client_id:
                return _aad_error(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            if grant.revoked:
                return _aad_error(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
                )
            # Microsoft rotates refresh tokens; the old one keeps working until it expires.
            return json_response(
                self.token_response(
                    req.base_url, grant.email, client.client_id, grant.scopes, client_info=client_info
                ),
                headers=_NO_STORE,
            )
        return _aad_error(
            "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
        )

    def _exchange_code(
        self, req: Request, client: OAuthClient, form: dict[str, list[str]], client_info: bool
    ) -> Response:
        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        record = self.state.codes.get(field("code"))
        if record is None or record.client_id != client.client_id or record.expires_at < now():
            return _aad_error(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity.",
            )
        if record.used:
            return _aad_error("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
        if field("redirect_uri") != record.redirect_uri:
            return _aad_error(
                "invalid_grant",
                500112,
                "The reply address does not match the reply address of the authorization request.",
            )
        if record.code_challenge:
            verifier = field("code_verifier")
            expected = (
                _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
                if record.code_challenge_method == "S256"
                else verifier
            )
            if not verifier or expected != record.code_challenge:
                return _aad_error(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        record.used = True
        return json_response(
            self.token_response(
                req.base_url,
                record.email,
                client.client_id,
                record.scopes,
                nonce=record.nonce,
                client_info=client_info,
            ),
            headers=_NO_STORE,
        )

    # -- consent page ------------------------------------------------------------------------

    def authorize(self, req: Request, tenant: str) -> Response:
        params = self._auth_params(req)
        if tenant not in TENANTS:
            return _error_page("AADSTS90002", f"Tenant '{tenant}' not found.")
        client = self.state.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page(
                "AADSTS700016", f"Application with identifier '{params.get('client_id', '')}' was not found."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri_allowed(client, redirect_uri):
            return _error_page(
                "AADSTS50011",
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                "URIs configured for the application.",
            )
        if params.get("response_type") != "code":
            return _error_page("AADSTS700054", "response_type 'code' is the only one the emulator supports.")
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in (
            "plain",
            "S256",
        ):
            return _error_page("AADSTS501491", "Invalid code_challenge_method.")
        if req.method == "POST":
            return self._decide(req, params, client, redirect_uri)
        return html_response(self._consent_page(req, params, tenant))

    @staticmethod
    def _auth_params(req: Request) -> dict[str, str]:
        source: dict[str, list[str]] = req.form() if req.method == "POST" else req.query
        params = {name: source[name][0] for name in AUTH_PARAMS if source.get(name)}
        requested = source.get("requested_scope" if req.method == "POST" else "scope") or [""]
        params["requested_scope"] = requested[0]
        return params

    def _consent_page(self, req: Request, params: dict[str, str], tenant: str) -> str:
        escape = html.escape
        hint = (req.arg("login_hint") or "").strip().lower()
        users = list(self.state.users)
        selected = hint if hint in users else (users[0] if users else "")
        hidden = "".join(
            f"<input type='hidden' name='{escape(name)}' value='{escape(value)}'>\n"
            for name, value in params.items()
        )
        options = "".join(
            f"<option value='{escape(email)}'{' selected' if email == selected else ''}>{escape(email)}</option>"
            for email in users
        )
        scopes = "".join(
            f"<label><input type='checkbox' name='scope' value='{escape(scope)}' checked> {escape(scope)}</label>\n"
            for scope in params["requested_scope"].split()
        )
        redirect_host = urllib.parse.urlsplit(params.get("redirect_uri", "")).netloc
        body = f"""<h1>Sign in with Microsoft (emulator)</h1>
<p><strong>{escape(params.get("client_id", ""))}</strong> wants to access your Microsoft 365 account
and will send you back to <code>{escape(redirect_host)}</code>.</p>
<form method="post" action="{escape(req.script_name)}/{escape(tenant)}/oauth2/v2.0/authorize">
{hidden}<fieldset><legend>Pick an account</legend>
<label>Account <select name="email">{options}</select></label>
<label>Or sign in as <input type="email" name="login_hint" value="{escape(hint)}"
 placeholder="someone@example.com"></label>
</fieldset>
<fieldset><legend>Permissions requested</legend>
{scopes}</fieldset>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"""
        return html_page("Sign in to your account (Microsoft emulator)", body)

    def _decide(
        self, req: Request, params: dict[str, str], client: OAuthClient, redirect_uri: str
    ) -> Response:
        form = req.form()

        def field(name: str) -> str:
            return (form.get(name) or [""])[0].strip()

        requested = params["requested_scope"].split()
        granted = [normalize_scope(scope) for scope in form.get("scope", []) if scope in requested]
        reply: dict[str, str] = {}
        if field("decision") != "allow" or not granted:
            reply["error"] = "access_denied"
            reply["error_description"] = "AADSTS65004: User declined to consent to access the app."
        else:
            email = (field("login_hint") or field("email")).lower()
            if not email:
                return _error_page("AADSTS900144", "Pick an account or enter an e-mail address.")
            try:
                user = self.state.add_user(email) if email not in self.state.users else self.state.user(email)
            except ValueError as error:
                return _error_page("AADSTS900144", str(error))
            code = random_token("M.C107_BAY.2.U.emu-")
            challenge = params.get("code_challenge")
            self.state.codes[code] = AuthorizationCode(
                code=code,
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                email=user.email,
                scopes=granted,
                code_challenge=challenge,
                code_challenge_method=(params.get("code_challenge_method") or "plain") if challenge else None,
                nonce=params.get("nonce"),
                expires_at=now() + AUTHORIZATION_CODE_LIFETIME,
            )
            reply["code"] = code
            if params.get("client_info") == "1":
                reply["client_info"] = _b64url(json.dumps({"uid": user.oid, "utid": TENANT_ID}).encode())
            reply["session_state"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user.email}|{now().date()}"))
        if "state" in params:
            reply["state"] = params["state"]
        return redirect(_with_query(redirect_uri, reply))
