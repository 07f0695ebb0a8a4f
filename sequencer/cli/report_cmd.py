"""``sequencer report``: what the decisions earned (SPEC 8), from decisions.csv
files or from the worker's decisions topic.

The report is a projection of the decision log: the same decisions give the
same figures whichever path wrote them. Rules (SPEC 8.2) come from ``--rules``
or the config file's ``rules`` table and are checked before anything is read.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.files.config_file import load_rules
from ..domain import BREAKDOWN_KINDS, SequencerError, performance_report, report_of_columns

#: Unreadable rows listed one by one up to this many, then counted.
SHOWN_PROBLEMS = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="performance of the decisions: win rate, profit, drawdown, Sharpe, ...",
        description="Metrics of SPEC 8.3 per stream and for all streams, from decisions.csv files "
                    "(of `replay` or `run --embedded`; a folder stands for its decisions.csv) or "
                    "from the decisions topic (--from-topic).")
    parser.add_argument("inputs", nargs="*", metavar="DECISIONS", type=Path,
                        help="decisions.csv files, or folders holding one")
    parser.add_argument("--from-topic", action="store_true",
                        help="read the decisions topic to its end instead of files")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--topic", default=None, help="decisions topic (default $SEQUENCER_TOPIC_DECISIONS)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="config file whose `rules` table applies (JSON or TOML)")
    parser.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="trade rules file (JSON or TOML, SPEC 8.2 keys at top level); "
                             "replaces the config file's rules")
    parser.add_argument("--by", action="append", choices=BREAKDOWN_KINDS, default=None,
                        help="add a breakdown table (repeatable); --json always has all three")
    parser.add_argument("--stream", nargs="+", default=None, metavar="S", help="only these streams")
    parser.add_argument("--json", action="store_true", help="one JSON document, metrics exact, null where SPEC 8.3 says")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.from_topic and args.inputs:
        raise SequencerError("report: give decisions files or --from-topic, not both")
    if not args.from_topic and not args.inputs:
        raise SequencerError("report: give decisions files (or folders holding decisions.csv), or --from-topic")
    # Reading builds hundreds of thousands of small acyclic objects; the cyclic
    # GC would rescan them again and again for nothing (as in `replay`).
    gc.disable()
    rules = load_rules(args.config, args.rules)  # refused here, before anything is read
    wanted = set(args.stream) if args.stream else None
    if args.from_topic:
        decisions, problems, source = _from_topic(args)
        present = {d.stream for d in decisions}
        report = performance_report([d for d in decisions if wanted is None or d.stream in wanted], rules)
    else:
        columns, problems, source = _from_files(args.inputs, rules, wanted)
        present = set(columns.stream)
        report = report_of_columns(columns, rules)
    _print_problems(problems)
    absent = sorted((wanted or set()) - present)
    if absent:
        print(f"sequencer: no decisions of stream {', '.join(absent)} in {source}", file=sys.stderr)
    if args.json:
        # allow_nan=False: SPEC 8.3's undefined figures are null, never NaN.
        print(json.dumps(report.to_dict(), allow_nan=False))
        return 0
    from .performance_view import breakdown_table, metrics_table, rules_line

    print(f"{report.all.days} decisions of {len(report.streams)} streams from {source}; {rules_line(report)}")
    print(metrics_table(report))
    for kind in dict.fromkeys(args.by or ()):
        print()
        print(breakdown_table(report, kind))
    return 0


def _files(inputs: list[Path]) -> list[Path]:
    paths = []
    for path in inputs:
        if path.is_dir():
            path = path / "decisions.csv"
        if not path.is_file():
            raise SequencerError(f"report: no decisions file {path}")
        paths.append(path)
    return paths


def _from_files(inputs: list[Path], rules, streams: set[str] | None):
    from sequencer.adapters.files.record_files import read_decision_columns

    paths = _files(inputs)
    columns, problems = read_decision_columns(paths, slot_sums=rules.min_slot_sum is not None,
                                              streams=streams)
    return columns, problems, ", ".join(str(p) for p in paths)


def _from_topic(args: argparse.Namespace):
    import asyncio

    from sequencer.adapters.kafka.decision_log import read_decisions
    from ..settings import Settings

    settings = Settings.from_env(bootstrap_servers=args.bootstrap, topic_decisions=args.topic)
    problems: list[str] = []
    try:
        decisions = asyncio.run(read_decisions(settings.bootstrap_servers, settings.topic_decisions,
                                               security=KafkaConnection.of(settings).aiokafka_kwargs(),
                                               problems=problems))
    except OSError as error:
        raise SequencerError(f"report: broker {settings.bootstrap_servers}: {error}") from None
    except Exception as error:  # noqa: BLE001 - aiokafka's connection errors have no common base
        if type(error).__module__.startswith("aiokafka"):
            raise SequencerError(f"report: broker {settings.bootstrap_servers}: {type(error).__name__}: {error}") from None
        raise
    return decisions, problems, f"topic {settings.topic_decisions} at {settings.bootstrap_servers}"


def _print_problems(problems: list[str]) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"sequencer: skipped {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"sequencer: skipped {len(problems) - SHOWN_PROBLEMS} more unreadable decisions", file=sys.stderr)
