"""Trade invoices on a monday.com board whose items follow payment status (so sales sees who paid).

One item per `marts.fct_invoices` row: item name = invoice number; columns customer, currency, total,
open amount (numbers, sent as exact decimal strings), due date, payment status (a status label from
`rpt_payment_status.payment_status`, else the invoice's own status) and channel.  The board
"Trade invoices" is `MONDAY_BOARD_ID`, or (sandbox) found by name / created with its columns.

With the shared ledger protocol (`finance_pipeline.publish.mechanics`), business key = invoice number:
- keys whose remote state is unknown (a crash, a lost ledger) are looked up on the board by name
  (`items_page_by_column_values` on the `name` column) before anything is created;
- new invoices → `create_item` with every column value; changed ones → `change_multiple_column_values`;
  invoices gone from the marts → `delete_item`;
- writes go `MONDAY_BATCH` (default 25) aliased mutations per request within the complexity
  budget; a value monday refuses fails only its own alias: recorded failed and quarantined with
  monday's message.  A request without a definitive answer is resolved at once: updates and
  deletes are resent (they are idempotent), creates looked up by name first.
- read-back: the whole board paged (`items_page` + `next_items_page`) and compared with the marts.

Run alone (the kill -9 test does): `python -m finance_pipeline.platforms.monday.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

import duckdb

from finance_pipeline.http import ApiClient
from finance_pipeline.http.client import ApiError
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.monday.client import (
    COMPLEXITY_FIELD, MondayApi, MondayApiError, error_message, json_arg, make_api,
)
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import to_decimal
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Rejected, Write, resolve_unknown, write_batches,
)
from finance_pipeline.settings import Settings, SettingsError, env
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.monday.publish")

DESTINATION = "monday"
BOARD_NAME = "Trade invoices"
MAPPING = "monday-item/1"
PAGE = 500
LOOKUP_BATCH = 100
STATUS_LABELS = {  # mart status → board label (index = position)
    "unpaid": "Unpaid", "paid": "Paid", "partially_paid": "Partially paid", "overdue": "Overdue",
    "voided": "Voided", "cancelled": "Voided", "overpaid": "Overpaid", "disputed": "Disputed",
    "refunded": "Refunded", "partially_refunded": "Partially refunded", "failed": "Payment failed",
}
BOARD_LABELS = list(dict.fromkeys(STATUS_LABELS.values()))
# (column id, title, type, defaults)
COLUMNS: tuple[tuple[str, str, str, dict | None], ...] = (
    ("customer", "Customer", "text", None),
    ("currency", "Currency", "text", None),
    ("total", "Total", "numbers", None),
    ("open_amount", "Open amount", "numbers", None),
    ("due_date", "Due date", "date", None),
    ("status", "Payment status", "status", {"labels": {str(i): label for i, label in enumerate(BOARD_LABELS)}}),
    ("channel", "Channel", "text", None),
)
ITEM_FIELDS = "id name column_values { id text value }"


@dataclass(frozen=True)
class BoardInvoice:
    invoice_number: str
    customer: str
    currency: str
    total: Decimal
    open_amount: Decimal
    due_on: Any
    status: str  # the mart's status word
    channel: str

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status) or self.status.replace("_", " ").capitalize()

    def column_values(self) -> dict[str, Any]:
        return {"customer": self.customer, "currency": self.currency, "total": format(self.total, "f"),
                "open_amount": format(self.open_amount, "f"),
                "due_date": {"date": self.due_on.isoformat()} if self.due_on else None,
                "status": {"label": self.label}, "channel": self.channel}

    def texts(self) -> dict[str, str]:
        return shown_texts(self.column_values())


def shown_texts(values: dict[str, Any]) -> dict[str, str]:
    """What the board shows (each column's `text`) once it holds these column values."""
    out = {}
    for column, value in values.items():
        if isinstance(value, dict):
            value = value.get("date") or value.get("label")
        out[column] = "" if value is None else str(value)
    return out


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = 'marts' AND table_name = ?",
                            [table]).fetchone())


def load_board_invoices(con: duckdb.DuckDBPyConnection) -> list[BoardInvoice]:
    """`fct_invoices` with the payment status of `rpt_payment_status` when that mart exists."""
    status = "i.status"
    join = ""
    if _has(con, "rpt_payment_status"):
        join = ("LEFT JOIN (SELECT invoice_number, min(payment_status) AS payment_status FROM marts.rpt_payment_status "
                "WHERE invoice_number IS NOT NULL GROUP BY 1) s USING (invoice_number)")
        status = "coalesce(s.payment_status, i.status)"
    rows = con.execute(
        f"SELECT i.invoice_number, i.customer_name, i.currency, i.total_amount, i.open_amount, i.due_on, {status}, "
        f"i.channel FROM marts.fct_invoices i {join} ORDER BY i.invoice_number").fetchall()
    return [BoardInvoice(r[0], (r[1] or "").strip(), (r[2] or "").upper(), to_decimal(r[3]), to_decimal(r[4]), r[5],
                         r[6] or "", r[7] or "") for r in rows]


def is_current(remote: dict, texts: dict[str, str]) -> bool:
    return not differences(remote, texts)


def _texts(item: dict) -> dict[str, str]:
    return {cv["id"]: cv.get("text") or "" for cv in item.get("column_values") or []}


def differences(item: dict, texts: dict[str, str]) -> list[tuple[str, str, str]]:
    got = _texts(item)
    out = []
    for column, want in texts.items():
        have = got.get(column, "")
        if column in ("total", "open_amount"):
            try:
                same = Decimal(have) == Decimal(want)
            except ArithmeticError:
                same = False
        else:
            same = have == want
        if not same:
            out.append((column, want, have))
    return out


class _MondayRun:
    def __init__(self, api: MondayApi, ledger: PublishLedger, result: PublishResult, dry: DryRun | None,
                 board_id: str | None) -> None:
        self.api = api
        self.ledger = ledger
        self.result = result
        self.dry = dry
        self.board_id = board_id
        self.batch = int(env("MONDAY_BATCH") or 25)
        self.rejected: list[tuple[str, str, Any, str]] = []

    # -- the board -------------------------------------------------------------------------------
    def ensure_board(self, attempts: int = 5) -> None:
        """The board and its columns, created where missing; a creation whose answer was lost is found
        by reading the board again (boards and columns are looked up before anything is created)."""
        for attempt in range(1, attempts + 1):
            try:
                return self._ensure_board()
            except ApiError as exc:
                if exc.status in (401, 403) or attempt == attempts:
                    raise
                log.info("monday: board set-up had no answer (%s); reading the board again", exc)

    def _ensure_board(self) -> None:
        if self.board_id:
            data, _ = self.api.execute(f"query ($b: [ID!]) {{ {COMPLEXITY_FIELD} boards(ids: $b) {{ id name "
                                       "columns { id type settings_str } } }", {"b": [self.board_id]})
            boards = data.get("boards") or []
            if not boards:
                raise SettingsError(f"MONDAY_BOARD_ID={self.board_id}: no such board for this token")
        else:
            data, _ = self.api.execute(f"query {{ {COMPLEXITY_FIELD} boards(limit: 500) {{ id name "
                                       "columns { id type settings_str } } }")
            boards = sorted((b for b in data.get("boards") or [] if b["name"] == BOARD_NAME), key=lambda b: int(b["id"]))
            if not boards:
                if self.dry is not None:
                    self.dry.add("board", "create", BOARD_NAME, {"columns": [c[0] for c in COLUMNS]})
                    return
                data, _ = self.api.execute(
                    f"mutation ($n: String!) {{ {COMPLEXITY_FIELD} create_board(board_name: $n, board_kind: private, "
                    "empty: true) { id name columns { id type settings_str } } }", {"n": BOARD_NAME},
                    kind="board", idempotent=False)
                boards = [data["create_board"]]
                log.info("monday: created board %r (%s)", BOARD_NAME, boards[0]["id"])
        board = boards[0]
        self.board_id = str(board["id"])
        have = {c["id"] for c in board.get("columns") or []}
        for column_id, title, ctype, defaults in COLUMNS:
            if column_id in have:
                continue
            if self.dry is not None:
                self.dry.add("column", "create", column_id, {"title": title, "type": ctype})
                continue
            self.api.execute(
                f"mutation ($b: ID!, $id: String!, $t: String!, $d: JSON) {{ {COMPLEXITY_FIELD} create_column("
                f"board_id: $b, id: $id, title: $t, column_type: {ctype}, defaults: $d) {{ id }} }}",
                {"b": self.board_id, "id": column_id, "t": title, "d": json_arg(defaults) if defaults else None},
                kind="column", idempotent=False)

    # -- reading ---------------------------------------------------------------------------------
    def _pages(self, first: dict) -> Iterable[list[dict]]:
        page = first
        while True:
            yield page.get("items") or []
            cursor = page.get("cursor")
            if not cursor:
                return
            data, _ = self.api.execute(f"query ($c: String!) {{ {COMPLEXITY_FIELD} next_items_page(cursor: $c, "
                                       f"limit: {PAGE}) {{ cursor items {{ {ITEM_FIELDS} }} }} }}", {"c": cursor},
                                       kind="page")
            page = data["next_items_page"]

    def find(self, keys: list[str]) -> dict[str, dict]:
        """Items named after these invoice numbers (the lowest id when a name repeats)."""
        if not self.board_id or not keys:
            return {}
        data, _ = self.api.execute(
            f"query ($b: ID!, $v: [String]!) {{ {COMPLEXITY_FIELD} items_page_by_column_values(board_id: $b, "
            f"limit: {PAGE}, columns: [{{column_id: \"name\", column_values: $v}}]) {{ cursor items {{ {ITEM_FIELDS} }} "
            "} }", {"b": self.board_id, "v": keys}, kind="lookup")
        return self._by_name(item for page in self._pages(data["items_page_by_column_values"]) for item in page)

    def all_items(self) -> list[dict]:
        if not self.board_id:
            return []
        data, _ = self.api.execute(
            f"query ($b: [ID!]) {{ {COMPLEXITY_FIELD} boards(ids: $b) {{ items_page(limit: {PAGE}) {{ cursor items "
            f"{{ {ITEM_FIELDS} }} }} }} }}", {"b": [self.board_id]}, kind="page")
        boards = data.get("boards") or []
        if not boards:
            return []
        return [item for page in self._pages(boards[0]["items_page"]) for item in page]

    @staticmethod
    def _by_name(items: Iterable[dict]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for item in items:
            if item["name"] not in out or int(item["id"]) < int(out[item["name"]]["id"]):
                out[item["name"]] = item
        return out

    # -- writing ---------------------------------------------------------------------------------
    def publish(self, invoices: list[BoardInvoice]) -> None:
        counts = self.result.of("item")
        desired: dict[str, Desired[BoardInvoice]] = {}
        for inv in invoices:
            desired[inv.invoice_number] = Desired(
                inv.invoice_number, content_hash({"v": MAPPING, "name": inv.invoice_number, **inv.column_values()}), inv)
        resolve_unknown(self.ledger, "item", desired, self.find, remote_id_of=lambda r: r["id"],
                        is_current=lambda r, d: is_current(r, d.record.texts()), counts=counts, batch_size=LOOKUP_BATCH,
                        find_all=lambda: self._by_name(self.all_items()), scan_above=LOOKUP_BATCH * 2)
        plan = self.ledger.plan("item", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError("item", entry.business_key, "still pending after look-up"))
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record.column_values())
                  for k in plan.new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         desired[e.business_key].record.column_values()) for e in plan.changed]
        gone = content_hash({"v": MAPPING, "deleted": True})
        for key, entry in self.ledger.entries("item").items():
            if key not in desired and entry.remote_id and entry.status == "done" and entry.content_hash != gone:
                writes.append(Write("void", key, gone, entry.remote_id, None))
        if self.dry is not None:
            for w in writes:
                self.dry.add("item", {"void": "delete"}.get(w.op, w.op), w.key, w.body, remote_id=w.remote_id)
            return
        write_batches(self.ledger, "item", writes, self.send, counts=counts, errors=self.result.errors,
                      batch_size=self.batch)

    def _mutation(self, batch: list[Write]) -> tuple[str, dict]:
        params, fields, variables = ["$b: ID!"], [], {"b": self.board_id}
        for i, w in enumerate(batch):
            if w.op == "create":
                params += [f"$n{i}: String!", f"$v{i}: JSON"]
                fields.append(f"a{i}: create_item(board_id: $b, item_name: $n{i}, column_values: $v{i}) {{ id }}")
                variables.update({f"n{i}": w.key, f"v{i}": json_arg(w.body)})
            elif w.op == "update":
                params += [f"$i{i}: ID", f"$v{i}: JSON!"]
                fields.append(f"a{i}: change_multiple_column_values(board_id: $b, item_id: $i{i}, "
                              f"column_values: $v{i}) {{ id }}")
                variables.update({f"i{i}": w.remote_id, f"v{i}": json_arg(w.body)})
            else:
                params.append(f"$i{i}: ID")
                fields.append(f"a{i}: delete_item(item_id: $i{i}) {{ id }}")
                variables[f"i{i}"] = w.remote_id
        return f"mutation ({', '.join(params)}) {{ {COMPLEXITY_FIELD} {' '.join(fields)} }}", variables

    def _send_once(self, batch: list[Write]) -> dict[str, Outcome]:
        document, variables = self._mutation(batch)
        try:
            data, errors = self.api.execute(document, variables, kind=f"write{len(batch)}",
                                            idempotent=all(w.op != "create" for w in batch))
        except MondayApiError as exc:
            raise Rejected(str(exc)) from exc
        by_alias = {str(e["path"][0]): e for e in errors}
        out: dict[str, Outcome] = {}
        for i, w in enumerate(batch):
            error = by_alias.get(f"a{i}")
            if error is None and (data.get(f"a{i}") or {}).get("id"):
                out[w.key] = Outcome(True, str(data[f"a{i}"]["id"]))
            elif w.op == "void" and error and "not found" in str(error.get("message", "")).lower():
                out[w.key] = Outcome(True, w.remote_id)  # already gone
            else:
                message = error_message(error) if error else "no item in monday's answer"
                out[w.key] = Outcome(False, error=message)
                self.rejected.append(("item", w.key, {"item_name": w.key, "column_values": w.body}, message))
        return out

    def send(self, batch: list[Write]) -> list[Outcome]:
        """One request of aliased mutations; an answer lost in transit is resolved before returning."""
        outcomes: dict[str, Outcome] = {}
        todo = list(batch)
        for attempt in range(1, 4):
            try:
                outcomes.update(self._send_once(todo))
                break
            except ApiError as exc:
                if exc.status in (401, 403) or attempt == 3:
                    raise
                creates = [w.key for w in todo if w.op == "create"]
                found = self.find(creates) if creates else {}
                for w in todo:
                    if w.op == "create" and w.key in found and is_current(found[w.key], shown_texts(w.body)):
                        outcomes[w.key] = Outcome(True, str(found[w.key]["id"]))
                todo = [w for w in todo if w.key not in outcomes]
                log.info("monday: a batch had no answer (%s); %d of its writes landed, resending %d", exc,
                         len(batch) - len(todo), len(todo))
                if not todo:
                    break
        return [outcomes[w.key] for w in batch]

    # -- read-back -------------------------------------------------------------------------------
    def read_back(self, invoices: list[BoardInvoice]) -> None:
        items = self.all_items()
        self.result.read_back = len(items)
        entries = self.ledger.entries("item")
        refused = {k for k, e in entries.items() if e.status == "failed"}
        managed = {e.remote_id for e in entries.values() if e.remote_id}
        self.result.mismatches = compare_with_marts(invoices, items, refused, managed)


def compare_with_marts(invoices: list[BoardInvoice], items: list[dict], refused: set[str],
                       managed: set[str]) -> list[Mismatch]:
    by_name: dict[str, list[dict]] = {}
    for item in items:
        by_name.setdefault(item["name"], []).append(item)
    out: list[Mismatch] = []
    for inv in invoices:
        found = by_name.pop(inv.invoice_number, [])
        if inv.invoice_number in refused:
            continue  # refused by monday, quarantined: its old version (if any) may still be there
        if len(found) > 1:
            out.append(Mismatch(inv.invoice_number, "count", 1, len(found)))
        if not found:
            out.append(Mismatch(inv.invoice_number, "presence", "on the board", "missing"))
            continue
        for column, want, have in differences(found[0], inv.texts()):
            out.append(Mismatch(inv.invoice_number, column, want, have))
    for name, rest in by_name.items():
        for item in rest:
            if item["id"] in managed:
                out.append(Mismatch(name, "presence", "not in the marts", item["id"]))
    return out


def publish_to_monday(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                      client: ApiClient | None = None, dry_run: bool = False) -> PublishResult:
    """Keep the board's items equal to the trade invoices; read back; compare.  Safe to re-run at any
    time and after any crash; in dry-run mode nothing is written anywhere."""
    started = time.monotonic()
    con = open_warehouse(warehouse_path)
    ledger = PublishLedger(con, DESTINATION).ensure_schema()
    result = PublishResult(DESTINATION, ledger.run_id, primary="item")
    result.of("item")
    dry = DryRun(DESTINATION) if dry_run else None
    api = make_api(connection, client)
    run = _MondayRun(api, ledger, result, dry, connection.get("board_id"))
    try:
        invoices = load_board_invoices(con)
        run.ensure_board()
        run.publish(invoices)
        if dry is None:
            run.read_back(invoices)
    finally:
        result.requests = api.client.stats["requests"]
        if client is None:
            api.client.close()
        con.close()
    if dry is not None:
        result.dry_run = dry.summary()
        result.dry_run["plan_file"] = dry.save(settings)
    elif run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    result.seconds = time.monotonic() - started
    c = result.of("item")
    log.info("monday publish: board %s; items created %d, updated %d, deleted %d, unchanged %d, failed %d, "
             "unresolved %d, recovered %d; %d read back, %d mismatches, %d requests, %d budget waits, %.1f s",
             run.board_id, c.created, c.updated, c.voided, c.unchanged, c.failed, c.unresolved, c.recovered,
             result.read_back, len(result.mismatches), result.requests, api.waits, result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_to_monday, argv,
                   "Keep the monday.com board \"Trade invoices\" in step with the trade invoices of the marts.")


if __name__ == "__main__":
    sys.exit(main())
