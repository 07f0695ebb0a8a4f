"""``sequencer worker``: run the Faust worker for one named configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from sequencer.adapters.kafka.connection import KafkaConnection

from .common import add_config_arguments, selected


logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run the streaming worker (Faust)")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
    add_config_arguments(parser)
    parser.add_argument("--web-port", type=int, default=None, metavar="P")
    parser.add_argument("--partitions", type=int, default=None)
    parser.set_defaults(func=run)


def ensure_topics(settings, announce=print) -> None:
    """Create the three topics, waiting with backoff while the broker is unreachable."""
    from sequencer.adapters.kafka.topics import create_topics

    delay = 0.5
    while True:
        try:
            asyncio.run(create_topics(
                settings.bootstrap_servers,
                {settings.topic_events: settings.partitions,
                 settings.topic_decisions: settings.partitions,
                 settings.topic_dead_letters: settings.partitions},
                replication_factor=settings.replication,
                security=KafkaConnection.of(settings).aiokafka_kwargs()))
            return
        except Exception as error:  # noqa: BLE001 - any failure here means "not reachable yet"
            announce(f"sequencer: broker {settings.bootstrap_servers} unreachable "
                     f"({type(error).__name__}: {error}); retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


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
    ensure_topics(settings, announce=lambda line: print(line, file=sys.stderr, flush=True))
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
