"""Microsoft Entra ID's v2.0 endpoints for an emulator of a Microsoft API (client credentials only).

`EntraIssuer(tenant_id, client_id, client_secret, scope)` gives the two routes MSAL calls —
`GET /{tenant}/v2.0/.well-known/openid-configuration` and `POST /{tenant}/oauth2/v2.0/token` —
with Entra's error bodies (`AADSTS…` codes), and `check(request)` for the API routes: the bearer
token must be one it issued and not expired.  Tokens live in memory (an emulator restart signs
everybody out, as a key rollover would).
"""
from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.sandbox.server import json_response

LOGIN_HOST = "https://login.microsoftonline.com"
TOKEN_TTL_S = 3599


class EntraIssuer:
    def __init__(self, tenant_id: str, client_id: str, client_secret: str, scope: str,
                 ttl_s: float = TOKEN_TTL_S) -> None:
        self.tenant_id, self.client_id, self.client_secret, self.scope = tenant_id, client_id, client_secret, scope
        self.ttl_s = ttl_s
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def routes(self) -> list[Route]:
        return [Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid, methods=["GET"]),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"])]

    async def _openid(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != self.tenant_id:
            return json_response({"error": "invalid_tenant",
                                  "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}, 400)
        base = f"{LOGIN_HOST}/{tenant}"
        return json_response({
            "issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "NA"})

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if request.path_params["tenant"] != self.tenant_id:
            return json_response({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."},
                                 400)
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "AADSTS70003: The app requested an unsupported grant type."},
                                 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client",
                                  "error_description": "AADSTS7000215: Invalid client secret provided."}, 401)
        if self.scope not in (form.get("scope") or "").split():
            return json_response({"error": "invalid_scope",
                                  "error_description": "AADSTS1002012: The provided value for scope is not valid."},
                                 400)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + self.ttl_s
            self.issued += 1
        return json_response({"token_type": "Bearer", "expires_in": int(self.ttl_s),
                              "ext_expires_in": int(self.ttl_s), "access_token": token})

    def valid(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token.strip())
        return scheme.lower() == "bearer" and expires is not None and expires > time.time()

    def expire_all(self) -> None:
        """Tests: every token issued so far is now expired (the next call gets 401)."""
        with self._lock:
            self._tokens = {t: 0.0 for t in self._tokens}
