"""NetSuite wire formats shared by the client and the emulator.

Records are handled in the REST Record API's JSON shape (`{"externalId": …, "entity": {"id": …},
"item": {"items": [...]}}`); SuiteTalk SOAP 2025.2 carries the same fields as XML elements in
the record type's namespace (`tranSales:` for SalesOrder/Invoice, `listRel:` for Customer),
references as `internalId` attributes, sublists as `<itemList><item>…</item></itemList>`,
dates as `xsd:dateTime` at local midnight with the offset.  `record_xml` / `parse_record`
convert between the two; the TBA passport signature is `tba_signature`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from finance_pipeline.settings import BUSINESS_TIMEZONE

VERSION = "2025_2"
SOAP_PATH = f"/services/NetSuitePort_{VERSION}"
REST_RECORD = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
NS = {
    "soapenv": "http://schemas.xmlsoap.org/soap/envelope/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "messages": f"urn:messages_{VERSION}.platform.webservices.netsuite.com",
    "core": f"urn:core_{VERSION}.platform.webservices.netsuite.com",
    "faults": f"urn:faults_{VERSION}.platform.webservices.netsuite.com",
    "tranSales": f"urn:sales_{VERSION}.transactions.webservices.netsuite.com",
    "listRel": f"urn:relationships_{VERSION}.lists.webservices.netsuite.com",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

# record type (REST id) → (SOAP namespace prefix, SOAP type name)
RECORD_TYPES = {"salesOrder": ("tranSales", "SalesOrder"), "invoice": ("tranSales", "Invoice"),
                "customer": ("listRel", "Customer")}
SOAP_TYPES = {f"{p}:{n}": t for t, (p, n) in RECORD_TYPES.items()}
REF_FIELDS = {"entity", "currency", "subsidiary", "item", "taxCode"}
DATE_FIELDS = {"tranDate", "dueDate"}
NUMBER_FIELDS = {"quantity", "rate", "amount", "tax1Amt", "total", "subtotal", "taxTotal"}
_TZ = ZoneInfo(BUSINESS_TIMEZONE)


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def tba_signature(account: str, consumer_key: str, token: str, nonce: str, timestamp: str,
                  consumer_secret: str, token_secret: str) -> str:
    """Base64(HMAC-SHA256(consumerSecret&tokenSecret, account&consumerKey&token&nonce&timestamp))."""
    message = "&".join((account, consumer_key, token, nonce, timestamp)).encode()
    key = f"{consumer_secret}&{token_secret}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def soap_datetime(day: str) -> str:
    """A date field as SOAP wants it: local midnight in the business time zone, with its offset."""
    local = datetime.combine(date.fromisoformat(day), time(0), _TZ)
    return local.isoformat()


def soap_date_value(text: str) -> str:
    """xsd:dateTime (any offset) → the calendar date in the business time zone (ISO)."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(_TZ)
    return parsed.date().isoformat()


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fields(parent: ET.Element, prefix: str, doc: dict) -> None:
    for name, value in doc.items():
        if name in ("externalId", "internalId", "id") or value is None:
            continue
        if name == "item" and isinstance(value, dict) and "items" in value:
            sub = ET.SubElement(parent, q(prefix, "itemList"))
            for line in value["items"]:
                _fields(ET.SubElement(sub, q(prefix, "item")), prefix, line)
            continue
        el = ET.SubElement(parent, q(prefix, name))
        if name in REF_FIELDS and isinstance(value, dict):
            if value.get("id") is not None:
                el.set("internalId", str(value["id"]))
            if value.get("externalId") is not None:
                el.set("externalId", str(value["externalId"]))
        elif name in DATE_FIELDS:
            el.text = soap_datetime(str(value))
        else:
            el.text = _text(value)


def record_xml(tag: str, record_type: str, doc: dict) -> ET.Element:
    """`<record xsi:type="tranSales:Invoice" externalId="…">…</record>` (tag: `record` or `baseRef`)."""
    prefix, type_name = RECORD_TYPES[record_type]
    el = ET.Element(tag)
    el.set(q("xsi", "type"), f"{prefix}:{type_name}")
    if doc.get("externalId"):
        el.set("externalId", str(doc["externalId"]))
    if doc.get("id"):
        el.set("internalId", str(doc["id"]))
    _fields(el, prefix, doc)
    return el


def _value(name: str, el: ET.Element) -> Any:
    if name in REF_FIELDS and ("internalId" in el.attrib or "externalId" in el.attrib):
        ref = {}
        if "internalId" in el.attrib:
            ref["id"] = el.attrib["internalId"]
        if "externalId" in el.attrib:
            ref["externalId"] = el.attrib["externalId"]
        return ref
    text = (el.text or "").strip()
    if name in DATE_FIELDS:
        return soap_date_value(text)
    if name in NUMBER_FIELDS:
        return Decimal(text)
    return text


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def parse_fields(el: ET.Element) -> dict:
    doc: dict[str, Any] = {}
    for child in el:
        name = _local(child.tag)
        if name == "itemList":
            doc["item"] = {"items": [parse_fields(line) for line in child if _local(line.tag) == "item"]}
        else:
            doc[name] = _value(name, child)
    return doc


def parse_record(el: ET.Element) -> tuple[str, dict]:
    """A SOAP `<record>` → (REST record type, REST-shaped doc).  Raises ValueError on unknown types."""
    xsi_type = el.get(q("xsi", "type"), "")
    prefix, _, name = xsi_type.partition(":")
    # the prefix is the document's own; match on the type name and the element namespace of children
    matches = [t for t, (_, n) in RECORD_TYPES.items() if n == name]
    if not matches:
        raise ValueError(f"unsupported record type {xsi_type!r}")
    doc = parse_fields(el)
    if el.get("externalId"):
        doc["externalId"] = el.get("externalId")
    if el.get("internalId"):
        doc["id"] = el.get("internalId")
    return matches[0], doc
