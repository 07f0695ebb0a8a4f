"""``sequencer broker``: the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("broker", help="run the embedded broker (Tansu, in memory) in the foreground")
    parser.add_argument("--port", type=int, default=None, help="loopback port (default: a free one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedBroker(port=args.port) as broker:
        print(f"embedded broker ready on {broker.bootstrap} (in memory: nothing survives a stop); "
              f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        stop.wait()
        print("stopping broker", flush=True)
    return 0
