"""The ``metrics.jsonl`` schema: one flat row per (seed, paradigm, arm, cycle) (docs/method.md §4).

The columns are the study context (who produced the row) followed by every column the metric
records declare (``records.columns_of``); the ranking's columns are those the records mark ``rank``,
the copy share first. :func:`read_rows` is the one reader of rows files. ``CycleRow`` is the typed,
frozen form of a row; a row written by an older version lacks the columns added since, and reads with
those set to None.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

from ..core.errors import UserError
from ..core.records import Column, columns_of, get_path
from ..measure.evaluate import CycleMetrics
from ..selection.record import SELECTION, SelectionReport

CONTEXT = (
    Column("seed", "study seed", fmt="d"), Column("n", "N: training-set size", fmt="d"),
    Column("steps", "training steps per cycle", fmt="d"), Column("preset", "model preset", fmt=""),
    Column("paradigm", "paradigm", fmt=""), Column("arm", "arm", fmt=""),
    Column("selector", "selector of the arm", fmt=""), Column("space", "selection space of the arm", fmt=""),
    Column("cycle", "cycle (1 = trained on real data)", fmt="d"),
)
METRIC_COLUMNS = tuple(columns_of(CycleMetrics))
SELECTION_COLUMNS = tuple(columns_of(SelectionReport, SELECTION))
COLUMNS = CONTEXT + METRIC_COLUMNS + SELECTION_COLUMNS
BY_NAME = {c.name: c for c in COLUMNS}
PLOTTED = tuple(c for c in COLUMNS if c.plot)            # each drawn against cycle
TABLE = tuple(c for c in COLUMNS if c.short)             # the report's per-arm table
RATES = frozenset(c.name for c in COLUMNS if c.rate)     # proportions in [0, 1]
RANKING = tuple(sorted((c for c in COLUMNS if c.rank), key=lambda c: c.name != "copy_share"))

CycleRow = dataclasses.make_dataclass(
    "CycleRow", [(c.name, Any, dataclasses.field(default=None, metadata={"column": c})) for c in COLUMNS],
    frozen=True, namespace={"__doc__": "One metrics.jsonl row (see COLUMNS for each field's meaning)."})


def cycle_row(context: dict, metrics: CycleMetrics, selection: Optional[SelectionReport] = None) -> dict:
    """The flat row of one arm and cycle: ``context`` (the CONTEXT keys), every metric column (None
    where the record is absent, e.g. no FD) and how this D_n was selected (None at cycle 1)."""
    values = dict(context)
    values.update({c.name: get_path(metrics, c.source) for c in METRIC_COLUMNS})
    values.update({c.name: get_path(selection, c.source) for c in SELECTION_COLUMNS})
    return dataclasses.asdict(CycleRow(**values))  # an unknown key is a TypeError here, not at report time


def read_rows(path: str | Path, extra: Optional[dict] = None, normal: bool = True, hint: str = "",
              keys: tuple[str, ...] = ("paradigm", "arm", "cycle")) -> list[dict]:
    """The one reader of rows files (a run's metrics.jsonl and phase.jsonl, the shipped rows under
    docs/results/): every row, with ``extra`` keys added and, with ``normal``, every schema column
    present (:func:`normalize`). A line that is not a JSON object holding ``keys`` is a UserError
    naming the file and line, followed by ``hint`` (what to do)."""
    rows = []
    for i, line in enumerate(Path(path).read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or any(row.get(k) is None for k in keys):
            raise UserError(f"'{path}' line {i} is not a metrics row of this tool{hint}")
        row = {**row, **(extra or {})}
        rows.append(normalize(row) if normal else row)
    return rows


def normalize(row: dict) -> dict:
    """A row as read from any version's metrics.jsonl: every schema column present (None when the
    run predates it); extra keys (the phase diagram's ``cell``, ``final_loss``, the reader's ``run``) kept."""
    return {**{c.name: None for c in COLUMNS}, **row}


def headline(row: dict) -> str:
    """The console line of a finished arm-cycle: every plotted column of the row, short-named."""
    return " ".join(f"{c.short} {format(row[c.name], c.fmt)}" for c in PLOTTED
                    if c.short and row.get(c.name) is not None)
