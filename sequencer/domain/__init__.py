"""The pure domain: events, config, state and the fold. Standard library only."""

from .config import DEFAULT_INSTRUMENTS, DEFAULT_SESSIONS, InstrumentSpec, SequencerConfig
from .decision import DECISION_FIELDS, TRADE_FIELDS, Decision
from .errors import ConfigError, InvalidEvent, InvalidState, SequencerError
from .events import SCORES, DayEvent, SlotOutcome, parse_day_event
from .metrics import (
    ALL,
    BREAKDOWN_KINDS,
    METRIC_NAMES,
    Breakdown,
    DecisionColumns,
    EquityPoint,
    equity_curves,
    Metrics,
    PerformanceReport,
    compute_metrics,
    performance_report,
    ReportPart,
    merge_report_parts,
    report_of_columns,
    report_part,
    taken_flags,
)
from .trade_rules import NO_RULES, RULES_KEYS, WEEKDAYS, TradeRules
from .fold import Order, apply_day, event_order, floor_to_increment, fold
from .state import (
    SCHEMA_VERSION,
    StreamState,
    initial_state,
    load_state_document,
    home_partition,
    offsets_in_topic,
    partition_key,
    split_partition_key,
    state_from_dict,
    state_to_dict,
    upgrade_legacy,
)

__all__ = [
    "DEFAULT_INSTRUMENTS", "DEFAULT_SESSIONS", "InstrumentSpec", "SequencerConfig",
    "DECISION_FIELDS", "TRADE_FIELDS", "Decision", "ConfigError", "InvalidEvent", "InvalidState",
    "SequencerError", "SCORES", "DayEvent", "SlotOutcome", "parse_day_event", "Order",
    "apply_day", "event_order", "floor_to_increment", "fold", "SCHEMA_VERSION",
    "StreamState", "initial_state", "load_state_document", "state_from_dict",
    "state_to_dict", "upgrade_legacy", "offsets_in_topic", "home_partition", "partition_key", "split_partition_key",
    "ALL", "BREAKDOWN_KINDS", "METRIC_NAMES", "Breakdown", "DecisionColumns", "EquityPoint", "equity_curves", "Metrics", "PerformanceReport", "compute_metrics",
    "performance_report", "ReportPart", "merge_report_parts", "report_of_columns", "report_part", "taken_flags", "NO_RULES", "RULES_KEYS", "WEEKDAYS", "TradeRules",
]
