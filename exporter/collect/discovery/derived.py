"""What scrapes derive from a workspace's snapshot (its :class:`~exporter.collect.state.Target`
objects, its served outcomes), made once per snapshot and reused by every scrape while that
snapshot is the current one; a new snapshot reuses what did not change of the last one.

A snapshot never changes, so anything computed from it alone (and from a few inputs named
with it, the *variant*: the listing's health, say) stays right until the owner publishes a
new one. An entry holds its snapshot weakly: a replaced snapshot is not kept alive by what
was derived from it, and the next reader derives again from the new one. Entries are tuples
swapped whole, so scrapes that overlap read either the old entry or the new one, never half
of one; two that derive at once both build, and the last one kept is as good as the other.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar, cast

from .snapshot import Snapshot

T = TypeVar("T")


class Derived:
    """Values derived from snapshots, by name; owned by one runtime (a reload starts empty)."""

    def __init__(self) -> None:
        self._held: dict[Hashable, tuple[weakref.ref[Snapshot], tuple[object, ...], object]] = {}
        self.builds = 0
        """Values derived (not found current), for tests."""

    def get(
        self,
        name: Hashable,
        snapshot: Snapshot,
        make: Callable[[T | None], T],
        variant: tuple[object, ...] = (),
    ) -> T:
        """The value named ``name`` derived from ``snapshot`` (and ``variant``, compared by
        equality): the kept one while both are the same, else ``make(previous)``, kept in its
        place. ``previous`` is the value it replaces (None at first), whose unchanged parts
        ``make`` may reuse: objects that stay the same from one snapshot to the next keep
        what is keyed or compared by identity elsewhere (the render cache) valid."""
        held = self._held.get(name)
        if held is not None and held[0]() is snapshot and held[1] == variant:
            return cast("T", held[2])
        value = make(None if held is None else cast("T", held[2]))
        self._held[name] = (weakref.ref(snapshot), variant, value)
        self.builds += 1
        return value
