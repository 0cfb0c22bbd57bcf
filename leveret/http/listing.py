"""The query parameters every management listing takes, answered as RabbitMQ 3.10's management plugin does.

`columns=a,b.c` keeps only those fields (a dotted name keeps that nested field); `sort=field` (dotted too)
and `sort_reverse=true` order the rows (a row without the field sorts first; numbers before strings, as
Erlang orders terms). `page=` switches to the paged envelope `{"filtered_count", "item_count", "items",
"page", "page_count", "page_size", "total_count"}` with `page_size=` (default 100, at most 500) and the
`name=` filter (a case-insensitive substring, or a case-insensitive regex with `use_regex=true`); bad
values get RabbitMQ's 400s. One object (GET of a single queue) takes `columns=` too; the overview keeps
the whole top-level field a dotted column names, as RabbitMQ's does. Handlers build their rows and call
`list_response` or `item_response`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from aiohttp import web

from leveret.http.encoding import dumps
from leveret.http.responses import Refusal

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class BadListing(Refusal):
    """A listing's parameters RabbitMQ refuses: its `error` and `reason`."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error, self.reason = error, reason

    def response(self) -> web.Response:
        return web.json_response({"error": self.error, "reason": self.reason}, status=400)


def list_response(request: web.Request, rows: Iterable[dict[str, Any]]) -> web.Response:
    """The answer to a GET of a listing: `rows` sorted, paged and cut to the asked columns."""
    query = request.query
    rows = list(rows)
    page = _page_parameters(query)
    if page is not None:
        number, size, pattern = page
        total = len(rows)
        if pattern is not None:
            rows = [row for row in rows if pattern.search(str(row.get("name", "")))]
        rows = _sorted(rows, query)
        filtered = len(rows)
        count = max(1, math.ceil(filtered / size))
        if number > count:
            raise BadListing("page_out_of_range",
                             f"Page out of range, page: {number} page size: {size}, len: {filtered}")
        items = [_columns(row, query) for row in rows[(number - 1) * size:number * size]]
        body: Any = {"filtered_count": filtered, "item_count": len(items), "items": items, "page": number,
                     "page_count": count, "page_size": size, "total_count": total}
    else:
        body = [_columns(row, query) for row in _sorted(rows, query)]
    return web.json_response(body, dumps=dumps)


def item_response(request: web.Request, item: dict[str, Any], nested: bool = True) -> web.Response:
    """The answer to a GET of one object, cut to `columns=` as a listing's rows are; `nested=False` (the
    overview, as RabbitMQ's) keeps the whole top-level field a dotted column names."""
    columns = _column_names(request.query)
    if columns and nested:
        item = _columns(item, request.query)
    elif columns:
        wanted = {column.split(".", 1)[0] for column in columns}
        item = {key: value for key, value in item.items() if key in wanted}
    return web.json_response(item, dumps=dumps)


def _page_parameters(query: Any) -> tuple[int, int, re.Pattern[str] | None] | None:
    if "page" not in query:
        return None
    raw_page, raw_size = query["page"], query.get("page_size")
    try:
        number = int(raw_page)
        size = DEFAULT_PAGE_SIZE if raw_size is None else int(raw_size)
    except ValueError:
        raise BadListing("bad_request", "Pagination parameters are invalid") from None
    if number < 1 or size < 1 or size > MAX_PAGE_SIZE:
        shown = "undefined" if raw_size is None else str(size)
        raise BadListing("invalid_pagination_parameters",
                         f"Invalid pagination parameters: page number {number}, page size {shown}")
    name = query.get("name", "")
    if not name:
        return number, size, None
    if query.get("use_regex") == "true":
        try:
            return number, size, re.compile(name, re.IGNORECASE)
        except re.error:
            raise BadListing("bad_request", "Pagination parameters are invalid") from None
    return number, size, re.compile(re.escape(name), re.IGNORECASE)


def _column_names(query: Any) -> list[str]:
    return [column for column in query.get("columns", "").split(",") if column]


def _columns(row: dict[str, Any], query: Any) -> dict[str, Any]:
    """`row` cut to the dotted `columns` (fields a row lacks are left out, as RabbitMQ leaves them)."""
    columns = _column_names(query)
    if not columns:
        return row
    out: dict[str, Any] = {}
    for column in columns:
        path = column.split(".")
        source: Any = row
        for key in path:
            if not isinstance(source, dict) or key not in source:
                break
            source = source[key]
        else:
            target = out
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = source
    return out


def _sort_key(row: dict[str, Any], path: list[str]) -> tuple[int, Any]:
    value: Any = row
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return (0, 0)
        value = value[key]
    if isinstance(value, bool) or value is None:
        return (2, str(value).lower())
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (3, value)
    return (4, str(value))


def _sorted(rows: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    field = query.get("sort", "")
    reverse = query.get("sort_reverse") == "true"
    if field:
        path = field.split(".")
        rows = sorted(rows, key=lambda row: _sort_key(row, path), reverse=reverse)
    elif reverse:
        rows = list(reversed(rows))
    return rows
