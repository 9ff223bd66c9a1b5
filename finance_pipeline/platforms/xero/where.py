"""Xero's `where` filter (a small C#-like expression language) compiled to a SQLite WHERE clause.

Supported: comparisons `== != >= <= > <` of a field with a string, number, `true`/`false`/`null`,
`DateTime(y,m,d[,h,mi,s])` or `Guid("…")`; `AND`/`&&`, `OR`/`||` (AND binds tighter) and
parentheses.  Examples Xero documents: `Status=="AUTHORISED" AND Date>=DateTime(2025,01,01)`,
`Contact.ContactID==Guid("…")`, `InvoiceNumber=="INV-1001"`.  Anything else (method calls such
as `Name.StartsWith("A")`, unknown fields) is a 400 with a message, as Xero answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

Kind = Literal["text", "text_nocase", "date", "ms", "bool"]


class WhereError(ValueError):
    """The filter cannot be parsed or uses something the emulator does not support."""


@dataclass(frozen=True)
class Field:
    column: str
    kind: Kind = "text"


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|>=|<=|>|<)
    | (?P<and>&&)
    | (?P<or>\|\|)
    | (?P<lp>\()
    | (?P<rp>\))
    | (?P<comma>,)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    )""", re.VERBOSE)

_SQL_OP = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WhereError(f"cannot parse the where filter near {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "ident" and value.upper() in ("AND", "OR"):
            kind = value.lower()
        out.append((kind, value))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: Mapping[str, Field]) -> None:
        self.tokens = tokens
        self.i = 0
        self.fields = {k.lower(): v for k, v in fields.items()}
        self.params: list[Any] = []

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind):
            raise WhereError(f"where filter: expected {kind or 'more'} at token {self.i + 1}")
        self.i += 1
        return tok

    def expr(self) -> str:
        parts = [self.and_expr()]
        while (tok := self.peek()) and tok[0] == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.atom()]
        while (tok := self.peek()) and tok[0] == "and":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def atom(self) -> str:
        tok = self.peek()
        if tok and tok[0] == "lp":
            self.take()
            inner = self.expr()
            self.take("rp")
            return inner
        name = self.take("ident")[1]
        if (nxt := self.peek()) and nxt[0] == "lp":
            raise WhereError(f"where filter: {name}(…) is not supported by the sandbox")
        field = self.fields.get(name.lower())
        if field is None:
            raise WhereError(f"where filter: unknown or unsupported field {name!r}")
        op = self.take("op")[1]
        value = self.value()
        return self.compare(field, op, value)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            low = text.lower()
            if low in ("true", "false"):
                return low == "true"
            if low == "null":
                return None
            if low in ("datetime", "datetimeutc", "guid"):
                self.take("lp")
                args = [self.value()]
                while (tok := self.peek()) and tok[0] == "comma":
                    self.take()
                    args.append(self.value())
                self.take("rp")
                if low == "guid":
                    return str(args[0])
                try:
                    return datetime(*[int(a) for a in args], tzinfo=timezone.utc)
                except (TypeError, ValueError) as exc:
                    raise WhereError(f"where filter: bad DateTime{tuple(args)}") from exc
        raise WhereError(f"where filter: unexpected {text!r}")

    def compare(self, field: Field, op: str, value: Any) -> str:
        col, sql_op = field.column, _SQL_OP[op]
        if value is None:
            if op not in ("==", "!="):
                raise WhereError("where filter: null only compares with == or !=")
            return f"{col} IS {'NOT ' if op == '!=' else ''}NULL"
        if field.kind == "date":
            value = value.date().isoformat() if isinstance(value, datetime) else str(value)[:10]
        elif field.kind == "ms":
            if not isinstance(value, datetime):
                raise WhereError("where filter: compare UpdatedDateUTC with DateTime(…)")
            value = int(value.timestamp() * 1000)
        elif field.kind == "bool":
            value = 1 if value else 0
        elif isinstance(value, datetime):
            raise WhereError("where filter: DateTime compared with a text field")
        else:
            value = str(value)
        self.params.append(value)
        collate = " COLLATE NOCASE" if field.kind == "text_nocase" else ""
        return f"{col}{collate} {sql_op} ?"


def compile_where(text: str | None, fields: Mapping[str, Field]) -> tuple[str, list[Any]]:
    """`text` -> (SQL boolean expression, parameters); an empty filter is `1=1`."""
    if not text or not text.strip():
        return "1=1", []
    parser = _Parser(_tokenize(text), fields)
    sql = parser.expr()
    if parser.peek() is not None:
        raise WhereError(f"where filter: unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return sql, parser.params
