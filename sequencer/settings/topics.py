"""The three topics: names, partitions, replication."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .base import Expected, SettingsSection, refuse_bool

__all__ = ["TopicSettings"]

#: Kafka's rule for topic names (legal characters, at most 249 of them).
_TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$"),
                       Expected("a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)")]
_Count = Annotated[int, refuse_bool, Field(ge=1), Expected("an integer >= 1")]

_TOPIC_FIELDS = ("topic_events", "topic_decisions", "topic_dead_letters")


class TopicSettings(SettingsSection):
    topic_events: _TopicName = Field("sequencer.day-events", validation_alias="SEQUENCER_TOPIC_EVENTS")
    topic_decisions: _TopicName = Field("sequencer.decisions", validation_alias="SEQUENCER_TOPIC_DECISIONS")
    topic_dead_letters: _TopicName = Field("sequencer.dead-letters",
                                           validation_alias="SEQUENCER_TOPIC_DEAD_LETTERS")
    #: Partitions of the three topics (and so of Faust's changelogs): the most
    #: workers that can share the load.
    partitions: _Count = Field(4, validation_alias="SEQUENCER_PARTITIONS")
    #: Replication factor of topics the app creates; 1 suits a single broker.
    replication: _Count = Field(1, validation_alias="SEQUENCER_REPLICATION")

    @model_validator(mode="after")
    def _topics_differ(self) -> TopicSettings:
        for i, name in enumerate(_TOPIC_FIELDS):
            for other in _TOPIC_FIELDS[:i]:
                if getattr(self, name) == getattr(self, other):
                    raise self.fail(name, f"must differ from {self.env_var(other)}"
                                          f" (both are {getattr(self, name)!r})")
        return self
