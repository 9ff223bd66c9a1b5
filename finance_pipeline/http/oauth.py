"""`Auth` from an OAuth 2.0 token endpoint that takes the client's id and secret as HTTP Basic and a
form body (client-credentials or refresh-token grant): one bearer token, cached and renewed a
margin before it expires or on a 401, never per request (the platforms throttle token minting)."""
from __future__ import annotations

import base64
import threading
import time
from typing import Mapping
from urllib.parse import urlencode

import httpx
import orjson

from finance_pipeline.http.client import ApiError, tls_context
from finance_pipeline.http.redaction import redact
from finance_pipeline.settings import Secret

ATTEMPTS = 6  # a token request is retried on network errors, 429 and 5xx, with a short back-off


class BasicTokenAuth:
    """`Auth` for ApiClient. `form` is the token request's body; `renew_before_s` the margin.
    `on_token(response)` is called after each token answer a subclass wants more from."""

    def __init__(self, platform: str, token_url: str, client_id: str, client_secret: str,
                 form: Mapping[str, str], *, renew_before_s: float, timeout_s: float = 30.0,
                 accept_json: bool = False) -> None:
        self.platform = platform
        self.token_url = token_url
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._basic = Secret(f"Basic {basic}", f"{platform}.basic_auth")
        self._form = urlencode(dict(form)).encode()  # a live refresh token in it is a registered Secret
        self._extra_headers = {"Accept": "application/json"} if accept_json else {}
        self._renew_before_s = renew_before_s
        self._timeout_s = timeout_s
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.minted = 0

    def _post(self) -> httpx.Response:
        # a connection per request: tokens last hours, so nothing is kept open between them
        with httpx.Client(timeout=self._timeout_s, verify=tls_context()) as http:
            return http.post(self.token_url, content=self._form, headers={
                "Authorization": self._basic.value, "Content-Type": "application/x-www-form-urlencoded",
                **self._extra_headers})

    def on_token(self, response: httpx.Response) -> None:
        """Hook: read more from a token answer (the default reads nothing)."""

    def _mint(self) -> None:
        last = ""
        for attempt in range(ATTEMPTS):
            try:
                resp = self._post()
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if resp.status_code == 200:
                    try:
                        data = orjson.loads(resp.content)
                        token, expires_in = data["access_token"], float(data["expires_in"])
                    except (ValueError, KeyError, TypeError):
                        last = "unreadable token answer"
                    else:
                        self._token = Secret(token, f"{self.platform}.access_token")
                        self._expires_at = time.monotonic() + expires_in - self._renew_before_s
                        self.minted += 1
                        self.on_token(resp)
                        return
                elif resp.status_code < 500 and resp.status_code != 429:
                    raise ApiError(self.platform, "POST", self.token_url, resp.status_code,
                                   redact(resp.content.decode("utf-8", "replace")))
                else:
                    last = f"HTTP {resp.status_code}"
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
        raise ApiError(self.platform, "POST", self.token_url, None, "", f"token request failed: {last}")

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._mint()
            return {"Authorization": f"Bearer {self._token.value}"}  # type: ignore[union-attr]

    def refresh(self) -> bool:
        """A 401: the access token expired early or was revoked; mint a new one once."""
        with self._lock:
            self._mint()
        return True

    def close(self) -> None:
        return None
