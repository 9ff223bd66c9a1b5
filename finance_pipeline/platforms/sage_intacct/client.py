"""Sage Intacct XML Web Services client: sender + user credentials, API sessions, the concurrency limit.

Live mode reads `INTACCT_SENDER_ID` / `INTACCT_SENDER_PASSWORD` (the Web Services licence's sender,
authorised by the company under Company > Security > Web Services authorizations),
`INTACCT_COMPANY_ID`, `INTACCT_USER_ID` / `INTACCT_USER_PASSWORD` (a Web Services-only user) and
optionally `INTACCT_ENTITY_ID` (a multi-entity company's entity) and `INTACCT_CONCURRENCY` (default 2:
the default performance tier's concurrent requests per company, shared with other integrations).

Every call goes through one `IntacctSession`: it signs in with `getAPISession` (the login is sent only
then), uses the returned session id and endpoint afterwards, and signs in again once when the gateway
says the session is no longer valid (sessions time out).  Requests in flight stay within the
company's concurrency entitlement (`ConcurrencyLimiter`); the gateway's `GW-0010` (HTTP 429) is
retried after a pause by `ApiClient`.  An unreadable answer to a read (cut short in transit) is
retried; to a write it is left to the caller (the publish protocol looks the record up first).
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Iterator
from xml.etree import ElementTree as ET

from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy
from finance_pipeline.http.ratelimit import ConcurrencyLimiter
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.settings import Settings, env, require_secret

log = logging.getLogger("finance_pipeline.sage_intacct")

LIVE_URL = "https://api.intacct.com"
DEFAULT_CONCURRENCY = 2
READ_ATTEMPTS = 5


class IntacctError(RuntimeError):
    """The gateway refused the request as a whole (control or authentication failure)."""

    def __init__(self, message: str, errorno: str = "") -> None:
        super().__init__(message)
        self.errorno = errorno


def live_connection(settings: Settings) -> Connection:
    how = "Ask your Intacct administrator for the Web Services sender credentials and a Web Services user"
    credentials = {
        "sender_id": require_secret("INTACCT_SENDER_ID", how), "sender_password": require_secret("INTACCT_SENDER_PASSWORD", how),
        "company_id": require_secret("INTACCT_COMPANY_ID", "Set it to the Intacct company id you sign in to"),
        "user_id": require_secret("INTACCT_USER_ID", how), "user_password": require_secret("INTACCT_USER_PASSWORD", how),
    }
    for name, key in (("INTACCT_ENTITY_ID", "entity_id"), ("INTACCT_CONCURRENCY", "concurrency")):
        if env(name):
            credentials[key] = env(name).strip()
    return Connection("sage_intacct", LIVE_URL, credentials, settings)


def make_client(connection: Connection) -> "IntacctSession":
    return IntacctSession(connection)


class IntacctSession:
    """One signed-in view of the company (thread-safe)."""

    def __init__(self, connection: Connection) -> None:
        settings = connection.settings
        self.connection = connection
        workers = int(connection.get("concurrency") or DEFAULT_CONCURRENCY)
        self.http = ApiClient(
            "sage_intacct", connection.base_url.rstrip("/"), limiter=ConcurrencyLimiter(workers),
            retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
            default_headers={"Content-Type": "application/xml", "Accept": "application/xml"},
        )
        self.sender = wire.Sender(connection.secret("sender_id"), connection.secret("sender_password"))
        self._lock = threading.Lock()
        self._session: tuple[str, str] | None = None  # (session id, endpoint path)
        self.stats = self.http.stats
        self.logins = 0

    def close(self) -> None:
        self.http.close()

    # -- sessions -------------------------------------------------------------------------------------
    def _login(self) -> tuple[str, str]:
        c = self.connection
        auth = wire.login_auth(c.secret("user_id"), c.secret("company_id"), c.secret("user_password"),
                               c.get("entity_id"))
        body = wire.request_xml(self.sender, auth, [wire.function("session", ET.Element("getAPISession"))],
                                controlid=f"session-{uuid.uuid4().hex[:12]}")
        answer = self._post(wire.PATH, body, read=True)
        if not answer.control_ok or not answer.auth_ok:
            raise IntacctError(f"Intacct sign-in failed: {'; '.join(map(str, answer.errors))}",
                               answer.errors[0].errorno if answer.errors else "")
        result = answer.results[0]
        if not result.ok or result.data is None:
            raise IntacctError(f"getAPISession failed: {result.message()}")
        sid = result.data.findtext("api/sessionid") or ""
        endpoint = result.data.findtext("api/endpoint") or wire.PATH
        path = "/" + endpoint.split("://", 1)[-1].split("/", 1)[-1] if "://" in endpoint else endpoint
        self.logins += 1
        return sid, path

    def _current(self, stale: tuple[str, str] | None = None) -> tuple[str, str]:
        with self._lock:
            if self._session is None or self._session == stale:
                self._session = self._login()
            return self._session

    # -- calls ------------------------------------------------------------------------------------------
    def _post(self, path: str, body: bytes, *, read: bool) -> wire.Answer:
        for attempt in range(1, READ_ATTEMPTS + 1):
            resp = self.http.request("POST", path, content=body, expect_json=False, idempotent=read,
                                     ok_statuses=())
            try:
                return wire.parse_answer(resp.content)
            except (ET.ParseError, wire.UnsafeXml) as exc:
                self.stats["bad_bodies"] += 1
                if not read or attempt == READ_ATTEMPTS:
                    raise ApiError("sage_intacct", "POST", path, resp.status, "", f"unreadable answer: {exc}") from exc
        raise AssertionError("unreachable")

    def call(self, functions: list[ET.Element], *, read: bool = True, controlid: str | None = None,
             uniqueid: bool = False) -> list[wire.Result]:
        """Send functions in one request with the session; the per-function results, in order."""
        session = self._current()
        for _ in range(2):
            body = wire.request_xml(self.sender, wire.session_auth(session[0]), functions,
                                    controlid=controlid or f"read-{uuid.uuid4().hex[:16]}", uniqueid=uniqueid)
            answer = self._post(session[1], body, read=read)
            if not answer.control_ok:
                raise IntacctError("; ".join(map(str, answer.errors)) or "control failure",
                                   answer.errors[0].errorno if answer.errors else "")
            if answer.auth_ok:
                return answer.results
            log.info("sage_intacct: session no longer valid (%s); signing in again",
                     "; ".join(map(str, answer.errors)))
            session = self._current(stale=session)
        raise IntacctError("Intacct refused the session twice after signing in again")

    def query(self, obj: str, query: str, *, page_size: int = 1000, fields: str = "*",
              restarts: int = 10) -> Iterator[list[dict]]:
        """readByQuery, then readMore with the resultId until numremaining is 0: one list of rows per page.

        readMore is a server-side cursor: a retried readMore whose first answer was lost (a timeout or
        a 5xx after the gateway moved the cursor) skips a page.  Each answer's `numremaining` must be
        the previous one less this page's `count`; on a gap the query starts again and rows already
        yielded (by RECORDNO) are left out."""
        seen: set[str] = set()
        for _ in range(restarts + 1):
            results = self.call([wire.function("q", wire.read_by_query(obj, query, page_size, fields))])
            expected: int | None = None
            while True:
                result = results[0]
                if not result.ok and expected is not None:  # the cursor expired or was used up: start again
                    log.warning("sage_intacct: readMore of %s failed (%s); querying again", obj, result.message())
                    self.stats["query_restarts"] += 1
                    break
                if not result.ok or result.data is None:
                    raise IntacctError(f"readByQuery {obj} failed: {result.message()}",
                                       result.errors[0].errorno if result.errors else "")
                data = result.data
                rows = [wire.record(el) for el in data.findall(obj)]
                remaining = int(data.get("numremaining") or 0)
                if expected is not None and remaining + len(rows) != expected:
                    log.warning("sage_intacct: readMore of %s skipped rows (a retried page); querying again", obj)
                    self.stats["query_restarts"] += 1
                    break
                fresh = [r for r in rows if r.get("RECORDNO") not in seen]
                seen.update(r.get("RECORDNO") for r in fresh if r.get("RECORDNO"))
                if fresh:
                    yield fresh
                if remaining <= 0:
                    return
                expected = remaining
                results = self.call([wire.function("more", wire.read_more(data.get("resultId") or ""))])
        raise IntacctError(f"readByQuery {obj}: pages kept being skipped after {restarts} restarts")
