"""Lightspeed Retail (R-Series) API V3 emulator: the Manchester showroom's till, as of the clock.

- OAuth 2.0: `POST /auth/oauth/token` (`grant_type=refresh_token`, client id and secret in the
  form or HTTP Basic).  Access and refresh tokens both rotate on every refresh: a spent refresh
  token answers 400 `invalid_grant`.  Tokens live in `<sandbox>/lightspeed.sqlite`, so a chain
  survives an emulator restart and is shared by emulators in other processes.
- `GET /API/V3/Account.json`; `GET /API/V3/Account/{accountID}/Sale.json` with
  `load_relations` (a JSON array: SaleLines, SaleLines.Item, SalePayments,
  SalePayments.PaymentType, Customer), query operators `field=op,value` on `timeStamp`,
  `saleID`, `completed`, `voided` (`=`, `!=`, `<`, `>`, `<=`, `>=`, `><` between), `sort`
  (`timeStamp`, `saleID`, `-` for descending), `limit` <= 100, and cursor pages: the body's
  `@attributes.next` is a full URL with an opaque `after`, followed verbatim until empty.
- JSON converted from XML: every scalar is a string (`"true"`, `"43.20"`), and a relation or
  list holding exactly one record is an object, not an array.
- Leaky bucket per account (60 units, 1/s; GET costs 1) with `X-LS-API-Bucket-Level: used/60`
  and `X-LS-API-Drip-Rate` on every answer; over it, 429 with `Retry-After`.
- As of the clock: a sale appears when rung up, is completed (or voided) moments later, and a
  customer attached later moves its `timeStamp`; returns are sales with negative quantities.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import LeakyBucket
from finance_pipeline.platforms.lightspeed import ACCESS_TOKEN_TTL_S, BUCKET_SIZE, DRIP_PER_S, MAX_LIMIT
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, PageCache, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

log = logging.getLogger("finance_pipeline.sandbox.lightspeed")
UTC = timezone.utc
RELATIONS = {"SaleLines", "SaleLines.Item", "SalePayments", "SalePayments.PaymentType", "Customer"}
OPS = {"=": "=", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "><": "between"}
FIELDS = {"timeStamp": "time_stamp_now", "saleID": "sale_num", "completed": "completed_now", "voided": "voided_now"}
TOKENS_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, kind TEXT NOT NULL, expires_at REAL, spent INTEGER DEFAULT 0);
"""
SALES_SQL = """
select s.*, cast(s.sale_id as bigint) as sale_num,
       s.completed_at is not null and s.completed_at <= $t and not s.voided as completed_now,
       s.voided and s.completed_at <= $t as voided_now,
       greatest(s.created_at, case when s.completed_at <= $t then s.completed_at else s.created_at end,
                case when s.edited_at <= $t then s.edited_at else s.created_at end) as time_stamp_now,
       case when s.edited_at <= $t then s.late_customer_id else s.customer_id end as customer_now
from lightspeed_sales s
where s.created_at <= $t
"""
N_T = SALES_SQL.count("$t")


class LsError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict:
        names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                 500: "Internal Server Error", 503: "Service Unavailable"}
        return {"httpCode": str(self.status), "httpMessage": names.get(self.status, "Error"), "message": self.message,
                "errorClass": "Exception"}


def ts(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def s(value: Any) -> str:
    """XML-born JSON: every scalar is text; money with two decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def one_or_many(items: list) -> Any:
    return items[0] if len(items) == 1 else items


def _rows(cur) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


class LightspeedEmulator(Emulator):
    name = "lightspeed"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.seed = sandbox.state().seed
        digest = hashlib.blake2b(f"lightspeed:{self.seed}".encode(), digest_size=32).hexdigest()
        self.account_id = str(100000 + int(digest[:6], 16) % 800000)
        self.client_id = f"ls-sandbox-{digest[:16]}"
        self.client_secret = digest[16:48]
        self.initial_refresh_token = f"def50200{digest[32:64]}"
        self.bucket = LeakyBucket(BUCKET_SIZE, DRIP_PER_S, self.config.time_scale)
        self.state = SqliteState(sandbox.root / "lightspeed.sqlite", TOKENS_SCHEMA)
        with self.state.tx() as con:
            con.execute("INSERT OR IGNORE INTO tokens (token, kind, expires_at) VALUES (?, 'refresh', NULL)",
                        [self.initial_refresh_token])
        self.corruptions: dict[str, dict[str, Any]] = {}  # test hook: saleID -> fields overridden

    # ------------------------------------------------------------------ base-class hooks
    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.initial_refresh_token, "account_id": self.account_id,
                "token_url": f"{self.base_url}/auth/oauth/token"}

    def _bucket_headers(self) -> dict[str, str]:
        return {"X-LS-API-Bucket-Level": f"{self.bucket.level:.3f}/{BUCKET_SIZE}", "X-LS-API-Drip-Rate": f"{DRIP_PER_S:g}"}

    def rate_limit(self, request: Request) -> Response | None:
        wait = self.bucket.try_acquire()
        if wait <= 0 or not self.config.enforce_rate_limits:
            return None
        err = LsError(429, "Rate limit exceeded. Please wait before making more requests.")
        return self.refuse(json_response(err.body(), 429, {**self._bucket_headers(),
                                                           "Retry-After": f"{max(wait, 0.001):.3f}"}))

    def fault_response(self, status: int) -> Response:
        headers = {"Retry-After": f"{1.0 / self.config.time_scale:.3f}"} if status == 429 else {}
        return json_response(LsError(status, "Injected fault").body(), status, headers)

    def faults_apply(self, method: str, path: str) -> bool:
        return not path.startswith("/auth/")

    def routes(self) -> list[Route]:
        return [
            Route("/auth/oauth/token", self.token, methods=["POST"]),
            Route("/API/V3/Account.json", self._endpoint(self.account)),
            Route("/API/V3/Account/{account}/Sale.json", self._endpoint(self.list_sales)),
            Route("/API/V3/Account/{account}/Sale/{sale_id}.json", self._endpoint(self.get_sale)),
        ]

    # ------------------------------------------------------------------ OAuth
    def expire_access_tokens(self) -> None:
        """Test hook: every access token issued so far expires now."""
        with self.state.tx() as con:
            con.execute("UPDATE tokens SET expires_at = 0 WHERE kind = 'access'")

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if client_id != self.client_id or not secrets.compare_digest(client_secret or "", self.client_secret):
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"}, 400)
        with self.state.tx() as con:
            row = con.execute("SELECT spent FROM tokens WHERE token = ? AND kind = 'refresh'",
                              [form.get("refresh_token") or ""]).fetchone()
            if row is None or row[0]:
                self.counters["invalid_grant"] += 1
                return json_response({"error": "invalid_grant", "error_description":
                                      "The refresh token is invalid."}, 400)
            access, refresh = secrets.token_hex(20), "def50200" + secrets.token_hex(40)
            con.execute("UPDATE tokens SET spent = 1 WHERE token = ?", [form["refresh_token"]])
            con.execute("INSERT INTO tokens (token, kind, expires_at) VALUES (?, 'access', ?)",
                        [access, time.time() + ACCESS_TOKEN_TTL_S])
            con.execute("INSERT INTO tokens (token, kind, expires_at) VALUES (?, 'refresh', NULL)", [refresh])
        self.counters["token_refreshes"] += 1
        return json_response({"access_token": access, "expires_in": ACCESS_TOKEN_TTL_S, "token_type": "Bearer",
                              "scope": "employee:register employee:reports", "refresh_token": refresh})

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        row = self.state.read().execute("SELECT expires_at FROM tokens WHERE token = ? AND kind = 'access'",
                                        [token.strip()]).fetchone()
        return row is not None and row[0] > time.time()

    # ------------------------------------------------------------------ plumbing
    def _endpoint(self, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not self._authorised(request):
                return json_response(LsError(401, "Invalid access token.").body(), 401,
                                     {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            limited = self.rate_limit(request)
            if limited is not None:
                return limited
            account = request.path_params.get("account")
            try:
                if account is not None and account != self.account_id:
                    raise LsError(401, "You do not have access to this account.")
                result = await run_in_threadpool(handler, request)
            except LsError as err:
                return json_response(err.body(), err.status, self._bucket_headers())
            except Exception:
                log.exception("lightspeed emulator: %s %s failed", request.method, request.url.path)
                return json_response(LsError(500, "Internal error").body(), 500)
            return json_response(result, 200, self._bucket_headers())

        return endpoint

    def account(self, request: Request) -> dict:
        return {"@attributes": {"count": "1"},
                "Account": {"accountID": self.account_id, "name": "Curtains Sandbox Manchester",
                            "link": {"@attributes": {"href": f"/API/V3/Account/{self.account_id}"}}}}

    @staticmethod
    def _relations(raw: str | None) -> set[str]:
        if not raw:
            return set()
        try:
            wanted = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise LsError(400, "load_relations must be a JSON encoded array, e.g. [\"SaleLines\"].") from None
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise LsError(400, "load_relations must be a JSON encoded array, e.g. [\"SaleLines\"].")
        unknown = set(wanted) - RELATIONS
        if unknown:
            raise LsError(400, f"Invalid relation: {sorted(unknown)[0]}")
        return set(wanted)

    @staticmethod
    def _condition(field: str, raw: str, where: list[str], args: list[Any]) -> None:
        op, _, value = raw.partition(",")
        if op not in OPS or (not value and op != "="):
            op, value = "=", raw
        column = FIELDS[field]

        def typed(v: str) -> Any:
            if field == "timeStamp":
                text = v.strip().replace(" ", "+")
                try:
                    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
                except ValueError:
                    raise LsError(400, f"Invalid date for {field}: {v}") from None
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            if field == "saleID":
                if not v.isdigit():
                    raise LsError(400, f"Invalid value for {field}: {v}")
                return int(v)
            return v.lower() == "true"

        if op == "><":
            lo, _, hi = value.partition(",")
            where.append(f"{column} between ? and ?")
            args.extend([typed(lo), typed(hi)])
        else:
            where.append(f"{column} {OPS[op]} ?")
            args.append(typed(value))

    def list_sales(self, request: Request) -> dict:
        qp = dict(request.query_params)
        after = qp.pop("after", None)
        relations = self._relations(qp.get("load_relations"))
        try:
            limit = int(qp.get("limit") or MAX_LIMIT)
        except ValueError:
            raise LsError(400, "Invalid limit.") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise LsError(400, f"limit must be between 1 and {MAX_LIMIT}.")
        if "offset" in qp:
            raise LsError(400, "Offset pagination is not supported in V3; follow the next link.")
        sort = qp.get("sort") or "saleID"
        desc = sort.startswith("-")
        if sort.lstrip("-") not in ("timeStamp", "saleID"):
            raise LsError(400, f"Invalid sort field: {sort}")
        if after:
            try:
                token = PageCache.parse_token(after)
                at, offset = datetime.fromisoformat(token["t"]), int(token["o"])
            except (ValueError, KeyError, TypeError):
                raise LsError(400, "Invalid after cursor.") from None
        else:
            at, offset = self.sandbox.clock, 0
        filters = {k: v for k, v in qp.items() if k in FIELDS}
        key_parts = ("sales", orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), sort, at.isoformat())

        def compute() -> list:
            where, args = ["true"], []
            for field, raw in filters.items():
                self._condition(field, raw, where, args)
            col = FIELDS[sort.lstrip("-")]
            direction = "desc" if desc else "asc"
            sql = (f"select sale_id from ({SALES_SQL.replace('$t', '?')}) x where {' and '.join(where)} "
                   f"order by {col} {direction}, sale_num {direction}")
            return [r[0] for r in self.db.execute(sql, [at] * N_T + args).fetchall()]

        key, ids = self.pages.get(key_parts, compute)
        if self.duplicate_page(request) and offset:
            offset = max(0, offset - limit // 2 - 1)
        page = ids[offset:offset + limit]
        base = str(request.url).split("?")[0]
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        nxt = ""
        if offset + limit < len(ids):
            token = PageCache.token(key, offset + limit, {"t": at.isoformat()})
            nxt = f"{base}?{urlencode(kept + [('after', token)])}"
        prev = ""
        if offset > 0:
            token = PageCache.token(key, max(0, offset - limit), {"t": at.isoformat()})
            prev = f"{base}?{urlencode(kept + [('after', token)])}"
        body: dict[str, Any] = {"@attributes": {"next": nxt, "previous": prev}}
        sales = self.render_sales(page, at, relations)
        if sales:
            body["Sale"] = one_or_many(sales)
        return body

    def get_sale(self, request: Request) -> dict:
        relations = self._relations(request.query_params.get("load_relations"))
        found = self.render_sales([request.path_params["sale_id"]], self.sandbox.clock, relations)
        if not found:
            raise LsError(404, "Sale not found.")
        return {"@attributes": {"count": "1"}, "Sale": found[0]}

    def render_sales(self, ids: list[str], at: datetime, relations: set[str]) -> list[dict]:
        if not ids:
            return []
        db = self.db
        rows = {r["sale_id"]: r for r in _rows(db.execute(
            f"select * from ({SALES_SQL.replace('$t', '?')}) x where sale_id = any(?)", [at] * N_T + [ids]))}
        lines: dict[str, list] = {}
        payments: dict[str, list] = {}
        if relations & {"SaleLines", "SaleLines.Item"}:
            for r in _rows(db.execute("""select l.*, i.description, i.system_sku from lightspeed_sale_lines l
                                         join lightspeed_items i using (item_id)
                                         where sale_id = any(?) order by sale_line_id""", [ids])):
                lines.setdefault(r["sale_id"], []).append(r)
        if relations & {"SalePayments", "SalePayments.PaymentType"}:
            for r in _rows(db.execute("""select * from lightspeed_sale_payments where sale_id = any(?)
                                         and created_at <= ? order by sale_payment_id""", [ids, at])):
                payments.setdefault(r["sale_id"], []).append(r)
        out = []
        for sale_id in ids:
            r = rows.get(sale_id)
            if r is None:
                continue
            sale = render_sale(r, lines.get(sale_id, []), payments.get(sale_id, []), relations)
            out.append({**sale, **self.corruptions.get(sale_id, {})})
        return out


def render_sale(r: dict, lines: list[dict], payments: list[dict], relations: set[str]) -> dict:
    done = r["completed_now"]
    sale: dict[str, Any] = {
        "saleID": r["sale_id"], "timeStamp": ts(r["time_stamp_now"]), "createTime": ts(r["created_at"]),
        "updateTime": ts(r["time_stamp_now"]), "completeTime": ts(r["completed_at"]) if done else "",
        "completed": s(bool(done)), "voided": s(bool(r["voided_now"])), "archived": "false",
        "referenceNumber": "", "referenceNumberSource": "", "ticketNumber": r["ticket_number"],
        "shopID": r["shop_id"], "registerID": r["register_id"], "employeeID": r["employee_id"],
        "customerID": r["customer_now"], "isTaxInclusive": "true", "tax1Rate": "0.2", "tax2Rate": "0",
        "calcDiscount": s(r["discount"]), "calcSubtotal": s(r["total"] - r["tax1"]), "calcTax1": s(r["tax1"]),
        "calcTax2": "0", "calcTotal": s(r["total"]), "total": s(r["total"]), "totalDue": s(r["total"]),
        "calcPayments": s(sum((p["amount"] for p in payments), Decimal("0.00"))),
        "balance": s(r["total"] - sum((p["amount"] for p in payments), Decimal("0.00"))),
    }
    if relations & {"SaleLines", "SaleLines.Item"} and lines:
        rendered = []
        for l in lines:
            line = {
                "saleLineID": l["sale_line_id"], "saleID": l["sale_id"], "itemID": l["item_id"],
                "createTime": ts(l["created_at"]), "timeStamp": ts(l["created_at"]),
                "unitQuantity": s(l["quantity"]), "unitPrice": s(l["unit_price"]),
                "normalUnitPrice": s(l["unit_price"]), "discountAmount": s(l["discount"]),
                "calcLineDiscount": s(l["discount"]), "calcSubtotal": s(l["subtotal"]), "calcTotal": s(l["total"]),
                "calcTax1": s(l["tax1"]), "calcTax2": "0", "tax": "true", "tax1Rate": s(l["tax1_rate"]),
                "tax2Rate": "0", "isTaxInclusive": "true", "avgCost": "0", "fifoCost": "0",
                "parentSaleLineID": l["parent_sale_line_id"] or "0",
            }
            if "SaleLines.Item" in relations:
                line["Item"] = {"itemID": l["item_id"], "systemSku": l["system_sku"], "customSku": l["sku"],
                                "description": l["description"]}
            rendered.append(line)
        sale["SaleLines"] = {"SaleLine": one_or_many(rendered)}
    if relations & {"SalePayments", "SalePayments.PaymentType"} and payments:
        rendered = []
        for p in payments:
            pay = {"salePaymentID": p["sale_payment_id"], "saleID": p["sale_id"], "amount": s(p["amount"]),
                   "paymentTypeID": p["payment_type_id"], "createTime": ts(p["created_at"]), "archived": "false"}
            if "SalePayments.PaymentType" in relations:
                pay["PaymentType"] = {"paymentTypeID": p["payment_type_id"], "name": p["payment_type"],
                                      "code": "CASH" if p["payment_type_id"] == "1" else "CC",
                                      "requireCustomer": "false", "archived": "false", "internalReserved": "true",
                                      "type": "cash" if p["payment_type_id"] == "1" else "credit card"}
            rendered.append(pay)
        sale["SalePayments"] = {"SalePayment": one_or_many(rendered)}
    return sale
