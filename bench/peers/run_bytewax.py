"""Peer runner: bytewax (0.21) with the project's fold, snapshots on.

Dataflow: Kafka input (``tail=False``: the flow ends at the end of every
input partition) -> key by stream -> ``stateful`` holding the stream's
``StreamState`` in the worker -> Kafka output of the decisions. Recovery is
on: at the end of each epoch (``EPOCH``) and of the flow bytewax snapshots
the state of every stream that changed into its SQLite recovery partition.

Not ``stateful_map``: it snapshots by ``copy.deepcopy`` of the state and
pickles it, and ``StreamState`` holds read-only mappings (``MappingProxyType``)
that neither can copy. The logic below snapshots the SPEC 4 document
(``state_to_dict``) instead, the form the project persists, and resumes from it.
Kafka I/O is librdkafka's, outside the Python thread. After the run the
final states are read back from the recovery partition.
"""

from __future__ import annotations

import pickle
import sqlite3
from datetime import timedelta
from pathlib import Path

from peer_common import CONFIG, Stopwatch, fold_step, parse_args, write_result

from sequencer.domain import state_from_dict, state_to_dict

#: Epoch length: states are snapshotted (and the input position saved) once
#: per epoch. One second, near the worker's batch-by-batch commits.
EPOCH = timedelta(seconds=1)

FOLD_STEP = "fold"


def snapshot_states(recovery_dir: Path, flow_id: str) -> list[dict]:
    """The newest snapshot of every stream's state document in the recovery partitions."""
    states = {}
    for db in sorted(recovery_dir.glob("*.sqlite3")):
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT state_key, ser_change FROM snaps WHERE step_id LIKE ? ORDER BY snap_epoch",
                (f"{flow_id}.{FOLD_STEP}.%",)).fetchall()
        for key, blob in rows:   # later epochs overwrite earlier ones
            states[key] = None if blob is None else pickle.loads(blob)
    return [state for state in states.values() if state is not None]


def fail_on_error(step_id: str, error) -> None:
    """A consumer error ends the run: a lost record would make its rate meaningless."""
    raise RuntimeError(f"{step_id}: {error}")


def fold_logic():
    """The ``StatefulLogic`` class of one stream (built lazily: bytewax lives only in its virtualenv)."""
    from bytewax.operators import StatefulLogic

    class FoldLogic(StatefulLogic):
        def __init__(self, resume: dict | None) -> None:
            self.state = None if resume is None else state_from_dict(resume, CONFIG)

        def on_item(self, value: bytes):
            self.state, decision = fold_step(self.state, value)
            return ((decision,) if decision is not None else ()), StatefulLogic.RETAIN

        def snapshot(self) -> dict:
            return state_to_dict(self.state)

    return FoldLogic


def main() -> None:
    args = parse_args(__doc__)
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSinkMessage
    from bytewax.connectors.kafka import operators as kop
    from bytewax.dataflow import Dataflow
    from bytewax.recovery import RecoveryConfig, init_db_dir
    from bytewax.run import cli_main

    watch = Stopwatch()
    flow_id = "peers"
    flow = Dataflow(flow_id)
    source = kop.input("in", flow, brokers=[args.bootstrap], topics=[args.events_topic], tail=False,
                       add_config={"group.id": args.group})
    op.inspect("errors", source.errs, fail_on_error)

    def keyed(message) -> tuple[str, bytes]:
        watch.tick()
        return message.key.decode(), message.value

    folded = op.stateful(FOLD_STEP, op.map("key", source.oks, keyed), fold_logic())
    out = op.filter_map("encode", folded, lambda item: None if item[1] is None
                        else KafkaSinkMessage(key=item[0].encode(), value=item[1]))
    kop.output("out", out, brokers=[args.bootstrap], topic=args.decisions_topic)

    recovery = args.work / "recovery"
    recovery.mkdir(parents=True)
    init_db_dir(recovery, 1)
    cli_main(flow, workers_per_process=1, epoch_interval=EPOCH, recovery_config=RecoveryConfig(recovery))
    seconds = watch.seconds()
    write_result(args.result, seconds=seconds, events=watch.events, states=snapshot_states(recovery, flow_id))


if __name__ == "__main__":
    main()
