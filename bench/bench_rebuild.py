"""Rebuild from a checkpoint taken at 95% of the log vs a full rebuild from the log.

    python bench/bench_rebuild.py [--days 10000] [--repeat 3]

Makes the synthetic CSV (bench/synthetic.py: 12 streams x DAYS days = 120,000
day events), publishes 95% of the events (in date order) to an embedded
broker, runs ``sequencer rebuild --from log`` (which writes the checkpoints at
95%), publishes the last 5%, then times, in the same run, ``rebuild --from log``
(all 120,000 events) and ``rebuild --from checkpoint`` (the 5% tail), each
restarted from the 95% checkpoints. Both are the full commands in-process
(read, fold, write the changelog and the checkpoints). Prints the times, the
ratio, and checks that both give the same states.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder  # noqa: E402
from sequencer.domain import SequencerConfig, state_to_dict  # noqa: E402
from sequencer.adapters.kafka.rebuild import rebuild  # noqa: E402
from sequencer.settings import Settings  # noqa: E402
from sequencer.adapters.files.sources import read_day_events  # noqa: E402
from streamer.publisher import EventPublisher  # noqa: E402


async def publish(bootstrap: str, topic: str, events) -> None:
    async with EventPublisher(bootstrap, topic) as publisher:
        await publisher.publish_events(events)


def states_of(store: CheckpointStore) -> dict:
    loaded, refused = store.load_all()
    assert not refused, refused
    return {s: state_to_dict(cp.state) for s, cp in loaded.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = SequencerConfig()
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp_name:
        tmp = Path(tmp_name)
        csv = tmp / "synthetic.csv"
        subprocess.run([sys.executable, str(ROOT / "bench" / "synthetic.py"), str(csv), "--days", str(args.days)],
                       check=True, stdout=subprocess.DEVNULL)
        events = read_day_events([csv], config).events
        events.sort(key=lambda e: (e.date, e.stream))
        cut = int(len(events) * 0.95)
        with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
            settings = Settings.from_env({}, bootstrap_servers=broker.bootstrap, config_name="bench",
                                         state_dir=str(tmp / "state"))
            from sequencer.adapters.kafka.topics import create_topics_sync
            create_topics_sync(broker.bootstrap, {settings.topic_events: settings.partitions})
            store = CheckpointStore(checkpoint_folder(settings.state_dir, settings.config_name), config)
            asyncio.run(publish(broker.bootstrap, settings.topic_events, events[:cut]))
            asyncio.run(rebuild(settings, config, store, source="log", check_group=False))
            saved = tmp / "checkpoints-at-95"
            shutil.copytree(store.folder, saved)
            asyncio.run(publish(broker.bootstrap, settings.topic_events, events[cut:]))

            timings: dict[str, list[float]] = {"log": [], "checkpoint": []}
            results = {}
            for _ in range(args.repeat):
                for source in ("log", "checkpoint"):
                    shutil.rmtree(store.folder)
                    shutil.copytree(saved, store.folder)
                    started = time.perf_counter()
                    result = asyncio.run(rebuild(settings, config, store, source=source, check_group=False))
                    timings[source].append(time.perf_counter() - started)
                    results[source] = (result.records_read, states_of(store))
    full, tail = statistics.median(timings["log"]), statistics.median(timings["checkpoint"])
    same = results["log"][1] == results["checkpoint"][1]
    import aiokafka
    import faust
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}, "
          f"aiokafka {aiokafka.__version__}, faust-streaming {faust.__version__}")
    print(f"{len(events)} events, {len(results['log'][1])} streams, checkpoints at 95% ({cut} events)")
    print(f"full rebuild from the log:      {full:6.2f} s  ({results['log'][0]} records read; runs {timings['log']})")
    print(f"rebuild from the checkpoint:    {tail:6.2f} s  ({results['checkpoint'][0]} records read; "
          f"runs {timings['checkpoint']})")
    print(f"ratio {full / tail:.1f}x; same final states: {same}")
    return 0 if same and full / tail >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
