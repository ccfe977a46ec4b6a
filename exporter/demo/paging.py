"""The server side of the API's list pagination, for the stand-ins of Convocore (the demo API
and the benchmark's fake): one answer of a list, in any of the three shapes the real API may
answer in. The client side, which follows them all, is
:func:`exporter.convocore.api.read_list_answer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Style = Literal["page", "cursor", "cursor-beside"]
"""``page``: page numbers; ``cursor``: cursors inside ``data``; ``cursor-beside``: cursors
beside an array ``data``, as Convocore's documented cursor lists answer."""
STYLES: tuple[Style, ...] = ("page", "cursor", "cursor-beside")
MAX_LIMIT = 100


def document(
    items: Sequence[Any],
    query: Mapping[str, str],
    style: Style,
    key: str = "jobs",
    default_limit: int = 20,
) -> dict[str, Any]:
    """The whole answer (``{"success": true, "message", "data", ...}``) of one list request
    for ``query``'s ``page``/``cursor`` and ``limit``.

    Page style answers ``data: {key, total, page, pageSize}`` (``page`` 1-based); cursor style
    ``data: {key, nextCursor, hasMore}``; cursor-beside style ``data: [...]`` with
    ``hasMore``, ``nextCursor`` and ``limit`` beside it. Raises ``ValueError`` on a
    non-numeric parameter.
    """
    limit = max(1, min(MAX_LIMIT, int(query.get("limit", str(default_limit)))))
    answer: dict[str, Any] = {"success": True, "message": "ok"}
    if style == "page":
        start = (max(1, int(query.get("page", "1"))) - 1) * limit
        page = list(items[start : start + limit])
        answer["data"] = {key: page, "total": len(items), "page": start // limit + 1}
        answer["data"]["pageSize"] = limit
        return answer
    start = max(0, int(query.get("cursor") or "0"))
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    paging = {"nextCursor": str(start + limit) if more else None, "hasMore": more}
    if style == "cursor":
        answer["data"] = {key: page, **paging}
    else:
        answer.update(data=page, **paging, limit=limit)
    return answer
