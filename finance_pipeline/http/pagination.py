"""Pagination styles, written once.  Each yields the parsed JSON body of every page."""
from __future__ import annotations

import queue
import re
import threading
from typing import Any, Callable, Iterator, Mapping, TypeVar

from finance_pipeline.http.client import ApiClient

T = TypeVar("T")
_END = object()

_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-zA-Z]+)"?')


def parse_link_header(value: str | None) -> dict[str, str]:
    """RFC 8288 `Link` header -> {rel: url}."""
    if not value:
        return {}
    return {rel: url for url, rel in _LINK.findall(value)}


def link_header_pages(client: ApiClient, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
    """Follow `Link: <...>; rel="next"` (Shopify REST, BigCommerce v3, GitHub style)."""
    resp = client.get(path, params=dict(params))
    yield resp.json()
    while (nxt := parse_link_header(resp.headers.get("link")).get("next")):
        resp = client.get(nxt)  # the cursor URL is used verbatim: filters are baked into it
        yield resp.json()


def cursor_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    items: Callable[[Any], list] = lambda body: body["data"],
    has_more: Callable[[Any], bool] = lambda body: bool(body.get("has_more")),
    cursor_param: str = "starting_after",
    cursor_of: Callable[[Any], str] = lambda item: item["id"],
) -> Iterator[Any]:
    """Object-id cursors (Stripe `starting_after` + `has_more`)."""
    query = dict(params)
    while True:
        body = client.get_json(path, params=query)
        yield body
        page = items(body)
        if not page or not has_more(body):
            return
        query[cursor_param] = cursor_of(page[-1])


def page_number_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    page_size: int,
    items: Callable[[Any], list],
    page_param: str = "page",
    first_page: int = 1,
    headers: Mapping[str, str] | None = None,
    pages_of: Callable[[Any], int] | None = None,
) -> Iterator[Any]:
    """1-based page numbers; stop at a short page (Xero, WooCommerce, Magento), or, with `pages_of`,
    after the last page the body announces (FreshBooks caps `per_page` silently: short pages lie)."""
    page = first_page
    while True:
        body = client.get_json(path, params={**params, page_param: page}, headers=headers)
        yield body
        if pages_of is not None:
            if page >= pages_of(body):
                return
        elif len(items(body)) < page_size:
            return
        page += 1


def next_url_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any],
    *,
    next_of: Callable[[Any], str | None] = lambda body: body.get("next"),
    headers: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Follow a `next` URL given in the body (eBay `href`/`next`/`total` offset pages): the URL is
    requested verbatim, filters and offset baked in.  An empty answer (HTTP 204) ends the walk."""
    body = client.get_json(path, params=dict(params), headers=headers)
    while body is not None:
        yield body
        nxt = next_of(body)
        if not nxt:
            return
        body = client.get_json(nxt, headers=headers)


def body_cursor_pages(
    client: ApiClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    method: str = "GET",
    json: Mapping[str, Any] | None = None,
    cursor_field: str = "cursor",
    cursor_param: str = "cursor",
) -> Iterator[Any]:
    """An opaque next-page token in the body (Square `cursor`, SP-API `NextToken`): sent back as a
    query parameter on GET, or as a body field on POST searches (resending the original query, as
    Square's SearchOrders requires).  An absent or empty token ends the walk.  POST searches are
    reads, so they are retried like GETs."""
    query = dict(params or {})
    body = dict(json) if json is not None else None
    while True:
        if method.upper() == "GET":
            resp = client.get(path, params=query)
        else:
            resp = client.request(method, path, params=query or None, json=body, idempotent=True)
        page = resp.json()
        yield page
        token = page.get(cursor_field) if isinstance(page, dict) else None
        if not token:
            return
        if body is not None and method.upper() != "GET":
            body[cursor_param] = token
        else:
            query[cursor_param] = token


def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`pages`, fetched up to `depth` pages ahead of the caller in a thread of their own.

    A cursor's next request can leave as soon as the previous answer is in, so the wait for the
    server (and the JSON parse) overlaps the caller's conversion and load of the page before, as
    a browser keeps a connection busy.  Pages arrive in order; an error of the fetch is raised in
    the caller at the point it happened; closing this iterator early stops the fetching after the
    request in flight (whose answer is dropped: the caller's cursor never saw it)."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not put((page, None)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put((_END, exc))
            return
        finally:
            if stop.is_set() and hasattr(pages, "close"):
                pages.close()
        put((_END, None))

    worker = threading.Thread(target=fetch, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            page, error = ahead.get()
            if page is _END:
                if error is not None:
                    raise error
                return
            yield page
    finally:
        stop.set()
