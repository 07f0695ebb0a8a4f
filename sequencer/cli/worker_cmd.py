"""``sequencer worker``: run the Faust worker for one named configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.domain.errors import SequencerError

from .common import add_config_arguments, selected


logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run the streaming worker (Faust)")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
    add_config_arguments(parser)
    parser.add_argument("--web-port", type=int, default=None, metavar="P")
    parser.add_argument("--partitions", type=int, default=None)
    parser.set_defaults(func=run)


class ChangelogsShort(SequencerError):
    """A table's changelog topic has fewer partitions than the events topic."""


def ensure_topics(settings, announce=print) -> int:
    """Create the three topics, keeping every record, waiting with backoff while the
    broker is unreachable; returns the events topic's partition count as the broker has it.

    Raises `ChangelogsShort` when a changelog made before has fewer partitions
    than the events topic: a stream's state is written to the changelog
    partition of its events partition (`FaustTablePort`), so the batches of
    a partition past the changelog's last could never be committed."""
    from sequencer.adapters.faust.live_state import LAST_EVENTS_TABLE, STATES_TABLE
    from sequencer.adapters.kafka.log_reader import changelog_topic
    from sequencer.adapters.kafka.topics import create_topics, partition_counts

    security = KafkaConnection.of(settings).aiokafka_kwargs()
    changelogs = [changelog_topic(settings.app_id, table) for table in (STATES_TABLE, LAST_EVENTS_TABLE)]
    logs = (settings.topic_events, settings.topic_decisions, settings.topic_dead_letters)
    delay = 0.5
    while True:
        try:
            counts = asyncio.run(create_topics(
                settings.bootstrap_servers, {topic: settings.partitions for topic in logs}, retained=logs,
                replication_factor=settings.replication, security=security))
            changelog_counts = asyncio.run(partition_counts(settings.bootstrap_servers, changelogs, security))
            break
        except Exception as error:  # noqa: BLE001 - any failure here means "not reachable yet"
            announce(f"sequencer: broker {settings.bootstrap_servers} unreachable "
                     f"({type(error).__name__}: {error}); retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    events = counts[settings.topic_events]
    short = {name: n for name, n in changelog_counts.items() if n is not None and n < events}
    if short:
        raise ChangelogsShort(
            f"topic {settings.topic_events} has {events} partitions, but "
            + ", ".join(f"changelog {name} has {n}" for name, n in sorted(short.items()))
            + ": a stream's state goes to the changelog partition of its events partition, so they must "
            "have at least as many. An events topic grown in place moves streams between partitions, which "
            "splits their histories: publish the history to an events topic made with the count wanted, and "
            "run the worker on it under a new config name (SEQUENCER_CONFIG_NAME: its own tables, changelogs "
            "and checkpoints)")
    return events


def use_uvloop() -> bool:
    """New event loops of this process are uvloop's (the main loop and Faust's consumer
    thread's); False, and asyncio's loop, where uvloop is not installed (Windows)."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        print("sequencer worker: uvloop is not installed here; running on asyncio's event loop",
              file=sys.stderr, flush=True)
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from sequencer.adapters.faust.worker import create_app

    settings, config, store = selected(args, bootstrap_servers=args.bootstrap, web_port=args.web_port,
                                       partitions=getattr(args, "partitions", None))
    # A read-only state folder is found now, not at the first checkpoint.
    store.check_writable()
    events_partitions = ensure_topics(settings, announce=lambda line: print(line, file=sys.stderr, flush=True))
    if events_partitions != settings.partitions:
        # settings.partitions is the events topic's count wherever the worker
        # needs one: its changelogs' partitions, a stream's partition by key.
        print(f"sequencer worker: topic {settings.topic_events} has {events_partitions} partitions, not the "
              f"{settings.partitions} configured (SEQUENCER_PARTITIONS or --partitions); the worker's tables "
              "and their changelogs follow the topic", file=sys.stderr, flush=True)
        settings = settings.replace(partitions=events_partitions)
    # aiokafka logs every send at debug level; at that level it costs 5% of the worker.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if settings.uvloop:
        use_uvloop()  # before the app and the worker make their loops
    app = create_app(settings, config)
    print(f"sequencer worker: config {settings.config_name} ({config.config_id}), app id {settings.app_id}, "
          f"broker {settings.bootstrap_servers}, checkpoints in {app.sequencer.store.folder}, "
          f"http://{settings.web_host}:{settings.web_port}/", flush=True)
    loglevel = ("WARNING", "INFO", "DEBUG")[min(getattr(args, "verbose", 0), 2)]
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
