"""The slice of OData `$filter` the Service Layer emulator answers: `eq ne gt ge lt le`, `and`, `or`,
`not`, parentheses, `'text'` literals (`''` escapes a quote; v1 quotes dates), bare dates
(`2026-11-01`, v2), times (`10:15:00`), numbers, `null`.  Dates and times compare as ISO text."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Callable

_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^']|'')*)'|(\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?)|(\d{2}:\d{2}(?::\d{2})?)"
                    r"|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_/]*))")
_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}

Predicate = Callable[[dict], bool]


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot parse $filter near {text[pos:pos + 20]!r}")
        pos = m.end()
        lp, rp, s, d, t, n, w = m.groups()
        if lp:
            out.append(("(", None))
        elif rp:
            out.append((")", None))
        elif s is not None:
            out.append(("lit", s.replace("''", "'")))
        elif d:
            out.append(("lit", d[:10]))
        elif t:
            out.append(("lit", t if len(t) == 8 else t + ":00"))
        elif n:
            out.append(("lit", Decimal(n)))
        elif w.lower() == "null":
            out.append(("lit", None))
        else:
            out.append(("word", w))
    return out


def _compare(value: Any, op: str, literal: Any) -> bool:
    if value is None or literal is None:
        return (op == "eq") == (value is literal) if op in ("eq", "ne") else False
    if isinstance(literal, Decimal) and not isinstance(value, str):
        value = Decimal(str(value))
    elif isinstance(literal, str):
        value = str(value)
        if len(literal) == 10 and len(value) > 10 and value[4:5] == "-":
            value = value[:10]  # a datetime-typed date compared with a date literal
    return _OPS[op](value, literal)


def parse(text: str) -> Predicate:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end of $filter")
        pos += 1
        return tokens[pos - 1]

    def is_word(tok: tuple[str, Any] | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def expr() -> Predicate:
        left = term()
        while is_word(peek(), "or"):
            take()
            right = term()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def term() -> Predicate:
        left = factor()
        while is_word(peek(), "and"):
            take()
            right = factor()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def factor() -> Predicate:
        tok = take()
        if tok[0] == "(":
            inner = expr()
            if take()[0] != ")":
                raise FilterError("missing ')' in $filter")
            return inner
        if tok[0] == "word" and tok[1].lower() == "not":
            inner = factor()
            return lambda r: not inner(r)
        if tok[0] != "word":
            raise FilterError(f"expected a property name in $filter, got {tok[1]!r}")
        field = tok[1]
        op = take()
        if op[0] != "word" or op[1].lower() not in _OPS:
            raise FilterError(f"unsupported operator {op[1]!r} in $filter")
        lit = take()
        if lit[0] != "lit":
            raise FilterError(f"expected a literal after {field} {op[1]}")
        name, value = op[1].lower(), lit[1]
        return lambda r: _compare(r.get(field), name, value)

    predicate = expr()
    if pos != len(tokens):
        raise FilterError(f"unexpected {tokens[pos][1]!r} in $filter")
    return predicate
