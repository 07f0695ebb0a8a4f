"""``streamer``: put day events from files onto the event topic.

- ``publish``: files -> topic in date order (optionally rate-limited);
- ``feed``: simulate a live feed, one trading day of all streams every S seconds;
- ``follow``: publish new files dropped into a folder as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import sys
import time
from pathlib import Path

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.files.config_file import load_config
from sequencer.domain import DayEvent, SequencerError
from sequencer.adapters.files.record_files import write_rejects_csv
from sequencer.adapters.files.sources import SourceBatch, expand_inputs, read_day_events

from .publisher import EventPublisher

logger = logging.getLogger("streamer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamer", description="Publish day events to Kafka.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
        p.add_argument("--topic", default=None, help="event topic (default $SEQUENCER_TOPIC_EVENTS)")
        p.add_argument("--config", type=Path, default=None, help="config file: instruments and sessions to accept")
        p.add_argument("--rejects", type=Path, default=Path("streamer_rejects.csv"),
                       help="where rows that fail validation are written (default: %(default)s)")

    publish = sub.add_parser("publish", help="files -> topic, in date order")
    publish.add_argument("inputs", nargs="+", metavar="INPUT")
    common(publish)
    publish.add_argument("--rate", type=float, default=None, metavar="EVENTS_PER_S")
    publish.set_defaults(func=run_publish)

    feed = sub.add_parser("feed", help="one trading day of all streams every S seconds")
    feed.add_argument("inputs", nargs="+", metavar="INPUT")
    common(feed)
    feed.add_argument("--day-every", type=float, required=True, metavar="S")
    feed.add_argument("--loop", action="store_true", help="start over at the end (demo feeds)")
    feed.set_defaults(func=run_feed)

    follow = sub.add_parser("follow", help="publish files dropped into a folder as they arrive")
    follow.add_argument("folder", type=Path)
    common(follow)
    follow.add_argument("--poll", type=float, default=1.0, metavar="S")
    follow.add_argument("--once", action="store_true", help="publish what is there and stop")
    follow.set_defaults(func=run_follow)
    return parser


def _settings(args: argparse.Namespace):
    from sequencer.settings import Settings

    return Settings.from_env(bootstrap_servers=args.bootstrap, topic_events=args.topic)


def _read(inputs: list, args: argparse.Namespace, append_rejects: bool = False) -> SourceBatch:
    gc.disable()  # acyclic bulk load: see sequencer replay
    try:
        batch = read_day_events(expand_inputs(inputs), load_config(args.config))
    finally:
        gc.enable()
    if batch.rejects:
        write_rejects_csv(args.rejects, batch.rejects, append=append_rejects)
        print(f"streamer: {len(batch.rejects)} rows rejected -> {args.rejects}", file=sys.stderr)
    return batch


def _publisher(settings) -> EventPublisher:
    return EventPublisher(settings.bootstrap_servers, settings.topic_events,
                          security=KafkaConnection.of(settings).aiokafka_kwargs(),
                          announce=lambda line: print(f"streamer: {line}", file=sys.stderr),
                          create_partitions=settings.partitions)


def run_publish(args: argparse.Namespace) -> int:
    from sequencer.adapters.progress import progress_bar

    settings = _settings(args)
    batch = _read(args.inputs, args)
    started = time.perf_counter()

    publishers: list[EventPublisher] = []

    async def go() -> int:
        async with _publisher(settings) as publisher:
            publishers.append(publisher)
            with progress_bar(len(batch.events), "publish") as bar:
                return await publisher.publish_events(batch.events, rate=args.rate, on_progress=bar.update)

    try:
        sent = asyncio.run(go())
    except KeyboardInterrupt:
        acknowledged = publishers[0].sent if publishers else 0
        print(f"streamer: interrupted: {acknowledged} of {len(batch.events)} day events were acknowledged "
              f"by {settings.topic_events}, the rest not published. Publishing the same input again is "
              "safe: the worker skips the days already applied.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    print(f"published {sent} day events to {settings.topic_events} in {elapsed:.2f}s "
          f"({sent / max(elapsed, 1e-9):,.0f}/s), {len(batch.rejects)} rejected")
    return 0


def _by_day(events: list[DayEvent]) -> list[tuple[str, list[DayEvent]]]:
    return [(date, list(group)) for date, group in itertools.groupby(events, key=lambda e: e.date)]


def run_feed(args: argparse.Namespace) -> int:
    settings = _settings(args)
    days = _by_day(_read(args.inputs, args).events)
    if not days:
        print("streamer: nothing to feed", file=sys.stderr)
        return 1

    async def go() -> None:
        async with _publisher(settings) as publisher:
            for round_no in itertools.count():
                for date, events in days:
                    for event in events:
                        await publisher.send_event(event)
                    await publisher.flush()
                    print(f"fed {date}: {len(events)} streams", flush=True)
                    await asyncio.sleep(args.day_every)
                if not args.loop:
                    return
                print(f"feed: round {round_no + 1} done; starting over (duplicates are skipped by the worker)")

    asyncio.run(go())
    return 0


def run_follow(args: argparse.Namespace) -> int:
    settings = _settings(args)
    seen_path = args.folder / ".streamer_published.json"

    def load_seen() -> dict[str, list]:
        try:
            return json.loads(seen_path.read_text())
        except (OSError, ValueError):
            return {}

    async def go() -> None:
        seen = load_seen()
        async with _publisher(settings) as publisher:
            while True:
                for path in expand_inputs([args.folder], allow_none=True):  # (not the hidden seen_path)
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue  # removed since the folder was listed
                    mark = [stat.st_size, stat.st_mtime_ns]
                    if seen.get(path.name) == mark or (not args.once and time.time() - stat.st_mtime < args.poll):
                        continue  # published already, or possibly still being written
                    try:
                        # Every file's rejects are kept: the file is appended to.
                        batch = _read([path], args, append_rejects=True)
                    except SequencerError as error:
                        # One unreadable file (no header, a doubled column, corrupt
                        # Parquet) must not stop the folder: said once, tried again
                        # when it changes.
                        print(f"streamer: error: {error}; skipped until the file changes",
                              file=sys.stderr, flush=True)
                        batch = None
                    if batch is not None:
                        await publisher.publish_events(batch.events)
                        print(f"published {len(batch.events)} day events from {path.name}", flush=True)
                    seen[path.name] = mark
                    seen_path.write_text(json.dumps(seen))
                if args.once:
                    return
                await asyncio.sleep(args.poll)

    asyncio.run(go())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except (SequencerError, ConnectionError) as error:
        print(f"streamer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
