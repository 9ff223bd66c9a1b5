"""NetSuite clients: REST Record API with OAuth 2.0 client credentials (default), or SuiteTalk SOAP
with Token-Based Authentication (`NETSUITE_TRANSPORT=soap`).

REST (`NetSuiteOAuth2`): the machine-to-machine flow — a JWT `client_assertion` signed with the
private key of the certificate uploaded to the integration (`kid` = the certificate id, PS256 by
default), exchanged at `/services/rest/auth/oauth2/v1/token` for a 60-minute bearer token; no
refresh token: a new assertion is signed when the token is about to expire or is refused.

SOAP (`passport`): no login call; every request carries a fresh `tokenPassport` (account,
consumer key, token id, nonce, timestamp, HMAC-SHA256 signature keyed by
`consumerSecret&tokenSecret`).  A `ExceededConcurrentRequestLimitFault` is retried like a 429.

Both share the account's concurrency limit (`NETSUITE_CONCURRENCY`, default 4 of the Standard
tier's 5, so one slot stays free for the account's other integrations): a `ConcurrencyLimiter` in
the client caps requests in flight, and the publisher's worker pool is no larger.
"""
from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import time
from decimal import Decimal
from typing import Mapping
from xml.etree import ElementTree as ET

from finance_pipeline.http import ApiClient, ApiError, ConcurrencyLimiter, RetryPolicy
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.netsuite import wire
from finance_pipeline.platforms.netsuite.wire import q
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.netsuite")

TRANSPORTS = ("rest", "soap")
DEFAULT_CONCURRENCY = 4
REST_ENV = ("NETSUITE_ACCOUNT_ID", "NETSUITE_CLIENT_ID", "NETSUITE_CERTIFICATE_ID", "NETSUITE_PRIVATE_KEY_FILE")
SOAP_ENV = ("NETSUITE_ACCOUNT_ID", "NETSUITE_CONSUMER_KEY", "NETSUITE_CONSUMER_SECRET", "NETSUITE_TOKEN_ID",
            "NETSUITE_TOKEN_SECRET")
REFERENCE_ENV = ("NETSUITE_SUBSIDIARY_ID", "NETSUITE_ITEM_GOODS_ID", "NETSUITE_ITEM_SHIPPING_ID",
                 "NETSUITE_CURRENCY_IDS", "NETSUITE_TAXCODE_IDS")


def transport() -> str:
    value = (env("NETSUITE_TRANSPORT") or "rest").strip().lower()
    if value not in TRANSPORTS:
        raise SettingsError(f"NETSUITE_TRANSPORT={value!r}: use 'rest' (default, REST Record API + OAuth 2.0) or "
                            "'soap' (SuiteTalk SOAP 2025.2 + TBA; removed by Oracle in 2028.2).")
    return value


def concurrency() -> int:
    raw = env("NETSUITE_CONCURRENCY") or str(DEFAULT_CONCURRENCY)
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"NETSUITE_CONCURRENCY={raw!r}: a positive integer (the account's limit or less)")
    return int(raw)


def account_host(account_id: str) -> str:
    return account_id.lower().replace("_", "-")


def live_connection(settings: Settings) -> Connection:
    wanted = (SOAP_ENV if transport() == "soap" else REST_ENV) + REFERENCE_ENV
    missing = [name for name in wanted if not env(name)]
    if missing:
        raise SettingsError(
            f"NetSuite live mode ({transport()}) needs {', '.join(missing)} (missing). REST: create an integration "
            "record with OAuth 2.0 client credentials, upload a certificate (Setup > Integration > OAuth 2.0 Client "
            "Credentials) and set NETSUITE_CLIENT_ID, NETSUITE_CERTIFICATE_ID and NETSUITE_PRIVATE_KEY_FILE (the "
            "certificate's private key, PEM). SOAP: token-based authentication, NETSUITE_CONSUMER_KEY/SECRET and "
            "NETSUITE_TOKEN_ID/SECRET. Both: NETSUITE_ACCOUNT_ID (e.g. 1234567 or 1234567_SB1), and the internal "
            "ids NETSUITE_SUBSIDIARY_ID, NETSUITE_ITEM_GOODS_ID, NETSUITE_ITEM_SHIPPING_ID, NETSUITE_CURRENCY_IDS "
            "(GBP:1,USD:2,...) and NETSUITE_TAXCODE_IDS (standard:..,reduced:..,zero:..,eu_reverse_charge:..,"
            "export:..).")
    account = env("NETSUITE_ACCOUNT_ID") or ""
    host = f"https://{account_host(account)}.suitetalk.api.netsuite.com"
    creds: dict[str, Secret | str] = {
        "account_id": account, "rest_url": host, "soap_url": f"{host}{wire.SOAP_PATH}",
        "token_url": f"{host}{wire.TOKEN_PATH}",
        "subsidiary": env("NETSUITE_SUBSIDIARY_ID") or "", "item_goods": env("NETSUITE_ITEM_GOODS_ID") or "",
        "item_shipping": env("NETSUITE_ITEM_SHIPPING_ID") or "", "currency_ids": env("NETSUITE_CURRENCY_IDS") or "",
        "taxcode_ids": env("NETSUITE_TAXCODE_IDS") or "",
    }
    if transport() == "rest":
        path = env("NETSUITE_PRIVATE_KEY_FILE") or ""
        try:
            key = open(path).read()
        except OSError as exc:
            raise SettingsError(f"NETSUITE_PRIVATE_KEY_FILE={path!r} cannot be read ({exc.strerror})") from None
        creds.update({"client_id": env("NETSUITE_CLIENT_ID") or "", "certificate_id": env("NETSUITE_CERTIFICATE_ID")
                      or "", "private_key": Secret(key, "NETSUITE_PRIVATE_KEY_FILE")})
    else:
        for name in ("consumer_key", "consumer_secret", "token_id", "token_secret"):
            var = f"NETSUITE_{name.upper()}"
            creds[name] = Secret(env(var) or "", var)
    return Connection("netsuite", host, creds, settings)


class NetSuiteOAuth2:
    """`Auth` for the REST client: bearer tokens from signed client assertions."""

    def __init__(self, connection: Connection, *, algorithm: str = "PS256", margin_s: float = 120.0) -> None:
        self.connection = connection
        self.token_url = connection.secret("token_url")
        self.algorithm = algorithm
        self.margin_s = margin_s
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0
        self._http = ApiClient("netsuite-auth", self.token_url, timeout_s=connection.settings.http_timeout_s,
                               retry=RetryPolicy(max_attempts=connection.settings.http_max_attempts))

    def assertion(self) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": self.connection.secret("client_id"), "scope": ["rest_webservices"], "aud": self.token_url,
                  "iat": now, "exp": now + 3600, "jti": secrets.token_hex(16)}
        return jwt.encode(claims, self.connection.secret("private_key"), algorithm=self.algorithm,
                          headers={"kid": self.connection.secret("certificate_id"), "typ": "JWT"})

    def _exchange(self) -> None:
        try:
            body = self._http.request("POST", self.token_url, data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self.assertion()}, idempotent=True).json()
        except ApiError as exc:
            if exc.status in (400, 401):
                raise SettingsError("NetSuite refused the OAuth 2.0 client assertion: check NETSUITE_CLIENT_ID, "
                                    "NETSUITE_CERTIFICATE_ID and the key in NETSUITE_PRIVATE_KEY_FILE (the "
                                    "certificate must be active for the integration, scope rest_webservices).") \
                    from None
            raise
        self._token = body["access_token"]
        register_secret(self._token)
        self._expires = time.time() + int(body.get("expires_in", 3600))
        self.exchanges += 1

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or time.time() > self._expires - self.margin_s:
                self._exchange()
            return {"Authorization": f"Bearer {self._token}"}

    def refresh(self) -> bool:
        with self._lock:
            self._exchange()
        return True

    def close(self) -> None:
        self._http.close()


def make_rest_client(connection: Connection, workers: int) -> ApiClient:
    settings = connection.settings
    return ApiClient("netsuite", f"{connection.secret('rest_url').rstrip('/')}{wire.REST_RECORD}",
                     auth=NetSuiteOAuth2(connection), limiter=ConcurrencyLimiter(workers),
                     retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
                     default_headers={"Accept": "application/json"}, max_connections=workers,
                     json_loads=functools.partial(json.loads, parse_float=Decimal))


# -- SOAP ------------------------------------------------------------------------------------------
def passport(connection: Connection) -> ET.Element:
    """A fresh tokenPassport (new nonce and timestamp for every request)."""
    account = connection.secret("account_id")
    consumer, token = connection.secret("consumer_key"), connection.secret("token_id")
    nonce, ts = secrets.token_hex(16), str(int(time.time()))
    el = ET.Element(q("messages", "tokenPassport"))
    for name, value in (("account", account), ("consumerKey", consumer), ("token", token), ("nonce", nonce),
                        ("timestamp", ts)):
        ET.SubElement(el, q("core", name)).text = value
    sig = ET.SubElement(el, q("core", "signature"), {"algorithm": "HMAC-SHA256"})
    sig.text = wire.tba_signature(account, consumer, token, nonce, ts, connection.secret("consumer_secret"),
                                  connection.secret("token_secret"))
    return el


def envelope(connection: Connection, operation: ET.Element) -> bytes:
    env_el = ET.Element(q("soapenv", "Envelope"))
    ET.SubElement(env_el, q("soapenv", "Header")).append(passport(connection))
    ET.SubElement(env_el, q("soapenv", "Body")).append(operation)
    return ET.tostring(env_el, xml_declaration=True, encoding="utf-8")


def fault(body: bytes) -> tuple[str, str] | None:
    """(fault name, code) of a SOAP fault answer, or None."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    el = root.find(f".//{q('soapenv', 'Fault')}")
    if el is None:
        return None
    detail = el.find("detail")
    if detail is None or not len(detail):
        return ("Fault", (el.findtext("faultstring") or "").strip())
    inner = detail[0]
    return inner.tag.split("}")[-1], (inner.findtext(q("faults", "code")) or "").strip()


class SoapClient:
    """SuiteTalk SOAP calls.  Every attempt is a new envelope with a new passport (NetSuite refuses a
    nonce it has seen), so retries happen here rather than inside ApiClient: over the concurrency
    limit (`WS_REQUEST_BLOCKED`), 5xx without a fault, timeouts.  Only list operations keyed by
    externalId (upsertList, getList) are sent, so a replay never duplicates anything."""

    def __init__(self, connection: Connection, workers: int) -> None:
        settings = connection.settings
        self.connection = connection
        self.url = connection.secret("soap_url")
        self.retry = RetryPolicy(max_attempts=settings.http_max_attempts)
        self.http = ApiClient("netsuite-soap", self.url, limiter=ConcurrencyLimiter(workers),
                              retry=RetryPolicy(max_attempts=1), timeout_s=settings.http_timeout_s,
                              max_connections=workers)
        self.stats = self.http.stats

    def call(self, operation: str, children: list[ET.Element]) -> ET.Element:
        op = ET.Element(q("messages", operation))
        op.extend(children)
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self.http.request("POST", self.url, content=envelope(self.connection, op), headers={
                    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": operation}, idempotent=True,
                    expect_json=False)
                break
            except ApiError as exc:
                found = fault(exc.body.encode()) if exc.body else None
                if found and found[1] == "INVALID_LOGIN_ATTEMPT":
                    raise SettingsError("NetSuite refused the token-based authentication passport "
                                        "(INVALID_LOGIN_ATTEMPT): check NETSUITE_ACCOUNT_ID, NETSUITE_CONSUMER_KEY/"
                                        "SECRET and NETSUITE_TOKEN_ID/SECRET.") from None
                retryable = (exc.status is None or exc.status == 429
                             or (exc.status >= 500 and (found is None or found[1] == "WS_REQUEST_BLOCKED")))
                if not retryable or attempt >= self.retry.max_attempts:
                    raise
                self.stats["retries"] += 1
                time.sleep(self.retry.backoff(attempt))
        root = ET.fromstring(resp.content)
        body = root.find(q("soapenv", "Body"))
        if body is None or not len(body):
            raise ApiError("netsuite", "POST", self.url, resp.status, "SOAP answer without a body")
        return body[0]

    def close(self) -> None:
        self.http.close()
