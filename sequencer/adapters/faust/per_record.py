"""What Faust does for every input record, cut to what the worker needs, by public extension points.

Faust's conductor decodes each record through its schema and serializer
registry, and calls every sensor before and after the stream handles it.
For the events topic the worker wants neither: it decodes and validates the
bytes itself (`sequencer.app.codecs.EventDecoder`), and it keeps its own
figures (`sequencer.app.worker_status`, the latency histogram). Measured on
the 120,000-event workload, the two cost about a sixth of the worker's CPU per
event (docs/benchmarks.md, "Faust's per-record work").

- `EventBytesSchema`: a ``faust.Schema`` whose key and value are the record's
  bytes, as they came (``Schema.loads_key``/``loads_value`` are the
  documented hooks; ``compile`` builds the conductor's decode function from
  them). The "raw" serializer gives the same bytes after a lookup in the
  registry and a codec call per field.
- `QuietMonitor`: Faust's default ``Monitor`` (passed as ``faust.App(monitor=)``)
  without its per-record counters: messages and events in and out. Its
  commit, send, table, rebalance and web figures stay. Nothing in the worker
  reads the per-record ones (Faust's own ``/stats`` page would show them as 0).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.sensors.monitor import Monitor


class EventBytesSchema(faust.Schema):
    """Key and value are the record's own bytes (``None`` stays ``None``)."""

    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def loads_key(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        return message.key

    def loads_value(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        return message.value

    def compile(self, app: Any, *, on_key_decode_error: Any = None, on_value_decode_error: Any = None,
                default_propagate: bool = False) -> Any:
        """The conductor's decode function: the event built from the record at once.

        Faust's own looks the event class up in the app's settings for every
        record (a settings lookup costs about a microsecond) and calls the two
        ``loads_*`` hooks; bytes cannot fail to decode, so there is no error
        to hand to ``on_*_decode_error``. A record without headers (aiokafka
        gives an empty list) is handed over with None, which the event turns
        into the ``{}`` it would have made of the list, without a ``dict([])``."""
        event_class = app.conf.Event

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return event_class(app, message.key, message.value, message.headers or None, message)

        return decode


class QuietMonitor(Monitor):
    """Faust's monitor without the bookkeeping it does for every record."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None
