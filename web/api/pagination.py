"""Cursor pagination: an opaque cursor names where the next page starts; ``limit`` is capped."""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

import marshmallow as ma
from flask import abort

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageArgs(ma.Schema):
    """``cursor`` and ``limit`` of a list."""

    cursor = ma.fields.String(load_default=None, metadata={"description": "`next_cursor` of the previous page"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT),
                              metadata={"description": f"Items per page, 1 to {MAX_LIMIT}"})


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page schema: ``items`` of ``item`` and the ``next_cursor``."""
    return ma.Schema.from_dict({
        "items": ma.fields.List(ma.fields.Nested(item), required=True),
        "next_cursor": ma.fields.String(required=True, allow_none=True,
                                        metadata={"description": "Pass as `cursor` for the next page; null at the end"}),
    }, name=name)


def encode_cursor(position: dict[str, Any]) -> str:
    """An opaque cursor for ``position``."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, **types: type) -> dict[str, Any] | None:
    """The position in a cursor (``None`` for the first page); 400 for a cursor this API did not make.

    ``types`` names each key the position must hold and its type, e.g. ``decode_cursor(c, id=int)``.
    """
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        position = None
    if not isinstance(position, dict) or any(
            not isinstance(position.get(key), kind) or isinstance(position.get(key), bool)
            for key, kind in types.items()):
        abort(400, description="分页游标无效，请从第一页重新开始 / invalid cursor; start again from the first page")
    return position


def page(rows: Sequence[Any], limit: int, position: Callable[[Any], dict[str, Any]],
         present: Callable[[Any], Any] = lambda row: row) -> dict[str, Any]:
    """A page of ``rows`` (fetched with ``limit + 1``): the first ``limit``, and a cursor if there are more."""
    more = len(rows) > limit
    rows = list(rows[:limit])
    return {"items": [present(row) for row in rows],
            "next_cursor": encode_cursor(position(rows[-1])) if more and rows else None}
