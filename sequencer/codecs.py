"""Wire codecs: day events and decisions as msgpack (JSON accepted on input).

One codec per record type. Decoding untrusted bytes raises ``InvalidEvent``
with a specific reason, so the caller can dead-letter the original bytes.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from .domain import DayEvent, Decision, InvalidEvent, SequencerConfig, parse_day_event

DEFAULT_MAX_EVENT_BYTES = 64 * 1024


def decode_payload(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Any:
    """msgpack or JSON bytes -> Python data. A JSON document starts with ``{``."""
    if data is None:
        raise InvalidEvent("empty message (no value)")
    if len(data) > max_bytes:
        raise InvalidEvent(f"event of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data:
        raise InvalidEvent("empty message (zero bytes)")
    if data.lstrip()[:1] == b"{":
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidEvent(f"malformed JSON: {error}") from None
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as error:  # msgpack raises a variety of types on hostile input
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise InvalidEvent(f"malformed msgpack ({detail})") from None


def decode_event(data: bytes, config: SequencerConfig, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> DayEvent:
    return parse_day_event(decode_payload(data, max_bytes), config)


def encode_event(event: DayEvent) -> bytes:
    return msgpack.packb(event.to_dict(), use_bin_type=True)


def encode_decision(decision: Decision) -> bytes:
    return msgpack.packb(decision.to_dict(), use_bin_type=True)


def decode_decision(data: bytes) -> Decision:
    return Decision.from_dict(msgpack.unpackb(data, raw=False))
