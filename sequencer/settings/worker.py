"""How the worker consumes: record limits, delivery switches, consumer group timing."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .base import Expected, SettingsSection, refuse_bool

__all__ = ["WorkerSettings"]

_Bytes = Annotated[int, refuse_bool, Field(ge=1), Expected("an integer >= 1")]
_Seconds = Annotated[float, refuse_bool, Field(gt=0, allow_inf_nan=False), Expected("a finite number > 0")]
_Switch = Annotated[bool, Expected("true or false")]


class WorkerSettings(SettingsSection):
    #: Larger events are dead-lettered undecoded (guards memory and msgpack).
    max_event_bytes: _Bytes = Field(65536, validation_alias="SEQUENCER_MAX_EVENT_BYTES")
    #: A dead letter carries at most this many bytes of the original value
    #: (with its full length and sha256), so it always fits the broker's limit.
    dead_letter_value_bytes: _Bytes = Field(16384, validation_alias="SEQUENCER_DEAD_LETTER_VALUE_BYTES")
    #: Hand messages from the consumer to the stream without Faust's per-message
    #: task race (sequencer/adapters/faust/private_api.py): about 2.5x the rate. Turn off to
    #: run Faust's own consumer unchanged.
    fast_drain: _Switch = Field(True, validation_alias="SEQUENCER_FAST_DRAIN")
    #: With the fast drain, put the events topic's records straight into the
    #: worker's batches (sequencer/adapters/faust/record_intake.py) instead of
    #: handing each to the agent's Faust stream: about 0.6x the main thread's
    #: CPU per event. Off by default: the agent's Faust stream folds the events,
    #: as the project is built to run (README's worker section; docs/benchmarks.md,
    #: "Records straight to the batches, batches folded one ahead").
    direct_intake: _Switch = Field(False, validation_alias="SEQUENCER_DIRECT_INTAKE")
    #: Run the worker on uvloop's event loop (libuv, in C) instead of asyncio's
    #: own: Faust's stream iterator yields to the loop once per event, and each
    #: loop turn costs a fraction with uvloop (docs/benchmarks.md, "Faust's
    #: per-record work"). Turn off to run on asyncio's loop.
    uvloop: _Switch = Field(True, validation_alias="SEQUENCER_UVLOOP")
    #: Send each changelog record in a batch of its own (flush after each).
    #: A broker that reports the high watermark as "base offset of the last
    #: batch + 1" (Tansu does) would otherwise end Faust's recovery early and
    #: restore stale states. Costs one round trip per changed stream per batch;
    #: on Apache Kafka it can be turned off.
    changelog_single_record_batches: _Switch = Field(
        True, validation_alias="SEQUENCER_CHANGELOG_SINGLE_RECORD_BATCHES")
    #: Seconds without a heartbeat before the group coordinator declares a worker
    #: dead and hands its partitions to the others. Short on purpose: a crashed
    #: or killed worker's streams resume elsewhere within seconds (Faust's own
    #: default is 60 s). 6 s is the smallest value a broker accepts by default
    #: (``group.min.session.timeout.ms`` = 6000).
    session_timeout_s: _Seconds = Field(6.0, validation_alias="SEQUENCER_SESSION_TIMEOUT")
    #: Seconds between heartbeats. Must be below the session timeout; Kafka
    #: advises at most a third of it so that two lost heartbeats are tolerated.
    #: A short interval also means a rebalance is noticed (and rejoined) fast.
    heartbeat_s: _Seconds = Field(1.0, validation_alias="SEQUENCER_HEARTBEAT_INTERVAL")

    @model_validator(mode="after")
    def _heartbeat_below_session_timeout(self) -> WorkerSettings:
        if self.heartbeat_s >= self.session_timeout_s:
            raise self.fail("heartbeat_s", f"must be below {self.env_var('session_timeout_s')}"
                                           f" ({self.session_timeout_s}), got {self.heartbeat_s}")
        return self
