"""OData `$batch` on the Service Layer's wire: `multipart/mixed` bodies of embedded HTTP messages.

A batch request is a MIME multipart body (`Content-Type: multipart/mixed;boundary=batch_<id>`); each
part is either one `application/http` request (`Content-Transfer-Encoding: binary`, then the request
line, its headers, a blank line and its body) or a change set: a nested `multipart/mixed` of such
requests, each with a `Content-ID`, applied all or nothing.  The answer mirrors it (the Service
Layer answers `200 OK`): a change set that succeeded is a nested multipart of its responses (status
line `HTTP/1.1 201 Created` …) carrying the same Content-IDs; one that failed is a single
`application/http` error response.  Lines end in CRLF.

Both sides use this module: the client (`client.batch`) to write requests and read answers, the
emulator to read requests and write answers.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

CRLF = b"\r\n"
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


class BatchFormatError(ValueError):
    """A body that is not a well-formed OData multipart batch."""


@dataclass
class Message:
    """One embedded HTTP request or response, with the MIME part's `Content-ID` (if any)."""

    content_id: str | None = None
    method: str = ""  # requests: GET, POST, PATCH …
    target: str = ""  # requests: the path (and query) as written on the request line
    status: int = 0  # responses
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


def boundary_of(content_type: str | None) -> str:
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise BatchFormatError("a batch must be multipart/mixed")
    m = _BOUNDARY.search(content_type)
    if not m:
        raise BatchFormatError("multipart/mixed without a boundary")
    return m.group(1).strip()


def new_boundary(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4()}"


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split(CRLF):
        if not line.strip():
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BatchFormatError(f"bad header line {line[:60]!r}")
        out[name.strip().lower()] = value.strip()
    return out


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, rest) at the first blank line; a part without one has no body."""
    head, sep, rest = raw.partition(CRLF + CRLF)
    if not sep:
        return raw, b""
    return head, rest


def split_parts(content_type: str | None, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/mixed body: (MIME headers, content) each."""
    delimiter = b"--" + boundary_of(content_type).encode()
    if delimiter not in body:
        raise BatchFormatError("the boundary does not occur in the body")
    chunks = body.split(delimiter)
    out = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        if chunk.startswith(CRLF):
            chunk = chunk[2:]
        if chunk.endswith(CRLF):
            chunk = chunk[:-2]
        head, content = _split_head(chunk)
        out.append((_headers(head), content))
    return out


def _message(mime: dict[str, str], content: bytes, *, response: bool) -> Message:
    if "application/http" not in mime.get("content-type", "").lower():
        raise BatchFormatError("a batch part must be application/http or a multipart/mixed change set")
    head, body = _split_head(content)
    lines = head.split(CRLF)
    first = lines[0].decode("latin-1").strip()
    msg = Message(content_id=mime.get("content-id"), headers=_headers(CRLF.join(lines[1:])), body=body.rstrip(b"\r\n"))
    words = first.split(" ", 2)
    if response:
        if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
            raise BatchFormatError(f"bad status line {first[:60]!r}")
        msg.status = int(words[1])
    else:
        if len(words) < 2:
            raise BatchFormatError(f"bad request line {first[:60]!r}")
        msg.method, msg.target = words[0].upper(), words[1]
    return msg


def read(content_type: str | None, body: bytes, *, response: bool) -> list[list[Message] | Message]:
    """A batch (request or response) as its top-level items: a list of messages for a change set,
    one message for an operation outside a change set (or a failed change set's error answer)."""
    out: list[list[Message] | Message] = []
    for mime, content in split_parts(content_type, body):
        kind = mime.get("content-type", "")
        if kind.lower().startswith("multipart/mixed"):
            out.append([_message(m, c, response=response) for m, c in split_parts(kind, content)])
        else:
            out.append(_message(mime, content, response=response))
    return out


def _http_part(first_line: str, msg: Message) -> bytes:
    lines = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if msg.content_id:
        lines.append(f"Content-ID: {msg.content_id}".encode())
    lines += [b"", first_line.encode()]
    lines += [f"{k}: {v}".encode() for k, v in msg.headers.items()]
    return CRLF.join(lines) + CRLF + CRLF + msg.body + CRLF


def _first_line(msg: Message, response: bool) -> str:
    if response:
        try:
            phrase = HTTPStatus(msg.status).phrase
        except ValueError:
            phrase = ""
        return f"HTTP/1.1 {msg.status} {phrase}".rstrip()
    return f"{msg.method} {msg.target} HTTP/1.1"


def write(items: list[list[Message] | Message], *, response: bool) -> tuple[str, bytes]:
    """(Content-Type, body) of a batch whose top-level items are change sets (lists) or single messages."""
    outer = new_boundary("batchresponse" if response else "batch")
    out = b""
    for item in items:
        out += b"--" + outer.encode() + CRLF
        if isinstance(item, list):
            inner = new_boundary("changesetresponse" if response else "changeset")
            out += f"Content-Type: multipart/mixed;boundary={inner}".encode() + CRLF + CRLF
            for msg in item:
                out += b"--" + inner.encode() + CRLF + _http_part(_first_line(msg, response), msg)
            out += b"--" + inner.encode() + b"--" + CRLF
        else:
            out += _http_part(_first_line(item, response), item)
    out += b"--" + outer.encode() + b"--" + CRLF
    return f"multipart/mixed;boundary={outer}", out
