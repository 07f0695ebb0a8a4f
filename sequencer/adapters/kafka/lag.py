"""Consumer lag of the worker's group on the event topic: the reader that fetches the
offsets from any Kafka broker (the computation over them is `sequencer.app.lag_report`).

End offsets: ListOffsets is not trusted alone. Tansu (the embedded broker)
answers "base offset of the last batch + 1", short for any multi-record batch,
while the high watermark carried by its *fetch* responses is right. The reader
fetches each partition once and takes the larger of the two (on Apache Kafka
they agree).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from sequencer.app.lag_report import GroupReading, LagReport, TailDates, compute_lag, true_ends

#: Seconds the one fetch per partition may wait for the broker's answer (an
#: empty partition answers only after the fetch's max wait).
FETCH_WAIT_MS = 50
#: Seconds to get a fetch answer (the high watermark) from every partition.
HIGHWATER_TIMEOUT_S = 5.0
#: Records of the unconsumed tail read at most for the freshness, per reading.
#: Past it the dates are those of the tail's first records, and the reading says so.
DEFAULT_TAIL_LIMIT = 50_000
#: Kafka's error code for a group the broker does not know (it has no members).
GROUP_ID_NOT_FOUND = 69


async def read_group(bootstrap: str, group: str, topic: str, security: Mapping[str, Any] | None = None,
                     *, tail_limit: int = 0) -> GroupReading:
    """Committed, earliest and true end offsets, the group's member count, and
    (``tail_limit`` > 0) the dates of up to that many unconsumed records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    security = dict(security or {})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=FETCH_WAIT_MS, **security)
    try:
        await admin.start()
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return GroupReading(compute_lag(group, topic, {}, {}, {}, await _members(admin, group)), None)
        listed = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        earliest = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
        committed = _committed_in(await admin.list_consumer_group_offsets(group, partitions=tps), topic)
        members = await _members(admin, group)
        tail = TailDates() if tail_limit > 0 else None
        fetched = await _fetch_highwaters(consumer, tps, listed, earliest, committed, tail, tail_limit)
        end = true_ends(listed, fetched)
        return GroupReading(compute_lag(group, topic, committed, earliest, end, members), tail)
    finally:
        # Also after a failed start (broker unreachable): nothing is left unclosed.
        await consumer.stop()
        await admin.close()


async def consumer_lag(bootstrap: str, group: str, topic: str,
                       security: Mapping[str, Any] | None = None) -> LagReport:
    """Read the group's offsets from the broker and compute the lag (no tail)."""
    return (await read_group(bootstrap, group, topic, security)).report


async def _fetch_highwaters(consumer: Any, tps: list, listed: Mapping[int, int], earliest: Mapping[int, int],
                            committed: Mapping[int, int], tail: TailDates | None, tail_limit: int) -> dict[int, int | None]:
    """The high watermark of each partition from fetch answers.

    Without ``tail``: one fetch per partition at its ListOffsets end (the last
    batch on Tansu, nothing on Kafka). With it: the partitions are read from
    the group's committed offset (earliest before any commit) to their end,
    ``tail_limit`` records at most over all, and the records' dates kept.
    """
    consumer.assign(tps)
    for tp in tps:
        start = listed[tp.partition]
        if tail is not None:
            start = max(committed.get(tp.partition, earliest[tp.partition]), earliest[tp.partition])
        consumer.seek(tp, start)
    pending = set(tps)
    deadline = time.monotonic() + HIGHWATER_TIMEOUT_S
    while pending and time.monotonic() < deadline:
        batches = await consumer.getmany(*pending, timeout_ms=FETCH_WAIT_MS * 4, max_records=5000)
        if tail is not None:
            for tp, records in batches.items():
                for record in records:
                    tail.add(tp.partition, record.value)
            if batches:
                deadline = time.monotonic() + HIGHWATER_TIMEOUT_S  # still reading: not stuck
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            if tail is None:
                pending.discard(tp)
            elif await consumer.position(tp) >= max(highwater, listed[tp.partition]):
                pending.discard(tp)
        if tail is not None and tail.records >= tail_limit and pending:
            tail.truncated = True
            # The highwater of a partition read partway is known already.
            break
    return {tp.partition: consumer.highwater(tp) for tp in tps}


async def _members(admin: Any, group: str) -> int | None:
    """Members of ``group`` (0 for a group unknown to the broker); None if it cannot tell."""
    try:
        answers = await admin.describe_consumer_groups([group])
    except Exception:  # noqa: BLE001 - a broker without DescribeGroups: unknown, not an error
        return None
    for answer in answers:
        for described in answer.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            if described[1] != group:
                continue
            if described[0] == GROUP_ID_NOT_FOUND:
                return 0
            return len(described[5]) if described[0] == 0 else None
    return 0


async def committed_offsets(bootstrap: str, group: str, topic: str,
                            security: Mapping[str, Any] | None = None) -> dict[int, int]:
    """Partition -> the group's committed offset on ``topic``; partitions without one are left out."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(security or {}))
    try:
        await admin.start()
        # Name the partitions: asking for "all of the group's" is an OffsetFetch
        # form some brokers (Tansu) answer in a shape aiokafka cannot decode.
        described = await admin.describe_topics([topic])
        partitions = [p["partition"] for t in described if t["topic"] == topic for p in t["partitions"]]
        offsets = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in partitions])
    finally:
        await admin.close()
    return _committed_in(offsets, topic)


def _committed_in(offsets: Mapping[Any, Any], topic: str) -> dict[int, int]:
    """Partition -> offset from an OffsetFetch answer; -1 (nothing committed) is left out."""
    return {tp.partition: meta.offset for tp, meta in offsets.items()
            if tp.topic == topic and meta is not None and meta.offset >= 0}
