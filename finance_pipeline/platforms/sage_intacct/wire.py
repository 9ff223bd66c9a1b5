"""Sage Intacct XML Web Services (API 3.0 gateway) wire format, shared by the client and the emulator.

One endpoint, `POST /ia/xml/xmlgw.phtml` with `Content-Type: application/xml`.  A request is
`<request><control>` (sender credentials, `controlid`, `uniqueid`, `dtdversion` 3.0) + one
`<operation>` (`<authentication>` with `<login>` or `<sessionid>`, then `<content>` of
`<function controlid="…">`).  Answers come with HTTP 200 whatever happened: the status is read at
control level, at authentication level and per `<result>` (`<errormessage><error><errorno>` …).
Dates: `MM/DD/YYYY` (dates) and `MM/DD/YYYY HH:MM:SS` (timestamps, `WHENMODIFIED`); money as
decimal text.  XML is parsed with the standard library after refusing any DTD, so no entity (internal
or external) is ever expanded (what defusedxml does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable
from xml.etree import ElementTree as ET

PATH = "/ia/xml/xmlgw.phtml"
DTD_VERSION = "3.0"
DOCPARID = "Sales Invoice"
UTC = timezone.utc


class UnsafeXml(ValueError):
    """A document with a DTD or entity declaration: refused unparsed."""


def parse(body: bytes | str) -> ET.Element:
    """Parse an XML document; a DOCTYPE/ENTITY declaration is refused (no entity expansion, ever)."""
    raw = body.encode() if isinstance(body, str) else body
    head = raw[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in raw.upper():
        raise UnsafeXml("DTDs and entity declarations are not accepted")
    return ET.fromstring(raw)


def to_bytes(el: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(el, encoding="utf-8", xml_declaration=False)


def sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text if isinstance(text, str) else money(text) if isinstance(text, Decimal) else str(text)
    return el


def money(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def idate(d: date | None) -> str:
    return d.strftime("%m/%d/%Y") if d else ""


def itimestamp(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%m/%d/%Y %H:%M:%S") if at else ""


def parse_idate(text: str | None) -> date | None:
    return datetime.strptime(text.strip(), "%m/%d/%Y").date() if text and text.strip() else None


def parse_itimestamp(text: str | None) -> datetime | None:
    if not text or not text.strip():
        return None
    text = text.strip()
    fmt = "%m/%d/%Y %H:%M:%S" if " " in text else "%m/%d/%Y"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def legacy_date(parent: ET.Element, tag: str, d: date) -> None:
    """Legacy (2.1-style) functions take structured dates: <tag><year/><month/><day/></tag>."""
    el = sub(parent, tag)
    sub(el, "year", d.year)
    sub(el, "month", d.month)
    sub(el, "day", d.day)


def read_legacy_date(el: ET.Element | None) -> date | None:
    if el is None:
        return None
    try:
        return date(int(el.findtext("year") or ""), int(el.findtext("month") or ""), int(el.findtext("day") or ""))
    except ValueError:
        return None


def record(el: ET.Element) -> dict[str, str]:
    """An object row (`<SODOCUMENT><RECORDNO>…`) as {field: text}."""
    return {child.tag: (child.text or "") for child in el}


# -- requests -----------------------------------------------------------------------------------------
@dataclass
class Sender:
    sender_id: str
    sender_password: str


def request_xml(sender: Sender, auth: ET.Element, functions: Iterable[ET.Element], *, controlid: str,
                uniqueid: bool = False) -> bytes:
    root = ET.Element("request")
    control = sub(root, "control")
    sub(control, "senderid", sender.sender_id)
    sub(control, "password", sender.sender_password)
    sub(control, "controlid", controlid)
    sub(control, "uniqueid", "true" if uniqueid else "false")
    sub(control, "dtdversion", DTD_VERSION)
    sub(control, "includewhitespace", "false")
    operation = sub(root, "operation")
    operation.append(auth)
    content = sub(operation, "content")
    for fn in functions:
        content.append(fn)
    return to_bytes(root)


def login_auth(user_id: str, company_id: str, password: str, entity_id: str | None = None) -> ET.Element:
    auth = ET.Element("authentication")
    login = sub(auth, "login")
    sub(login, "userid", user_id)
    sub(login, "companyid", company_id)
    sub(login, "password", password)
    if entity_id:
        sub(login, "locationid", entity_id)
    return auth


def session_auth(session_id: str) -> ET.Element:
    auth = ET.Element("authentication")
    sub(auth, "sessionid", session_id)
    return auth


def function(controlid: str, body: ET.Element) -> ET.Element:
    fn = ET.Element("function", {"controlid": controlid})
    fn.append(body)
    return fn


def read_by_query(obj: str, query: str, page_size: int, fields: str = "*", docparid: str | None = None) -> ET.Element:
    el = ET.Element("readByQuery")
    sub(el, "object", obj)
    sub(el, "fields", fields)
    sub(el, "query", query)
    sub(el, "pagesize", page_size)
    if docparid:
        sub(el, "docparid", docparid)
    return el


def read_more(result_id: str) -> ET.Element:
    el = ET.Element("readMore")
    sub(el, "resultId", result_id)
    return el


def quote(value: str) -> str:
    """A string literal in an Intacct query (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


# -- responses ------------------------------------------------------------------------------------------
@dataclass
class IntacctError:
    errorno: str
    description: str
    description2: str
    correction: str = ""

    def __str__(self) -> str:
        text = "; ".join(p for p in (self.description, self.description2, self.correction) if p)
        return f"{self.errorno}: {text}" if text else self.errorno


def errors(parent: ET.Element | None) -> list[IntacctError]:
    if parent is None:
        return []
    em = parent.find("errormessage")
    if em is None:
        return []
    return [IntacctError(e.findtext("errorno") or "", (e.findtext("description") or "").strip(),
                         (e.findtext("description2") or "").strip(), (e.findtext("correction") or "").strip())
            for e in em.findall("error")]


@dataclass
class Result:
    status: str
    function: str
    controlid: str
    data: ET.Element | None
    errors: list[IntacctError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def message(self) -> str:
        return "; ".join(str(e) for e in self.errors) or self.status


@dataclass
class Answer:
    control_ok: bool
    auth_ok: bool
    errors: list[IntacctError]
    results: list[Result]
    session_timeout: str | None = None


def parse_answer(body: bytes) -> Answer:
    root = parse(body)
    control_ok = (root.findtext("control/status") or "") == "success"
    if not control_ok:
        return Answer(False, False, errors(root), [])
    op = root.find("operation")
    auth = op.find("authentication") if op is not None else None
    auth_ok = auth is not None and (auth.findtext("status") or "") == "success"
    if not auth_ok:
        return Answer(True, False, errors(op), [])
    results = [Result(r.findtext("status") or "", r.findtext("function") or "", r.findtext("controlid") or "",
                      r.find("data"), errors(r)) for r in op.findall("result")]
    return Answer(True, True, [], results, auth.findtext("sessiontimeout"))
