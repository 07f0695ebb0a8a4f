"""Creating the project's topics on any Kafka cluster (the embedded broker or Apache Kafka)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    compacted: Iterable[str] = (),
    *,
    retained: Iterable[str] = (),
    replication_factor: int | None = None,
    timeout: float = 30.0,
    security: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Create the *topics* (name -> partition count) that do not exist yet, and
    return each one's partition count as the broker has it.

    Names in *compacted* get ``cleanup.policy=compact`` (changelogs, latest
    state per key); names in *retained* keep every record (``retention.ms`` and
    ``retention.bytes`` -1, as docker-compose's topics service makes them): the
    event log is what replays and rebuilds read from the start, and a broker's
    default retention (7 days on Apache Kafka) deletes days no state has folded
    yet when a worker is down longer. Existing topics are left alone; a partition count that
    differs from the one asked for is logged as a warning, never changed.
    *replication_factor* defaults to ``min(3, number of brokers)``, so it is 1
    on Tansu or a one-broker Kafka and 3 on a production cluster. Returns once
    every topic shows all its partitions in metadata (Apache Kafka creates
    topics asynchronously). Works on Tansu and Apache Kafka alike.

    The count returned can differ from the one asked for: a topic made
    before, or created by the broker itself when a producer first wrote to
    it (``auto.create.topics.enable``, with the broker's default count),
    also between this call's look and its creation.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    compacted, retained = set(compacted), set(retained)
    unknown = (compacted | retained) - set(topics)
    if unknown:
        raise ValueError(f"compacted or retained topics not in topics: {sorted(unknown)}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="sequencer-admin", **(security or {}))
    await admin.start()
    try:
        # Describe *all* topics: a Metadata request naming a missing topic makes
        # an Apache Kafka broker with auto.create.topics.enable (the default)
        # create it on the spot, with the broker's default partition count.
        existing = await _all_topics(admin)
        missing: dict[str, int] = {}
        for name, partitions in topics.items():
            have = _partition_count(existing.get(name))
            if have is None:
                missing[name] = partitions
            elif have != partitions:
                logger.warning("topic %s has %d partitions, wanted %d", name, have, partitions)
        if not missing:
            return {name: len(existing[name]["partitions"]) for name in topics}
        if replication_factor is None:
            cluster = await admin.describe_cluster()
            replication_factor = max(1, min(3, len(cluster["brokers"])))
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=_topic_configs(name in compacted, name in retained),
            )
            for name, partitions in missing.items()
        ]
        response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            if code == 0 or code == TopicAlreadyExistsError.errno:
                continue
            detail = entry[2] if len(entry) > 2 else None
            raise for_code(code)(f"creating topic {name}: {detail or ''}")
        logger.info("created topics %s", ", ".join(f"{n}[{p}]" for n, p in missing.items()))

        # Wait until metadata shows every new topic with all its partitions.
        deadline = time.monotonic() + timeout
        while True:
            described = await _all_topics(admin)
            pending = [
                name
                for name, partitions in missing.items()
                if name not in described
                or described[name]["error_code"] != 0
                or len(described[name]["partitions"]) < partitions
            ]
            if not pending:
                return {name: len(described[name]["partitions"]) for name in topics}
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topics not visible in metadata after {timeout}s: {pending}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def _topic_configs(compacted: bool, retained: bool) -> dict[str, str]:
    configs = {"cleanup.policy": "compact"} if compacted else {}
    if retained:
        configs.update({"retention.ms": "-1", "retention.bytes": "-1"})
    return configs


async def _all_topics(admin: object) -> dict[str, dict]:
    # describe_topics(None) sends a Metadata request for all topics.
    return {t["topic"]: t for t in await admin.describe_topics(None)}  # type: ignore[attr-defined]


async def partition_counts(bootstrap: str, names: Iterable[str],
                           security: Mapping[str, Any] | None = None) -> dict[str, int | None]:
    """Each named topic's partition count, None for a topic that does not exist.
    Creates nothing (all topics are described: see `create_topics`)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="sequencer-admin", **(security or {}))
    await admin.start()
    try:
        described = await _all_topics(admin)
    finally:
        await admin.close()
    return {name: _partition_count(described.get(name)) for name in names}


def _partition_count(info: dict | None) -> int | None:
    """The partition count of a topic's metadata entry; None when it does not exist (yet)."""
    if info is None or info["error_code"] != 0 or not info["partitions"]:
        return None
    return len(info["partitions"])


def create_topics_sync(
    bootstrap: str,
    topics: Mapping[str, int],
    compacted: Iterable[str] = (),
    **kwargs: object,
) -> None:
    """`create_topics` for code without a running event loop."""
    asyncio.run(create_topics(bootstrap, topics, compacted, **kwargs))  # type: ignore[arg-type]
