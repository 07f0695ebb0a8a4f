"""Maps that give each key once.

``json.loads``, msgpack and msgspec all read a key given twice in one map as
its last value, silently: a day event with ``"peak"`` twice in a slot, or a
config file with ``depth`` twice, would be folded with one of two values
nobody chose. The parsers' pairs hooks see every pair; this is the one hook.
"""

from __future__ import annotations

from typing import Any, Iterable


class RepeatedKey(ValueError):
    """A map with a key twice; ``key`` is that key."""

    def __init__(self, key: Any) -> None:
        super().__init__(f"key {key!r} is given twice")
        self.key = key


def distinct_pairs(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """The dict of ``pairs`` (a parser's ``object_pairs_hook``); `RepeatedKey` for a key met twice."""
    table: dict[Any, Any] = {}
    for key, value in pairs:
        if key in table:
            raise RepeatedKey(key)
        table[key] = value
    return table
