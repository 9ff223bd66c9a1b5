"""PayPal REST emulator: OAuth client credentials, Transaction Search, Orders v2 `GET`, the
webhook signing certificate and `verify-webhook-signature`, and a webhook sender — the sandbox
world rendered as of the sandbox clock.

What it reproduces:
- **OAuth.**  `POST /v1/oauth2/token`, Basic client id/secret, `grant_type=client_credentials`
  -> a bearer token (`expires_in` 32400).  Unknown or expired bearer: 401 `invalid_token`.
- **Transaction Search.**  `start_date`/`end_date` required (RFC 3339, `Z` or `±HH:MM`), at most
  31 days apart (400 `INVALID_REQUEST`); `page_size` 1..500, `page` from 1, `total_pages`,
  `total_items`; `fields` (`transaction_info` by default, `all` adds payer and cart info);
  `transaction_type`, `transaction_id`, `transaction_status` filters.  Rows appear only after
  PayPal's reporting delay (up to 3 h), and `last_refreshed_datetime` says up to when the data is
  complete.  Dates in the account's zone written `+0000`; money `{currency_code, value}` strings,
  fees negative.
- **Orders v2.**  `GET /v2/checkout/orders/{id}`: purchase units with items (`unit_amount`, per
  unit `tax`, `quantity` as a string), the amount breakdown, captures with
  `seller_receivable_breakdown` and refunds, as of the clock.
- **Webhooks.**  Deliveries of `PAYMENT.CAPTURE.COMPLETED` / `PAYMENT.CAPTURE.REFUNDED` signed
  the PayPal way (SHA256withRSA over `transmission_id|time|webhook_id|crc32(body)`) with a key
  whose certificate is served at `/v1/notifications/certs/{id}`; the postback
  `POST /v1/notifications/verify-webhook-signature` answers SUCCESS / FAILURE.
- **Limits.**  PayPal publishes no numbers; a token bucket (`RATE_PER_S`, burst `BURST`) answers
  429 `RATE_LIMIT_REACHED` with `Retry-After` when exceeded.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
TOKEN_LIFETIME_S = 32_400
MAX_WINDOW = timedelta(days=31)
REPORTING_DELAY = timedelta(hours=3)
RATE_PER_S, BURST = 40.0, 40  # unpublished by PayPal; a modest per-app rate
ACCOUNT_ID = "6STWC2LSUYYYE"
MERCHANT_EMAIL = "accounts@curtains-sandbox.example"
SCOPES = ("https://uri.paypal.com/services/reporting/search/read "
          "https://uri.paypal.com/services/applications/verify-webhook-signature "
          "https://uri.paypal.com/services/payments/payment")
CERT_ID = "CERT-360caa42-fca2a594-sandbox01"


def pp_time(at: datetime) -> str:
    """Transaction Search style: the account's zone (UTC) with a `+0000` offset."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal, ccy: str = "GBP") -> dict[str, str]:
    return {"currency_code": ccy, "value": format(value.quantize(Decimal("0.01")), "f")}


def error(status: int, name: str, message: str, details: list[dict] | None = None,
          headers: dict | None = None) -> Response:
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": secrets.token_hex(7)}
    if details:
        body["details"] = details
    body["links"] = [{"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}]
    return json_response(body, status, headers=headers)


def parse_rfc3339(value: str) -> datetime:
    text = value.strip().replace(" ", "+")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "T" not in text or len(text) < 20 or (text[-6] not in "+-" or text[-3] != ":"):
        raise ValueError(value)
    return datetime.fromisoformat(text).astimezone(UTC)


def _rows(cur, sql: str, params: dict) -> list[dict]:
    res = cur.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r)) for r in res.fetchall()]


class SigningKey:
    """The key PayPal signs webhook deliveries with, and its certificate (generated once)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox.paypal.com"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal, Inc.")])
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


class PayPalEmulator(Emulator):
    """The sandbox business's PayPal account (GBP)."""

    name = "paypal"
    server_date_header = False  # the Date header is the sandbox clock

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        seed = sandbox.state().seed
        digest = hashlib.blake2b(f"paypal:{seed}".encode(), digest_size=30).hexdigest()
        self.client_id = f"AX{digest[:38]}"
        self.client_secret = f"EL{digest[38:60]}"
        self.webhook_id = f"WH-{digest[:4].upper()}7{digest[4:8].upper()}-{digest[8:25].upper()}"
        self.bucket = TokenBucket(RATE_PER_S, BURST, self.config.time_scale)
        self.signing = SigningKey()
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ base hooks
    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "webhook_id": self.webhook_id}

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return error(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.",
                         headers={"Retry-After": f"{1.0 / self.config.time_scale:.3f}"})
        return error(status, "INTERNAL_SERVICE_ERROR", "An internal service error has occurred.")

    def routes(self) -> list[Route]:
        return [
            Route("/v1/oauth2/token", self.token, methods=["POST"]),
            Route("/v1/reporting/transactions", self._api(self.transactions)),
            Route("/v2/checkout/orders/{order_id}", self._api(self.get_order)),
            Route("/v2/payments/captures/{capture_id}", self._api(self.get_capture)),
            Route("/v1/notifications/certs/{cert_id}", self.cert),
            Route("/v1/notifications/verify-webhook-signature", self._api(self.verify_signature), methods=["POST"]),
        ]

    # ------------------------------------------------------------------ auth and plumbing
    async def token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic ") or not hmac.compare_digest(auth[6:].strip().encode(), expected.encode()):
            return json_response({"error": "invalid_client", "error_description": "Client Authentication failed"}, 401)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "Grant Type is NULL or not supported"}, 400)
        token = f"A21AA{secrets.token_urlsafe(60)}"
        with self._lock:
            now = time.monotonic()
            self._tokens = {k: v for k, v in self._tokens.items() if v > now}
            self._tokens[token] = now + TOKEN_LIFETIME_S
        self.counters["tokens"] += 1
        return json_response({"scope": SCOPES, "access_token": token, "token_type": "Bearer", "app_id": "APP-80W284485P519543T",
                              "expires_in": TOKEN_LIFETIME_S, "nonce": f"{rfc3339(self.sandbox.clock)}{secrets.token_hex(8)}"},
                             headers=self._date())

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _date(self) -> dict[str, str]:
        return {"Date": format_datetime(self.sandbox.clock.astimezone(UTC), usegmt=True)}

    def _api(self, handler: Callable[[Request, datetime], Any]) -> Callable:
        async def endpoint(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            with self._lock:
                expires = self._tokens.get(auth[7:].strip()) if auth.startswith("Bearer ") else None
            if expires is None or expires <= time.monotonic():
                return json_response({"error": "invalid_token", "error_description": "Token signature verification failed"},
                                     401, headers=self._date())
            if self.config.enforce_rate_limits:
                wait = self.bucket.try_acquire()
                if wait > 0:
                    return self.refuse(error(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.",
                                             headers={"Retry-After": f"{max(wait, 0.001):.3f}", **self._date()}))
            body = await request.body() if request.method == "POST" else b""
            clock = self.sandbox.clock
            from starlette.concurrency import run_in_threadpool
            response = await run_in_threadpool(handler, request, clock, body) if request.method == "POST" \
                else await run_in_threadpool(handler, request, clock)
            response.headers["Date"] = format_datetime(clock.astimezone(UTC), usegmt=True)
            response.headers["Paypal-Debug-Id"] = secrets.token_hex(7)
            return response

        return endpoint

    # ------------------------------------------------------------------ Transaction Search
    def transactions(self, request: Request, clock: datetime) -> Response:
        q = request.query_params
        details = []
        for name in ("start_date", "end_date"):
            if not q.get(name):
                details.append({"field": name, "location": "query", "issue": "MISSING_REQUIRED_PARAMETER",
                                "description": f"{name} is required."})
        if details:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", details)
        try:
            start, end = parse_rfc3339(q["start_date"]), parse_rfc3339(q["end_date"])
        except ValueError:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                         [{"field": "start_date", "location": "query", "issue": "INVALID_PARAMETER_SYNTAX",
                           "description": "dates must be RFC 3339 with Z or an offset"}])
        if end < start or end - start > MAX_WINDOW:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                         [{"field": "end_date", "location": "query", "issue": "INVALID_DATE_RANGE",
                           "description": "Date range is greater than 31 days"}])
        try:
            page_size, page = int(q.get("page_size", 100)), int(q.get("page", 1))
        except ValueError:
            page_size, page = -1, -1
        if not 1 <= page_size <= 500 or page < 1:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                         [{"field": "page_size", "location": "query", "issue": "INVALID_PARAMETER_VALUE",
                           "description": "page_size must be 1..500 and page at least 1"}])
        fields = q.get("fields", "transaction_info")
        where, params = ["initiated_at between $start and $end", "visible_at <= $clock"], {"start": start, "end": end, "clock": clock}
        for name, column in (("transaction_id", "txn_id"), ("transaction_type", "event_code"), ("transaction_status", "status")):
            if q.get(name):
                where.append(f"{column} = ${name}")
                params[name] = q[name]
        sql = f"select * from paypal_transactions where {' and '.join(where)} order by initiated_at, txn_id"
        key = ("search", start.isoformat(), end.isoformat(), q.get("transaction_id"), q.get("transaction_type"),
               q.get("transaction_status"), clock.isoformat())
        _, rows = self.pages.get(key, lambda: _rows(self.db, sql, params))
        total_pages = max(1, -(-len(rows) // page_size))
        if page > total_pages and rows:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                         [{"field": "page", "location": "query", "issue": "INVALID_PARAMETER_VALUE",
                           "description": "page is beyond total_pages"}])
        chunk = rows[(page - 1) * page_size: page * page_size]
        everything = fields == "all" or "payer_info" in fields
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        args = {k: v for k, v in q.items() if k != "page"}
        links = [{"href": f"{base}?{urlencode({**args, 'page': page})}", "rel": "self", "method": "GET"}]
        if page < total_pages:
            links.append({"href": f"{base}?{urlencode({**args, 'page': page + 1})}", "rel": "next", "method": "GET"})
        refreshed = min(clock - REPORTING_DELAY, end)
        return json_response({
            "transaction_details": [self._detail(r, everything) for r in chunk], "account_number": ACCOUNT_ID,
            "start_date": pp_time(start), "end_date": pp_time(end), "last_refreshed_datetime": pp_time(refreshed),
            "page": page, "total_items": len(rows), "total_pages": total_pages, "links": links,
        })

    @staticmethod
    def _detail(r: dict, everything: bool) -> dict:
        info: dict[str, Any] = {
            "paypal_account_id": ACCOUNT_ID, "transaction_id": r["txn_id"],
            "transaction_event_code": r["event_code"],
            "transaction_initiation_date": pp_time(r["initiated_at"]),
            "transaction_updated_date": pp_time(r["updated_at"]),
            "transaction_amount": money(r["amount"], r["currency"]),
            "transaction_status": r["status"], "protection_eligibility": "01" if r["event_code"] == "T0006" else "02",
        }
        if r["fee"]:
            info["fee_amount"] = money(-r["fee"], r["currency"])
        if r["event_code"] == "T0006":
            info.update(paypal_reference_id=r["order_id"], paypal_reference_id_type="ODR",
                        invoice_id=r["invoice_id"], custom_field=r["invoice_id"])
        elif r["event_code"] == "T1107":
            info.update(paypal_reference_id=r["capture_id"], paypal_reference_id_type="TXN", invoice_id=r["invoice_id"])
        elif r["event_code"] == "T0400":
            info["transaction_subject"] = "Withdraw funds to bank account"
        out: dict[str, Any] = {"transaction_info": info}
        if everything:
            out["payer_info"] = ({"account_id": r["payer_id"], "email_address": r["payer_email"],
                                  "address_status": "Y", "payer_status": "Y"} if r["payer_id"] else {})
            out["cart_info"] = {}
            out["store_info"] = {}
        return out

    # ------------------------------------------------------------------ Orders v2
    def get_order(self, request: Request, clock: datetime) -> Response:
        oid = request.path_params["order_id"]
        orders = _rows(self.db, "select * from paypal_orders where order_id = $id and created_at <= $clock",
                       {"id": oid, "clock": clock})
        if not orders:
            return error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                         [{"field": "order_id", "value": oid, "location": "path", "issue": "INVALID_RESOURCE_ID",
                           "description": "Specified resource ID does not exist. Please check the resource ID and try again."}])
        return json_response(self.render_order(orders[0], clock, request))

    def get_capture(self, request: Request, clock: datetime) -> Response:
        cid = request.path_params["capture_id"]
        orders = _rows(self.db, "select * from paypal_orders where capture_id = $id and captured_at <= $clock",
                       {"id": cid, "clock": clock})
        if not orders:
            return error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                         [{"field": "capture_id", "value": cid, "location": "path", "issue": "INVALID_RESOURCE_ID"}])
        capture = self.render_order(orders[0], clock, request)["purchase_units"][0]["payments"]["captures"][0]
        capture["supplementary_data"] = {"related_ids": {"order_id": orders[0]["order_id"]}}
        return json_response(capture)

    def render_order(self, o: dict, clock: datetime, request: Request | None = None) -> dict:
        lines = _rows(self.db, "select * from paypal_order_lines where order_id = $id order by position", {"id": o["order_id"]})
        refunds = _rows(self.db, "select * from paypal_refunds where order_id = $id and created_at <= $clock order by created_at",
                        {"id": o["order_id"], "clock": clock})
        captured = o["captured_at"] <= clock
        refunded = sum((r["amount"] for r in refunds), Decimal(0))
        base = f"{request.url.scheme}://{request.url.netloc}" if request is not None else self.base_url
        capture_status = "COMPLETED" if refunded == 0 else "REFUNDED" if refunded >= o["total"] else "PARTIALLY_REFUNDED"
        updated = max([o["captured_at"] if captured else o["created_at"], *(r["created_at"] for r in refunds)])
        unit = {
            "reference_id": "default", "invoice_id": o["invoice_id"], "custom_id": o["invoice_id"],
            "description": "Curtains Sandbox order", "soft_descriptor": "CURTAINSSBX",
            "amount": {**money(o["total"]), "breakdown": {"item_total": money(o["item_total"]),
                                                          "tax_total": money(o["tax_total"]),
                                                          "shipping": money(Decimal(0))}},
            "payee": {"email_address": MERCHANT_EMAIL, "merchant_id": ACCOUNT_ID},
            "items": [{"name": l["name"], "sku": l["sku"], "quantity": str(l["quantity"]), "category": "PHYSICAL_GOODS",
                       "unit_amount": money(l["unit_amount"]), "tax": money(l["unit_tax"])} for l in lines],
        }
        if captured:
            unit["payments"] = {
                "captures": [{
                    "id": o["capture_id"], "status": capture_status, "amount": money(o["total"]), "final_capture": True,
                    "invoice_id": o["invoice_id"], "custom_id": o["invoice_id"],
                    "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]},
                    "seller_receivable_breakdown": {"gross_amount": money(o["total"]), "paypal_fee": money(o["fee"]),
                                                    "net_amount": money(o["net"])},
                    "create_time": rfc3339(o["captured_at"]),
                    "update_time": rfc3339(max([o["captured_at"], *(r["created_at"] for r in refunds)])),
                    "links": [{"href": f"{base}/v2/payments/captures/{o['capture_id']}", "rel": "self", "method": "GET"}],
                }],
                "refunds": [{
                    "id": r["refund_id"], "status": "COMPLETED", "amount": money(r["amount"]),
                    "invoice_id": o["invoice_id"], "note_to_payer": r["note"],
                    "seller_payable_breakdown": {"gross_amount": money(r["amount"]), "paypal_fee": money(Decimal(0)),
                                                 "net_amount": money(r["amount"])},
                    "create_time": rfc3339(r["created_at"]), "update_time": rfc3339(r["created_at"]),
                } for r in refunds],
            }
        name = {"given_name": o["given_name"], "surname": o["surname"]}
        return {
            "id": o["order_id"], "intent": "CAPTURE", "status": "COMPLETED" if captured else "APPROVED",
            "payment_source": {"paypal": {"email_address": o["email"], "account_id": o["payer_id"],
                                          "account_status": "VERIFIED", "name": name,
                                          "address": {"country_code": o["country"]}}},
            "payer": {"name": name, "email_address": o["email"], "payer_id": o["payer_id"],
                      "address": {"country_code": o["country"]}},
            "purchase_units": [unit], "create_time": rfc3339(o["created_at"]), "update_time": rfc3339(updated),
            "links": [{"href": f"{base}/v2/checkout/orders/{o['order_id']}", "rel": "self", "method": "GET"}],
        }

    # ------------------------------------------------------------------ webhooks
    async def cert(self, request: Request) -> Response:
        if request.path_params["cert_id"] != CERT_ID:
            return error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.")
        return Response(self.signing.pem, media_type="application/x-pem-file")

    @property
    def cert_url(self) -> str:
        return f"{self.base_url}/v1/notifications/certs/{CERT_ID}"

    def verify_signature(self, request: Request, clock: datetime, body: bytes) -> Response:
        from finance_pipeline.platforms.paypal.webhooks import signed_message

        try:
            data = orjson.loads(body)
            raw_event = orjson.dumps(data["webhook_event"])
            tid, ttime, sig = data["transmission_id"], data["transmission_time"], data["transmission_sig"]
            webhook_id, algo, cert_url = data["webhook_id"], data["auth_algo"], data["cert_url"]
        except (ValueError, KeyError, TypeError):
            return error(400, "VALIDATION_ERROR", "Invalid request - see details.",
                         [{"field": "/", "location": "body", "issue": "MISSING_REQUIRED_PARAMETER"}])
        ok = False
        if algo == "SHA256withRSA" and cert_url == self.cert_url and webhook_id == self.webhook_id:
            try:
                self.signing.cert.public_key().verify(base64.b64decode(sig), signed_message(tid, ttime, webhook_id, raw_event),
                                                      padding.PKCS1v15(), hashes.SHA256())
                ok = True
            except Exception:  # noqa: BLE001 - any failure is a FAILURE answer
                ok = False
        return json_response({"verification_status": "SUCCESS" if ok else "FAILURE"})

    def events(self, since: datetime, until: datetime) -> list[dict]:
        """PAYMENT.CAPTURE.COMPLETED / .REFUNDED events of (since, until], as PayPal would send them."""
        out = []
        cur = self.db
        for o in _rows(cur, "select * from paypal_orders where captured_at > $s and captured_at <= $u", {"s": since, "u": until}):
            capture = self.render_order(o, until)["purchase_units"][0]["payments"]["captures"][0]
            out.append(self._event("PAYMENT.CAPTURE.COMPLETED", "capture", o["captured_at"], capture,
                                   f"Payment completed for GBP {o['total']}", f"capture:{o['capture_id']}"))
        for r in _rows(cur, "select * from paypal_refunds where created_at > $s and created_at <= $u", {"s": since, "u": until}):
            resource = {"id": r["refund_id"], "status": "COMPLETED", "amount": money(r["amount"]),
                        "create_time": rfc3339(r["created_at"]), "update_time": rfc3339(r["created_at"]),
                        "links": [{"href": f"{self.base_url}/v2/payments/captures/{r['capture_id']}", "rel": "up",
                                   "method": "GET"}]}
            out.append(self._event("PAYMENT.CAPTURE.REFUNDED", "refund", r["created_at"], resource,
                                   f"A GBP {r['amount']} capture payment was refunded", f"refund:{r['refund_id']}"))
        return sorted(out, key=lambda e: e["create_time"])

    @staticmethod
    def _event(kind: str, resource_type: str, at: datetime, resource: dict, summary: str, key: str) -> dict:
        eid = "WH-" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest().upper()[:25]
        return {"id": eid, "event_version": "1.0", "create_time": rfc3339(at), "resource_type": resource_type,
                "resource_version": "2.0", "event_type": kind, "summary": summary, "resource": resource,
                "links": [{"href": f"https://api-m.paypal.com/v1/notifications/webhooks-events/{eid}", "rel": "self",
                           "method": "GET"}]}

    def sign(self, body: bytes, transmitted: datetime | None = None) -> dict[str, str]:
        """The headers PayPal sends with a delivery of `body` to this account's webhook."""
        from finance_pipeline.platforms.paypal.webhooks import signed_message

        tid = str(uuid.uuid4())
        ttime = rfc3339(transmitted or datetime.now(UTC))
        return {"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": ttime,
                "PAYPAL-TRANSMISSION-SIG": self.signing.sign(signed_message(tid, ttime, self.webhook_id, body)),
                "PAYPAL-CERT-URL": self.cert_url, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                "Content-Type": "application/json"}

    def send_webhooks(self, url: str, since: datetime, until: datetime, duplicate_every: int = 0) -> int:
        """Deliver the events of (since, until] to `url`, each signed; with `duplicate_every` n,
        every n-th event is delivered twice (PayPal retries).  Returns deliveries made."""
        sent = 0
        with httpx.Client(timeout=10) as client:
            for i, event in enumerate(self.events(since, until), 1):
                body = orjson.dumps(event)
                for _ in range(2 if duplicate_every and i % duplicate_every == 0 else 1):
                    client.post(url, content=body, headers=self.sign(body))
                    sent += 1
        self.counters["webhooks_sent"] += sent
        return sent
