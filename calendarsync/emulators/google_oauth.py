"""Google's OAuth 2.0 endpoints, emulated: consent page, token, revoke, userinfo.

The consent page stands in for accounts.google.com: a person (or a browser test) picks the
emulated account, unticks scopes if they like, and presses Allow or Deny.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import urllib.parse

from calendarsync.emulators.google_http import (
    JsonDict,
    Request,
    Response,
    html_page,
    html_response,
    json_response,
    redirect,
)
from calendarsync.emulators.google_state import (
    AUTHORIZATION_CODE_LIFETIME,
    AuthorizationCode,
    EmulatorState,
    OAuthClient,
    Revocation,
    now,
    random_token,
)

ISSUER = "https://accounts.google.com"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "access_type",
    "prompt",
    "nonce",
    "include_granted_scopes",
)
_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned_id_token(claims: JsonDict) -> str:
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def redirect_uri_allowed(client: OAuthClient, uri: str) -> bool:
    if client.redirect_uris is not None:
        return uri in client.redirect_uris
    parsed = urllib.parse.urlsplit(uri)
    return parsed.scheme in ("http", "https") and parsed.hostname in LOOPBACK_HOSTS


def _with_query(uri: str, params: dict[str, str]) -> str:
    parsed = urllib.parse.urlsplit(uri)
    query = parsed.query + ("&" if parsed.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parsed._replace(query=query))


def _error_page(title: str, detail: str, status: int = 400) -> Response:
    body = f"<h1>{html.escape(title)}</h1>\n<p class='error'>{html.escape(detail)}</p>"
    return html_response(html_page(title, body), status)


def _token_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status, _NO_STORE)


class OAuthEndpoints:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- tokens ------------------------------------------------------------------------------

    def token_response(
        self,
        email: str,
        client_id: str,
        scopes: list[str],
        *,
        refresh_token: str | None,
        issue_refresh: bool,
        nonce: str | None = None,
    ) -> JsonDict:
        """Mint tokens for a grant; `issue_refresh` starts a new refresh token."""
        if issue_refresh:
            refresh_token = self.state.issue_refresh_token(email, client_id, scopes).token
        access = self.state.issue_access_token(email, client_id, scopes, refresh_token)
        response: JsonDict = {
            "access_token": access.token,
            "expires_in": int((access.expires_at - now()).total_seconds() + 0.5),
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if issue_refresh and refresh_token:
            response["refresh_token"] = refresh_token
        if "openid" in scopes:
            user = self.state.user(email)
            issued = int(now().timestamp())
            claims: JsonDict = {
                "iss": ISSUER,
                "azp": client_id,
                "aud": client_id,
                "sub": user.sub,
                "email": user.email,
                "email_verified": True,
                "iat": issued,
                "exp": issued + 3600,
            }
            if nonce:
                claims["nonce"] = nonce
            response["id_token"] = unsigned_id_token(claims)
        return response

    def _client_from_request(self, req: Request, form: dict[str, list[str]]) -> OAuthClient | Response:
        client_id = (form.get("client_id") or [""])[0]
        client_secret = (form.get("client_secret") or [""])[0]
        authorization = req.header("authorization") or ""
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return _token_error("invalid_client", "Unauthorized", 401)
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, client_secret = urllib.parse.unquote(basic_id), urllib.parse.unquote(basic_secret)
        client = self.state.clients.get(client_id)
        if client is None:
            return _token_error("invalid_client", "The OAuth client was not found.", 401)
        if client.client_secret != client_secret:
            return _token_error("invalid_client", "Unauthorized", 401)
        return client

    def token(self, req: Request) -> Response:
        if req.method != "POST":
            return _token_error("invalid_request", "Method Not Allowed", 405)
        form = req.form()

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        client = self._client_from_request(req, form)
        if isinstance(client, Response):
            return client
        grant_type = field("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(
                client, field("code"), field("redirect_uri"), form.get("code_verifier")
            )
        if grant_type == "refresh_token":
            grant = self.state.refresh_grants.get(field("refresh_token"))
            if grant is None or grant.revoked or grant.client_id != client.client_id:
                return _token_error("invalid_grant", "Token has been expired or revoked.")
            return json_response(
                self.token_response(
                    grant.email,
                    client.client_id,
                    grant.scopes,
                    refresh_token=grant.token,
                    issue_refresh=False,
                ),
                headers=_NO_STORE,
            )
        return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(
        self, client: OAuthClient, code: str, redirect_uri: str, verifiers: list[str] | None
    ) -> Response:
        record = self.state.codes.get(code)
        if record is None or record.used or record.client_id != client.client_id or record.expires_at < now():
            return _token_error("invalid_grant", "Bad Request")
        if redirect_uri != record.redirect_uri:
            return _token_error("redirect_uri_mismatch", "Bad Request")
        if record.code_challenge:
            verifier = (verifiers or [""])[0]
            if not verifier:
                return _token_error("invalid_grant", "Missing code verifier.")
            expected = (
                _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
                if record.code_challenge_method == "S256"
                else verifier
            )
            if expected != record.code_challenge:
                return _token_error("invalid_grant", "Invalid code verifier.")
        record.used = True
        return json_response(
            self.token_response(
                record.email,
                client.client_id,
                record.scopes,
                refresh_token=None,
                issue_refresh=record.offline,
                nonce=record.nonce,
            ),
            headers=_NO_STORE,
        )

    def revoke(self, req: Request) -> Response:
        """https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke: a refresh
        token takes its access tokens with it; an access token takes its refresh token along."""
        token = req.arg("token") or (req.form().get("token") or [""])[0]
        if token in self.state.refresh_grants:
            grant = self.state.refresh_grants[token]
            self.state.revoke_refresh_token(token)
            self._record_revocation("refresh_token", token, grant.email, grant.client_id)
        elif token in self.state.access_grants:
            access = self.state.access_grants[token]
            access.revoked = True
            if access.refresh_token:
                self.state.revoke_refresh_token(access.refresh_token)
            self._record_revocation("access_token", token, access.email, access.client_id)
        else:
            return _token_error("invalid_token", "Token expired or revoked")
        return json_response({})

    def _record_revocation(self, kind: str, token: str, email: str, client_id: str) -> None:
        self.state.revocations.append(
            Revocation(kind=kind, token=token, email=email, client_id=client_id, at=now())
        )

    def userinfo(self, req: Request) -> Response:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        grant = self.state.access_grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or not grant.usable():
            return json_response(
                {"error": "invalid_request", "error_description": "Invalid Credentials"},
                401,
                [("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"')],
            )
        user = self.state.user(grant.email)
        return json_response(
            {
                "id": user.sub,
                "sub": user.sub,
                "email": user.email,
                "verified_email": True,
                "email_verified": True,
                "picture": "",
            }
        )

    # -- consent page ------------------------------------------------------------------------

    def authorize(self, req: Request) -> Response:
        params = self._auth_params(req)
        client = self.state.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page("Error 401: invalid_client", "The OAuth client was not found.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri_allowed(client, redirect_uri):
            return _error_page(
                "Error 400: redirect_uri_mismatch",
                f"The redirect URI in the request, {redirect_uri}, does not match the ones authorized "
                "for the OAuth client.",
            )
        if params.get("response_type") != "code":
            return _error_page(
                "Error 400: unsupported_response_type", "Only response_type=code is supported."
            )
        method = params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else "")
        if method not in ("", "plain", "S256"):
            return _error_page("Error 400: invalid_request", "Invalid code_challenge_method.")
        if req.method == "POST":
            return self._decide(req, params, client, redirect_uri)
        return html_response(self._consent_page(req, params))

    @staticmethod
    def _auth_params(req: Request) -> dict[str, str]:
        source: dict[str, list[str]] = req.form() if req.method == "POST" else req.query
        params = {name: source[name][0] for name in AUTH_PARAMS if source.get(name)}
        requested = source.get("requested_scope" if req.method == "POST" else "scope") or [""]
        params["requested_scope"] = requested[0]
        return params

    def _consent_page(self, req: Request, params: dict[str, str]) -> str:
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
        body = f"""<h1>Sign in with Google (emulator)</h1>
<p><strong>{escape(params.get("client_id", ""))}</strong> wants to access your Google Account
and will send you back to <code>{escape(redirect_host)}</code>.</p>
<form method="post" action="{escape(req.script_name)}/o/oauth2/auth">
{hidden}<fieldset><legend>Choose an account</legend>
<label>Account <select name="email">{options}</select></label>
<label>Or sign in as <input type="email" name="login_hint" value="{escape(hint)}"
 placeholder="someone@example.com"></label>
</fieldset>
<fieldset><legend>This will allow the app to</legend>
{scopes}</fieldset>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"""
        return html_page("Sign in - Google Accounts (emulator)", body)

    def _decide(
        self, req: Request, params: dict[str, str], client: OAuthClient, redirect_uri: str
    ) -> Response:
        form = req.form()

        def field(name: str) -> str:
            return (form.get(name) or [""])[0].strip()

        reply: dict[str, str] = {}
        granted = [scope for scope in form.get("scope", []) if scope in params["requested_scope"].split()]
        if field("decision") != "allow" or not granted:
            reply["error"] = "access_denied"
        else:
            email = (field("login_hint") or field("email")).lower()
            if not email:
                return _error_page(
                    "Error 400: invalid_request", "Choose an account or enter an e-mail address."
                )
            try:
                user = self.state.add_user(email) if email not in self.state.users else self.state.user(email)
            except ValueError as error:
                return _error_page("Error 400: invalid_request", str(error))
            code = random_token("4/0Aemu-")
            self.state.codes[code] = _new_code(code, client, redirect_uri, user.email, granted, params)
            reply.update({"code": code, "scope": " ".join(granted), "authuser": "0", "prompt": "consent"})
        if "state" in params:
            reply["state"] = params["state"]
        return redirect(_with_query(redirect_uri, reply))


def _new_code(
    code: str, client: OAuthClient, redirect_uri: str, email: str, scopes: list[str], params: dict[str, str]
) -> AuthorizationCode:
    challenge = params.get("code_challenge")
    return AuthorizationCode(
        code=code,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        email=email,
        scopes=scopes,
        offline=params.get("access_type") == "offline",
        code_challenge=challenge,
        code_challenge_method=(params.get("code_challenge_method") or "plain") if challenge else None,
        nonce=params.get("nonce"),
        expires_at=now() + AUTHORIZATION_CODE_LIFETIME,
    )
