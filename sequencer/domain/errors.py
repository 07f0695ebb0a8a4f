"""Errors of the domain; every error the project raises derives from ``SequencerError``."""


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
