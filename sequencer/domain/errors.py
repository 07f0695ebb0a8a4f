"""Errors of the domain; every error the project raises derives from ``SequencerError``.

`shown` is how an untrusted value appears in their messages.
"""

import reprlib
from typing import Any


class SequencerError(Exception):
    """Root of the project's errors."""


class ConfigError(SequencerError, ValueError):
    """The configuration is not usable; the message names the key."""


class InvalidEvent(SequencerError, ValueError):
    """A day event breaks SPEC 3; ``reason`` is short and specific."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidState(SequencerError, ValueError):
    """A state document breaks SPEC 4 or 7; the message says what is wrong."""


# Values quoted in error messages are cut short and shallow: an error about a
# 60 KB string or a list nested 1,000 deep must stay one readable line (and a
# plain repr of the latter raises RecursionError).
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 2
_SHORT_REPR.maxstring = 40
_SHORT_REPR.maxother = 40
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = _SHORT_REPR.maxtuple = 4


SHOWN_MAX_CHARS = 80


def shown(value: Any) -> str:
    """A short repr of an untrusted value (at most ``SHOWN_MAX_CHARS``), for error messages."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= SHOWN_MAX_CHARS else text[:SHOWN_MAX_CHARS - 3] + "..."
