"""A sweep's tables: rows ranked by a metric, written as sweep.csv and sweep_streams.csv.

Columns: one per grid key, named as given (``depth``, ``rules.skip_after_loss``),
then ``config_id``, then (in sweep_streams.csv) ``stream``, then the SPEC 8.3
metrics with the names of ``sequencer report --json``. Null metrics are empty
cells; floats are written with ``repr``, so they read back to the same value.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable, Sequence

from sequencer.domain import ConfigError
from sequencer.app.sweep.grid import GridAxis, SkippedPoint, format_value
from sequencer.app.sweep.runner import SweepRow


def check_rank_metric(metric: str, metrics: Sequence[str]) -> str:
    if metric not in metrics:
        raise ConfigError(f"--rank-by {metric!r}: not a metric; metrics are {', '.join(metrics)}")
    return metric


def ranked(rows: Iterable[SweepRow], metric: str) -> list[SweepRow]:
    """Highest ``metric`` first; null last; equal values in grid order."""
    def key(row: SweepRow) -> tuple:
        value = row.all.get(metric)
        return (value is None, -value if value is not None else 0, row.point.index)
    return sorted(rows, key=key)


def axis_cells(axes: Sequence[GridAxis], row: SweepRow) -> list[str]:
    return [format_value(value) for value in row.point.values]


def write_sweep_csv(path: Path, axes: Sequence[GridAxis], rows: Sequence[SweepRow],
                    metrics: Sequence[str]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([axis.key for axis in axes] + ["config_id", *metrics])
        for row in rows:
            writer.writerow(axis_cells(axes, row) + [row.point.config.config_id]
                            + [_cell(row.all.get(m)) for m in metrics])


def write_streams_csv(path: Path, axes: Sequence[GridAxis], rows: Sequence[SweepRow],
                      metrics: Sequence[str]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([axis.key for axis in axes] + ["config_id", "stream", *metrics])
        for row in rows:
            first = axis_cells(axes, row) + [row.point.config.config_id]
            for stream in sorted(row.streams):
                values = row.streams[stream]
                writer.writerow(first + [stream] + [_cell(values.get(m)) for m in metrics])


def write_skipped_csv(path: Path, axes: Sequence[GridAxis], skipped: Sequence[SkippedPoint]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([axis.key for axis in axes] + ["reason"])
        for point in skipped:
            writer.writerow([format_value(v) for v in point.values] + [point.reason])


def top_table(axes: Sequence[GridAxis], rows: Sequence[SweepRow], columns: Sequence[str]) -> str:
    """The first rows as an aligned text table (grid keys, config_id, ``columns``)."""
    header = ["#"] + [axis.key for axis in axes] + ["config_id", *columns]
    body = [[str(rank)] + axis_cells(axes, row) + [row.point.config.config_id]
            + [_shown(row.all.get(c)) for c in columns] for rank, row in enumerate(rows, 1)]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in [header, *body])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
