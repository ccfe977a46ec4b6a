"""The server side of the API's list pagination, for the stand-ins of Convocore (the demo API
and the benchmark's fake): one window of a list, in either of the two styles the real API
speaks. The client side, which follows both, is
:meth:`exporter.convocore.api.ConvocoreClient.list_jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Style = Literal["page", "cursor"]
MAX_LIMIT = 100


def window(
    items: Sequence[Any],
    query: Mapping[str, str],
    style: Style,
    key: str = "jobs",
    default_limit: int = 20,
) -> dict[str, Any]:
    """The ``data`` object of one list answer for ``query``'s ``page``/``cursor`` and ``limit``.

    Page style answers ``{key, total, page, pageSize}`` (``page`` 1-based); cursor style
    answers ``{key, nextCursor, hasMore}``. Raises ``ValueError`` on a non-numeric parameter.
    """
    limit = max(1, min(MAX_LIMIT, int(query.get("limit", str(default_limit)))))
    if style == "cursor":
        start = max(0, int(query.get("cursor") or "0"))
    else:
        start = (max(1, int(query.get("page", "1"))) - 1) * limit
    data: dict[str, Any] = {key: list(items[start : start + limit])}
    if style == "cursor":
        more = start + limit < len(items)
        data.update(nextCursor=str(start + limit) if more else None, hasMore=more)
    else:
        data.update(total=len(items), page=start // limit + 1, pageSize=limit)
    return data
