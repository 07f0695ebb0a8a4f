"""``sequencer run --embedded``: the whole live system in one command.

Starts the embedded broker and a worker process, publishes the input, waits
until the worker has consumed all of it, reads the decisions back from the
decisions topic into OUT/decisions.csv, writes their performance report to
OUT/performance.csv, prints it with the final states, and stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sequencer.adapters.kafka.connection import KafkaConnection
from .common import add_config_arguments, add_rules_argument, selected


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="broker + worker + publish + decisions, in one command")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="default: data/sample")
    parser.add_argument("--embedded", action="store_true",
                        help="start the embedded broker (otherwise use --bootstrap / $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--out", type=Path, default=Path("out"), metavar="DIR")
    add_config_arguments(parser)
    add_rules_argument(parser)
    parser.add_argument("--fresh", action="store_true",
                        help="start over: move this configuration's checkpoints to a timestamped backup folder "
                             "first (otherwise the run continues from them)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the worker")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker
    from sequencer.adapters.files.config_file import load_rules
    from sequencer.adapters.files.state_folder import back_up_checkpoints

    started = time.perf_counter()
    inputs = args.inputs or [Path("data/sample")]
    # Bad settings, config or rules are refused before any work.
    settings, config, store = selected(args, bootstrap_servers=args.bootstrap)
    args.trade_rules = load_rules(settings.config_file, args.rules)
    if args.fresh:  # as replay --fresh does: nothing is deleted
        backup, moved = back_up_checkpoints(store)
        print(f"--fresh: moved {len(moved)} checkpoints from {store.folder} to {backup}" if moved
              else f"--fresh: no checkpoints in {store.folder}")
    args.out.mkdir(parents=True, exist_ok=True)

    broker = EmbeddedBroker(log_path=args.out / "broker.log") if args.embedded else None
    workers: list[subprocess.Popen] = []
    try:
        return _run_until_done(args, settings, config, inputs, store, broker, started, workers)
    except KeyboardInterrupt:
        # Ctrl-C reaches the worker too (same process group): it stops as on
        # SIGTERM and writes the checkpoints of what it folded.
        if not workers:
            what = "before the worker started; no checkpoint was changed"
        elif workers[0].poll() is None:
            what = f"the worker (pid {workers[0].pid}) may still be stopping"
        else:
            what = (f"the worker stopped (exit code {workers[0].returncode}) and wrote its checkpoints "
                    f"to {store.folder}; a later run continues from them")
        print(f"sequencer run: interrupted {what}; {args.out / 'decisions.csv'} was not written"
              + ("; the embedded broker was stopped" if broker is not None and not broker.running else ""),
              file=sys.stderr)
        return 130


def _run_until_done(args, settings, config, inputs, store, broker, started, workers: list) -> int:
    from sequencer.adapters.kafka.embedded_broker import free_port

    worker = None
    try:
        if broker is not None:
            broker.start()
            print(f"embedded broker on {broker.bootstrap}")
            settings = settings.replace(bootstrap_servers=broker.bootstrap)
        settings = settings.replace(web_port=free_port())
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers)
        command = [sys.executable, "-m", "sequencer.cli.main", "worker", "--config-name", settings.config_name,
                   "--state-dir", str(settings.state_dir), "--web-port", str(settings.web_port)]
        if settings.config_file:
            command += ["--config", str(settings.config_file)]
        worker_log = (args.out / "worker.log").open("w")
        worker = subprocess.Popen(command, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
        workers.append(worker)
        print(f"worker started (pid {worker.pid}, log {args.out / 'worker.log'}, "
              f"http://{settings.web_host}:{settings.web_port}/)")
        status = asyncio.run(_publish_and_collect(settings, config, inputs, args, worker))
        if status:
            return status
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # clean stop: final checkpoints
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        if broker is not None:
            broker.stop()
    _print_summary(store)
    print(f"done in {time.perf_counter() - started:.1f}s")
    return 0


async def _publish_and_collect(settings, config, inputs, args, worker) -> int:
    from streamer.publisher import EventPublisher

    from sequencer.adapters.kafka.decision_log import read_dead_letters, read_decisions, wait_until_consumed
    from ..domain import performance_report
    from .performance_view import write_performance
    from sequencer.app.processor import reason_kind
    from sequencer.adapters.files.record_files import write_decisions_csv, write_rejects_csv
    from sequencer.adapters.files.sources import expand_inputs, read_day_events
    from ..adapters.progress import progress_bar

    batch = read_day_events(expand_inputs(inputs), config)
    write_rejects_csv(args.out / "rejects.csv", batch.rejects)
    security = KafkaConnection.of(settings).aiokafka_kwargs()
    async with EventPublisher(settings.bootstrap_servers, settings.topic_events, security=security,
                              announce=lambda line: print(line, file=sys.stderr)) as publisher:
        with progress_bar(len(batch.events), "publish") as bar:
            await publisher.publish_events(batch.events, on_progress=bar.update)
    print(f"published {len(batch.events)} day events ({len(batch.rejects)} rows rejected)")
    with progress_bar(len(batch.events), "worker") as bar:
        caught_up = await wait_until_consumed(
            settings.bootstrap_servers, settings.app_id, settings.topic_events, publisher.end_offsets,
            timeout_s=args.timeout, on_progress=bar.update, security=security,
            alive=lambda: worker.poll() is None)
    if not caught_up:
        why = f"worker exited with code {worker.returncode}" if worker.poll() is not None else "timed out"
        print(f"sequencer: the worker did not consume all events ({why}); see {args.out / 'worker.log'}",
              file=sys.stderr)
        return 1
    decisions = await read_decisions(settings.bootstrap_servers, settings.topic_decisions, security=security)
    count = write_decisions_csv(args.out / "decisions.csv", decisions)
    letters = [letter for letter in await read_dead_letters(settings.bootstrap_servers,
                                                            settings.topic_dead_letters, security=security)
               if _published_here(letter, settings.topic_events, publisher)]
    already = len(batch.events) - count - len(letters)
    line = f"{count} decisions -> {args.out / 'decisions.csv'}"
    if already > 0:
        line += f"; {already} events were already applied (checkpoints in {settings.state_dir}; --fresh starts over)"
    if letters:
        kinds = Counter(reason_kind(str(letter.get("reason", ""))) for letter in letters)
        line += (f"; {len(letters)} dead-lettered to {settings.topic_dead_letters} ("
                 + ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common()) + ")")
    print(line)
    print(write_performance(args.out, performance_report(decisions, args.trade_rules)))
    return 0


def _published_here(letter: dict, topic: str, publisher: Any) -> bool:
    """Whether a dead letter is about a record this run published (the topic may be shared)."""
    partition, offset = letter.get("source_partition"), letter.get("source_offset")
    if letter.get("source_topic") != topic or partition not in publisher.end_offsets:
        return False
    return publisher.start_offsets[partition] <= offset < publisher.end_offsets[partition]


def _print_summary(store) -> None:
    loaded, refused = store.load_all()
    for error in refused:
        print(f"refused {error}", file=sys.stderr)
    if not loaded:
        print("no stream states")
        return
    print(f"\n{'stream':8} {'last date':10} {'events':>7} {'next slot':9} {'target':>8} "
          f"{'rolling':>8} {'ladder':>8} {'step':>4} {'no trade':8}")
    for stream in sorted(loaded):
        s = loaded[stream].state
        print(f"{s.stream:8} {s.last_processed_date or '-':10} {s.events_applied:>7} {s.current_time:9} "
              f"{s.current_target:>8g} {s.rolling_median_target:>8g} {s.median_ladder_target:>8g} "
              f"{s.median_ladder_current_step:>4} {str(s.no_trade_next):8}")
    print(f"checkpoints: {store.folder}")
