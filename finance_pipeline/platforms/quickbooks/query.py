"""The QuickBooks query language, as far as the emulator serves it, compiled to SQL.

    SELECT * | COUNT(*) | <field>[, <field>…] FROM <Entity> [WHERE <cond> [AND <cond>]…]
    [ORDERBY <field> [ASC|DESC][, …]] [STARTPOSITION n] [MAXRESULTS m]

Conditions: `<field> <op> <literal>` with `= < > <= >= !=`, `IN ('a', 'b')`, `LIKE '%x%'`.  As
Intuit documents: no OR, no JOIN, no GROUP BY; strings and dates in single quotes (a quote inside
doubled or backslash-escaped); keywords case-insensitive, entity names as Intuit spells them.
STARTPOSITION is 1-based, MAXRESULTS at most 1000 (default 100).  A field list (`SELECT Id FROM
Invoice`) is a projection: QBO answers sparse objects holding only those fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100


class QueryError(ValueError):
    """A query QBO would answer with a QueryParserError / QueryValidationError fault (code 4000)."""


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] = field(default_factory=list)  # a projection; empty: every field
    where: list[tuple[str, str, Any]] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<op><=|>=|!=|=|<|>|\(|\)|,|\*)"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<num>-?\d+(?:\.\d+)?))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Error parsing query: unexpected text at position {pos}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'").replace("\\'", "'")
        out.append((kind, value))
        pos = m.end()
    return out


def parse(text: str) -> Query:
    toks = _tokens(text)
    i = 0

    def peek(offset: int = 0) -> tuple[str, str]:
        return toks[i + offset] if i + offset < len(toks) else ("", "")

    def take(kind: str | None = None, word: str | None = None) -> str:
        nonlocal i
        k, v = peek()
        if (kind and k != kind) or (word and v.upper() != word):
            raise QueryError(f"Error parsing query: expected {word or kind}, found {v or 'end of query'!r}")
        i += 1
        return v

    def take_literal() -> tuple[str, str]:
        nonlocal i
        tok = peek()
        if not tok[0]:
            raise QueryError("Error parsing query: a value is missing")
        i += 1
        return tok

    take("word", "SELECT")
    count = False
    fields: list[str] = []
    if peek()[1] == "*":
        take("op")
    elif peek()[1].upper() == "COUNT":
        take("word")
        take("op", "(")
        take("op", "*")
        take("op", ")")
        count = True
    else:
        while peek()[0] == "word" and peek()[1].upper() != "FROM":
            fields.append(take("word"))
            if peek()[1] == ",":
                take("op")
        if not fields:
            raise QueryError("Error parsing query: expected *, COUNT(*) or a field list after SELECT")
    take("word", "FROM")
    q = Query(take("word"), count=count, fields=fields)
    if peek()[1].upper() == "WHERE":
        take("word")
        while True:
            name = take("word")
            k, v = peek()
            if k == "op" and v in ("=", "<", ">", "<=", ">=", "!="):
                take("op")
                q.where.append((name, v, _literal(take_literal())))
            elif v.upper() == "IN":
                take("word")
                take("op", "(")
                values = []
                while True:
                    values.append(_literal(take_literal()))
                    if peek()[1] == ",":
                        take("op")
                        continue
                    take("op", ")")
                    break
                q.where.append((name, "IN", values))
            elif v.upper() == "LIKE":
                take("word")
                q.where.append((name, "LIKE", take("str")))
            else:
                raise QueryError(f"Error parsing query: unsupported operator {v!r} after {name}")
            if peek()[1].upper() == "AND":
                take("word")
                continue
            if peek()[1].upper() == "OR":
                raise QueryError("Error parsing query: OR is not supported")
            break
    if peek()[1].upper() in ("ORDERBY", "ORDER"):
        if take("word").upper() == "ORDER":
            take("word", "BY")
        while True:
            name = take("word")
            direction = "ASC"
            if peek()[1].upper() in ("ASC", "DESC"):
                direction = take("word").upper()
            q.order.append((name, direction))
            if peek()[1] != ",":
                break
            take("op")
    while peek()[0]:
        word = take("word").upper()
        if word == "STARTPOSITION":
            q.start = max(1, int(take("num")))
        elif word == "MAXRESULTS":
            q.max_results = int(take("num"))
            if not 1 <= q.max_results <= MAX_RESULTS:
                raise QueryError(f"MAXRESULTS must be between 1 and {MAX_RESULTS}")
        else:
            raise QueryError(f"Error parsing query: unexpected {word!r}")
    return q


def _literal(token: tuple[str, str]) -> Any:
    kind, value = token
    if kind == "num":
        return value
    if kind == "word" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "str":
        return value
    raise QueryError(f"Error parsing query: {value!r} is not a literal")


def to_epoch_ms(value: str) -> int:
    """A QBO date-time literal ('2025-06-01T10:20:30-07:00', '…Z', or a date) as epoch ms."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{value!r} is not a valid date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)
