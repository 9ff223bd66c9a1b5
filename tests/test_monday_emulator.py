"""monday.com emulator fidelity: auth, API-Version, GraphQL validation, column value rules, cursor
paging, the complexity budget and the minute limit."""
from __future__ import annotations

import httpx
import orjson
import pytest

from finance_pipeline.platforms.monday.emulator import MondayEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox

BOARD = """mutation { b: create_board(board_name: "Trade invoices", board_kind: private) { id }
}"""


@pytest.fixture
def monday(tmp_path):
    running = serve(MondayEmulator(Sandbox(tmp_path / "sandbox"), EmulatorConfig(time_scale=30.0)))
    yield running
    running.stop()


def gql(running, query: str, variables: dict | None = None, *, token: str | None = None,
        version: str | None = "2026-10") -> httpx.Response:
    headers = {"Authorization": token if token is not None else running.emulator.credentials()["api_token"]}
    if version:
        headers["API-Version"] = version
    return httpx.post(f"{running.url}/v2", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=10)


def _board(running) -> str:
    board = gql(running, BOARD).json()["data"]["b"]["id"]
    for cid, ctype, defaults in (("total", "numbers", None), ("due", "date", None), ("customer", "text", None),
                                 ("status", "status", {"labels": {"0": "Unpaid", "1": "Paid"}})):
        r = gql(running, "mutation ($b: ID!, $id: String!, $d: JSON) { create_column(board_id: $b, id: $id, "
                         f"title: $id, column_type: {ctype}, defaults: $d) {{ id type }} }}",
                {"b": board, "id": cid, "d": orjson.dumps(defaults).decode() if defaults else None})
        assert r.json()["data"]["create_column"] == {"id": cid, "type": ctype}
    return board


def test_auth_version_and_validation(monday):
    assert gql(monday, "query { version { value } }", token="nope").status_code == 401
    assert gql(monday, "query { version { value } }", token="").json()["errors"][0]["extensions"]["code"] == \
        "UNAUTHORIZED"
    bearer = gql(monday, "query { version { value } }", token="Bearer " + monday.emulator.credentials()["api_token"])
    assert bearer.status_code == 200 and bearer.headers["API-Version"] == "2026-10"
    assert gql(monday, "query { version { value } }", version="2019-01").status_code == 400
    assert gql(monday, "query { version { value } }", version=None).headers["API-Version"] == "2026-10"
    bad = gql(monday, "query { boards { id nme } }").json()
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "nme" in bad["errors"][0]["message"]
    assert gql(monday, "mutation { create_item(item_name: \"x\") { id } }").json()["errors"][0]["extensions"][
        "code"] == "GRAPHQL_VALIDATION_FAILED"  # board_id is required
    body = gql(monday, "query { complexity { before after query reset_in_x_seconds } boards(limit: 5) { id } }").json()
    c = body["data"]["complexity"]
    assert c["before"] - c["after"] == c["query"] > 0 and c["reset_in_x_seconds"] >= 1
    assert body["account_id"]


def test_column_values_are_validated_like_monday(monday):
    board = _board(monday)
    create = ("mutation ($b: ID!, $n: String!, $v: JSON) { complexity { query } "
              "ok: create_item(board_id: $b, item_name: $n, column_values: $v) { id name "
              "column_values { id text value } } }")
    good = {"total": "1234.50", "due": {"date": "2026-01-31"}, "customer": "Acme", "status": {"label": "Paid"}}
    r = gql(monday, create, {"b": board, "n": "INV-1", "v": orjson.dumps(good).decode()}).json()
    assert "errors" not in r, r
    values = {cv["id"]: cv for cv in r["data"]["ok"]["column_values"]}
    assert values["total"]["text"] == "1234.50" and orjson.loads(values["total"]["value"]) == "1234.50"
    assert orjson.loads(values["due"]["value"])["date"] == "2026-01-31"
    assert values["status"]["text"] == "Paid" and orjson.loads(values["status"]["value"])["index"] == 1
    for bad, needle in (({"status": {"label": "Overdue"}}, "status label doesn't exist"),
                        ({"total": 12.5}, "as a string"), ({"total": "twelve"}, "not a number"),
                        ({"due": "31/01/2026"}, "YYYY-MM-DD"), ({"nope": "x"}, "column ID doesn't exist")):
        r = gql(monday, create, {"b": board, "n": "INV-2", "v": orjson.dumps(bad).decode()}).json()
        (error,) = r["errors"]
        assert needle in error["message"] and error["path"] == ["ok"], (bad, error)
        assert error["extensions"]["code"] in ("ColumnValueException", "InvalidColumnIdException")
    assert len(monday.emulator.items(board)) == 1  # nothing half-created
    # an aliased batch: the refused alias fails alone
    batch = gql(monday, "mutation ($b: ID!, $v: JSON, $w: JSON) { a: create_item(board_id: $b, item_name: \"A\", "
                        "column_values: $v) { id } b: create_item(board_id: $b, item_name: \"B\", column_values: $w) "
                        "{ id } }", {"b": board, "v": orjson.dumps({"total": "1"}).decode(),
                                     "w": orjson.dumps({"status": {"label": "Lost"}}).decode()}).json()
    assert batch["data"]["a"]["id"] and batch["data"]["b"] is None and batch["errors"][0]["path"] == ["b"]
    created = gql(monday, "mutation ($b: ID!) { create_item(board_id: $b, item_name: \"C\", column_values: "
                          "\"{\\\"status\\\": {\\\"label\\\": \\\"Written off\\\"}}\", create_labels_if_missing: true) "
                          "{ column_values(ids: [\"status\"]) { text } } }", {"b": board}).json()
    assert created["data"]["create_item"]["column_values"] == [{"text": "Written off"}]


def test_cursor_paging_and_lookup_by_name(monday):
    board = _board(monday)
    names = [f"INV-{i:04d}" for i in range(130)]
    for chunk in range(0, 130, 26):
        fields = " ".join(f'a{i}: create_item(board_id: $b, item_name: "{n}") {{ id }}'
                          for i, n in enumerate(names[chunk:chunk + 26]))
        assert "errors" not in gql(monday, f"mutation ($b: ID!) {{ {fields} }}", {"b": board}).json()
    page = gql(monday, "query ($b: [ID!]) { boards(ids: $b) { items_page(limit: 50) { cursor items { id name } } } }",
               {"b": [board]}).json()["data"]["boards"][0]["items_page"]
    seen = [i["name"] for i in page["items"]]
    while page["cursor"]:
        page = gql(monday, "query ($c: String!) { next_items_page(cursor: $c, limit: 50) { cursor items { name } } }",
                   {"c": page["cursor"]}).json()["data"]["next_items_page"]
        seen += [i["name"] for i in page["items"]]
    assert seen == names
    found = gql(monday, "query ($b: ID!, $v: [String]!) { items_page_by_column_values(board_id: $b, limit: 10, "
                        "columns: [{column_id: \"name\", column_values: $v}]) { cursor items { name } } }",
                {"b": board, "v": ["INV-0003", "INV-0100", "INV-9999"]}).json()
    assert [i["name"] for i in found["data"]["items_page_by_column_values"]["items"]] == ["INV-0003", "INV-0100"]
    expired = gql(monday, "query { next_items_page(cursor: \"eyJrIjoiMCIsIm8iOjB9\") { cursor } }").json()
    assert expired["errors"][0]["extensions"]["code"] == "CursorExpiredError"
    assert gql(monday, "query ($b: [ID!]) { boards(ids: $b) { items_page(limit: 501) { cursor } } }",
               {"b": [board]}).json()["errors"][0]["extensions"]["code"] == "ArgumentException"


def test_complexity_budget_and_minute_limit(monday):
    em = monday.emulator
    board = _board(monday)
    em.set_complexity_budget(25_000)
    fields = " ".join(f'a{i}: create_item(board_id: $b, item_name: "X{i}") {{ id }}' for i in range(2))
    first = gql(monday, f"mutation ($b: ID!) {{ complexity {{ after }} {fields} }}", {"b": board})
    assert first.status_code == 200 and first.json()["data"]["complexity"]["after"] == 5_000
    refused = gql(monday, f"mutation ($b: ID!) {{ {fields} }}", {"b": board})
    assert refused.status_code == 429 and float(refused.headers["Retry-After"]) > 0
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "COMPLEXITY_BUDGET_EXHAUSTED" and error["extensions"]["retry_in_seconds"] >= 1
    old = gql(monday, f"mutation ($b: ID!) {{ {fields} }}", {"b": board}, version="2025-04").json()["errors"][0]
    assert old["extensions"]["code"] == "ComplexityException" and "reset in" in old["message"]
    assert len(em.items(board)) == 2  # refused documents run nothing
    em.set_complexity_budget(10_000_000)
    em._minute = type(em._minute)(3, 60, 30.0)
    codes = [gql(monday, "query { version { value } }").status_code for _ in range(4)]
    assert codes[:3] == [200] * 3 and codes[3] == 429
    assert em.counters["over_limit"] >= 3
