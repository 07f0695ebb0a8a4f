"""What the Sweep page shows, without Streamlit (tests drive it directly).

A sweep's folder holds sweep.csv (ranked rows), sweep_streams.csv and
sweep.json (the inputs, the base config file and the grid). The page reads
the table, pivots a metric over two grid keys for the heatmap, and for a
chosen row rebuilds that configuration from its grid cells and replays the
inputs in memory, so its Performance section is the report of exactly the
decisions ``sequencer replay`` would write under it.

The heatmap shows, for each pair of values of the two chosen keys, the best
(highest) value of the metric over the other grid keys, as backtesting.py's
``plot_heatmaps`` does; the cell's count of configurations is in the tooltip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sequencer.adapters.files.config_file import load_config, load_rules
from ..domain import Decision, SequencerError
from ..domain.metrics import DecisionColumns, PerformanceReport, report_of_columns
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.app.sweep.grid import SweepPoint, point_of_row

DEFAULT_SWEEP = Path("out/sweep")


@dataclass
class SweepTable:
    """A loaded sweep: its rows (ranked, as written), grid keys, metrics and manifest."""

    folder: Path
    rows: pd.DataFrame
    grid_keys: list[str]
    metrics: list[str]
    manifest: dict[str, Any]


def load_sweep(path: Path) -> SweepTable:
    """The sweep in folder ``path`` (or of its sweep.csv); a clear error when it is not one."""
    path = Path(path)
    folder = path.parent if path.suffix.lower() == ".csv" else path
    csv_path = folder / "sweep.csv"
    if not csv_path.is_file():
        raise SequencerError(f"{csv_path}: no such file (run `sequencer sweep ... --out {folder}`)")
    # Cells stay text: grid values are read back as --grid reads them.
    rows = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if "config_id" not in rows.columns:
        raise SequencerError(f"{csv_path}: not a sweep table (no config_id column)")
    columns = list(rows.columns)
    split = columns.index("config_id")
    grid_keys, metrics = columns[:split], columns[split + 1:]
    for metric in metrics:
        rows[metric] = pd.to_numeric(rows[metric].replace("", None), errors="coerce")
    manifest_path = folder / "sweep.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    return SweepTable(folder, rows, grid_keys, metrics, manifest)


def heatmap_frame(table: SweepTable, metric: str, x_key: str, y_key: str) -> pd.DataFrame:
    """Columns x_key, y_key, metric (best over the other keys) and ``configurations``."""
    if x_key == y_key:
        raise SequencerError("choose two different grid keys")
    grouped = table.rows.groupby([x_key, y_key], sort=False)[metric]
    frame = grouped.max().reset_index()
    frame["configurations"] = grouped.size().values
    return frame


def row_label(table: SweepTable, index: int) -> str:
    row = table.rows.iloc[index]
    cells = ", ".join(f"{key}={row[key]}" for key in table.grid_keys) or "base configuration"
    return f"#{index + 1}  {cells}  ({row['config_id']})"


def row_point(table: SweepTable, index: int) -> SweepPoint:
    """The configuration and rules of row ``index``, over the sweep's base config file."""
    config_path = table.manifest.get("config")
    base = load_config(Path(config_path) if config_path else None)
    rules = load_rules(Path(config_path) if config_path else None)
    row = table.rows.iloc[index]
    point = point_of_row({key: row[key] for key in table.grid_keys}, base, rules.to_dict())
    if point.config.config_id != row["config_id"]:
        raise SequencerError(f"row {index + 1}: its grid values give config_id {point.config.config_id}, "
                             f"the table says {row['config_id']} (was the base config file changed?)")
    return point


def row_decisions(table: SweepTable, point: SweepPoint) -> list[Decision]:
    """The decisions ``sequencer replay`` writes for the sweep's inputs under ``point``."""
    inputs = table.manifest.get("inputs")
    if not inputs:
        raise SequencerError(f"{table.folder / 'sweep.json'}: the sweep's inputs are not recorded")
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise SequencerError(f"the sweep's input {missing[0]} is gone")
    events = read_day_events([Path(p) for p in inputs], point.config).events
    decisions: list[Decision] = []
    replay_events(events, point.config, on_decision=decisions.append)
    return decisions


def row_report(table: SweepTable, index: int) -> tuple[SweepPoint, DecisionColumns, PerformanceReport]:
    """Row ``index``'s configuration, its decisions as the report's columns, and its report."""
    point = row_point(table, index)
    columns = DecisionColumns.of(row_decisions(table, point))
    return point, columns, report_of_columns(columns, point.rules)
