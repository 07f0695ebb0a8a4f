"""Peer runner: quix-streams (3.28) with the project's fold, in two variants.

``--variant idiomatic``: the stream state lives in quix's state store
(RocksDB, changelog topic); every event reads the stream's document from
the store (``state.get``, quix's JSON decode), builds the ``StreamState``
(``state_from_dict``), folds, and writes the new document back
(``state_to_dict`` + ``state.set``).

``--variant tuned``: the same, but decoded states are kept in the process
(a dict by stream key); the store is read only on a miss (first event of a
stream, or after a restart) and still written on every event, so the store
and its changelog hold every state as in the idiomatic variant. Valid while
one process owns the partitions (as in this bench); a rebalance would have
to drop the cache of revoked partitions.

Decisions go to the decisions topic (``to_topic``). Quix commits a
checkpoint (producer flush, changelog, offsets, store) every
``commit_interval`` (its default, 5 s) and at stop. After the run the final
states are read back from the RocksDB store on disk.

Broker notes (Tansu): topics must carry ``retention.ms``/``retention.bytes``
(bench_peers.py creates them so; quix copies those settings to its changelog
topics and fails on an empty DescribeConfigs answer), and a shorter session
timeout lets the group join quickly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from peer_common import CONFIG, Stopwatch, fold_step, parse_args, write_result

from sequencer.domain import state_from_dict, state_to_dict

STATE_KEY = "state"


def store_states(state_dir: Path) -> list[dict]:
    """Every stream state document in the RocksDB partitions under ``state_dir``."""
    from rocksdict import AccessType, Rdict

    docs = []
    for part in sorted(p for p in state_dir.rglob("*") if p.is_dir() and (p / "CURRENT").exists()):
        db = Rdict(str(part), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if isinstance(key, bytes) and key.endswith(b"|" + json.dumps(STATE_KEY).encode()):
                    docs.append(json.loads(value))
        finally:
            db.close()
    return docs


def main() -> None:
    args = parse_args(__doc__)
    from quixstreams import Application

    state_dir = args.work / "quix-state"
    app = Application(
        broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
        state_dir=state_dir, loglevel=logging.WARNING,
        # Join quickly on the embedded broker; 6 s / 1 s as the worker's group timeouts.
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    events = app.topic(args.events_topic, key_deserializer="str", value_deserializer="bytes")
    decisions = app.topic(args.decisions_topic, key_serializer="str", value_serializer="bytes")
    watch = Stopwatch()

    def count() -> None:
        if watch.tick() >= args.expected:
            app.stop()   # quix leaves its loop and commits a final checkpoint

    def fold_idiomatic(value: bytes, state) -> bytes | None:
        count()
        doc = state.get(STATE_KEY)
        current = None if doc is None else state_from_dict(doc, CONFIG)
        new, decision = fold_step(current, value)
        if new is not current:
            state.set(STATE_KEY, state_to_dict(new))
        return decision

    decoded: dict[str, object] = {}

    def fold_tuned(value: bytes, key: str, timestamp: int, headers, state) -> bytes | None:
        count()
        current = decoded.get(key)
        if current is None:
            doc = state.get(STATE_KEY)
            current = None if doc is None else state_from_dict(doc, CONFIG)
        new, decision = fold_step(current, value)
        if new is not current:
            decoded[key] = new
            state.set(STATE_KEY, state_to_dict(new))
        return decision

    sdf = app.dataframe(events)
    if args.variant == "idiomatic":
        sdf = sdf.apply(fold_idiomatic, stateful=True)
    elif args.variant == "tuned":
        sdf = sdf.apply(fold_tuned, stateful=True, metadata=True)
    else:
        raise SystemExit(f"unknown quix variant {args.variant!r} (idiomatic or tuned)")
    sdf = sdf.filter(lambda decision: decision is not None)
    sdf.to_topic(decisions)
    app.run()
    seconds = watch.seconds()
    write_result(args.result, seconds=seconds, events=watch.events, states=store_states(state_dir))


if __name__ == "__main__":
    main()
