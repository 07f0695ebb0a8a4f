"""Whether a record repeats a key in one of its maps, read independently of the
decoders under test (which refuse such records: ``sequencer.app.distinct_keys``)."""

from __future__ import annotations

import json

import msgpack


def repeats_a_key(data: bytes) -> bool:
    """Whether a map of ``data`` (JSON or msgpack, read as pairs) gives a key twice: an
    independent reading of what the decoder's check decides."""
    try:
        if data.lstrip()[:1] == b"{" or data.startswith(b"\xef\xbb\xbf"):
            tree = json.loads(data, object_pairs_hook=lambda pairs: ("map", pairs))
        else:
            tree = msgpack.unpackb(data, raw=False, strict_map_key=False,
                                   object_pairs_hook=lambda pairs: ("map", pairs))
    except Exception:  # noqa: BLE001 - unreadable: no map to look into
        return False

    def walk(node) -> bool:
        if isinstance(node, tuple) and len(node) == 2 and node[0] == "map" and isinstance(node[1], list):
            try:
                repeated = len({key: None for key, _ in node[1]}) != len(node[1])
            except TypeError:  # an unhashable key (a msgpack array): no dict holds it either
                repeated = False
            return repeated or any(walk(value) for _, value in node[1])
        if isinstance(node, (list, tuple)):
            return any(walk(item) for item in node)
        return False
    return walk(tree)
