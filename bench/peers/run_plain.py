"""Peer runner: a plain aiokafka ``getmany`` loop around the project's ``EventProcessor``.

What the worker does per batch, without Faust: decode, validate, order and
fold (``EventProcessor``, states in a dict), send the decisions and flush,
write each changed stream's state to a compacted changelog topic (JSON, one
record per stream per batch) and flush, then commit the input offsets.
Runs in the project's virtualenv.
"""

from __future__ import annotations

import asyncio
import json

from peer_common import CONFIG, Stopwatch, parse_args, write_result

from sequencer.app.codecs import encode_decision
from sequencer.domain import state_to_dict
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord

#: Records per ``getmany``: the chunk bench_streaming found fastest here.
BATCH = 5000


async def run(args) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    changelog = args.states_topic
    states: dict = {}
    processor = EventProcessor(CONFIG, states.get)
    consumer = AIOKafkaConsumer(args.events_topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=BATCH, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    await consumer.start()
    watch = Stopwatch()
    try:
        while watch.events < args.expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            if not batches:
                continue
            watch.start()
            records = [SourceRecord(r.topic, r.partition, r.offset, r.key, r.value)
                       for rs in batches.values() for r in rs]
            outcome = processor.process(records)
            watch.events += len(records)
            for decision in outcome.decisions:   # step 1: decisions, flushed
                await producer.send(args.decisions_topic, encode_decision(decision), key=decision.stream.encode())
            await producer.flush()
            for stream, state in outcome.states.items():   # step 2: states, flushed
                states[stream] = state
                await producer.send(changelog, json.dumps(state_to_dict(state)).encode(), key=stream.encode(),
                                    partition=outcome.partition_of.get(stream))
            await producer.flush()
            await consumer.commit({TopicPartition(tp.topic, tp.partition): rs[-1].offset + 1   # step 3
                                   for tp, rs in batches.items()})
        seconds = watch.seconds()
    finally:
        await consumer.stop()
        await producer.stop()
    # The states as persisted: read back by bench_peers.py from the changelog;
    # the result carries the in-process ones too for a first check.
    write_result(args.result, seconds=seconds, events=watch.events, states=list(states.values()),
                 note=f"changelog={changelog}")


def main() -> None:
    asyncio.run(run(parse_args(__doc__)))


if __name__ == "__main__":
    main()
