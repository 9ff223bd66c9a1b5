"""Pagination styles, written once.  Each yields the parsed JSON body of every page."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Mapping

from finance_pipeline.http.client import ApiClient

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
) -> Iterator[Any]:
    """1-based page numbers; stop at a short page (Xero, WooCommerce, Magento)."""
    page = first_page
    while True:
        body = client.get_json(path, params={**params, page_param: page}, headers=headers)
        yield body
        if len(items(body)) < page_size:
            return
        page += 1
