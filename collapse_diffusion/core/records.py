"""Typed result records and the flat ``metrics.jsonl`` schema derived from them (docs/method.md §4).

Every result is a frozen dataclass defined beside the function that computes it (``NNReport`` in
``memorization.py``, ``EntropyStats`` in ``entropy.py``, ``SetStats`` and ``CycleMetrics`` in
``evaluate.py``, ``FDReport`` in ``fid.py``). A metric field is declared with :func:`metric`, which
carries what every consumer needs: its label, its format, the field holding its 95% interval and
the field holding its sample count, whether it is a proportion, and under which ``metrics.jsonl``
column it appears for each role the record plays in a cycle (``vs_train``, ``vs_real``,
``train_set``, ...). The row, the console summary, the report's per-arm table and the plots against
cycle loop over these fields (only the findings and the correlation figures name the columns of
the paper's claims). Adding a metric is one field plus its computation.

Imports neither torch nor numpy's heavy users: reading a finished run needs only this module.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional


@dataclass(frozen=True)
class Col:
    """One ``metrics.jsonl`` column fed by a record field in one role."""
    name: str
    label: str                     # long name: axis labels, summary lines
    short: str = ""                # table header ("" : not in the report's per-arm table)
    plot: bool = True              # drawn against cycle in the report and the notebook
    rank: bool = False             # a column of the report's ranking of arms (the first one sorts it)


def metric(label: str, *, fmt: str = ".3f", ci: Optional[str] = None, n: str | tuple[str, ...] = (),
           rate: bool = False, name_field: Optional[str] = None, columns: Optional[dict[str, Col]] = None,
           default: Any = MISSING) -> Any:
    """A metric field: ``label`` and ``fmt`` for people, ``ci``/``n`` name the sibling fields with its
    95% interval and its sample count(s), ``rate`` marks a proportion in [0, 1], ``name_field`` a sibling
    holding the value's own name where it varies (FD vs FID), ``columns`` maps a role to its
    ``metrics.jsonl`` column (a role absent from ``columns``: the field is not a column there)."""
    meta = {"label": label, "fmt": fmt, "ci": ci, "n": n, "rate": rate, "name_field": name_field,
            "columns": columns or {}}
    return field(default=default, metadata=meta) if default is not MISSING else field(metadata=meta)


def detail(label: str = "", *, columns: Optional[dict[str, Col]] = None, default: Any = MISSING) -> Any:
    """A non-metric field (counts, labels, settings): kept in metrics.json, a column when asked."""
    meta = {"label": label, "columns": columns or {}, "detail": True}
    return field(default=default, metadata=meta) if default is not MISSING else field(metadata=meta)


class Record:
    """Mixin of the frozen result dataclasses: a JSON dict out, and back (old files load)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict):
        """The record from a dict written by ``to_dict``; fields it lacks (files written before the
        field existed) are None, keys it does not know are ignored."""
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            value = d.get(f.name)
            sub = record_type(hints[f.name])
            if sub is not None and isinstance(value, dict):
                value = sub.from_dict(value)
            elif isinstance(value, list) and hints[f.name] in (tuple, Optional[tuple]):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)


def record_type(hint) -> Optional[type]:
    """The Record class behind a field's type hint (``X`` or ``Optional[X]``), else None."""
    for t in (hint, *typing.get_args(hint)):
        if isinstance(t, type) and issubclass(t, Record):
            return t
    return None


@dataclass(frozen=True)
class Column:
    """A ``metrics.jsonl`` column with everything a table or a plot needs to show it."""
    name: str
    label: str
    short: str = ""
    fmt: str = ".3f"
    ci: Optional[str] = None       # column of its 95% interval
    n: tuple[str, ...] = ()        # columns of its sample counts
    rate: bool = False
    plot: bool = False
    source: tuple[str, ...] = ()   # attribute path inside the record the row is built from
    name_col: Optional[str] = None  # column holding the value's own name, where it varies (FD vs FID)
    rank: bool = False


def columns_of(cls: type, role: str = "", path: tuple[str, ...] = (), outer: Optional[dict] = None) -> list[Column]:
    """The columns record class ``cls`` feeds in ``role``, walking nested records; a nested record's
    own role is the name of the field that holds it (at the top level). A sibling without a column
    (an interval, a count) falls back to the enclosing record's field of that name."""
    hints = typing.get_type_hints(cls)
    siblings = {**(outer or {}), **{g.name: g.metadata.get("columns", {}).get(role) for g in fields(cls)
                                    if g.metadata.get("columns", {}).get(role)}}
    out: list[Column] = []
    for f in fields(cls):
        sub = record_type(hints[f.name])
        if sub is not None:
            out += columns_of(sub, role or f.name, path + (f.name,), siblings if role else None)
            continue
        col = f.metadata.get("columns", {}).get(role)
        if col is None:
            continue
        sibling = lambda key: siblings[key].name if siblings.get(key) else None  # noqa: E731
        ns = f.metadata.get("n") or ()
        counts = tuple(c for c in map(sibling, (ns,) if isinstance(ns, str) else ns) if c)
        out.append(Column(col.name, col.label, col.short, f.metadata.get("fmt", ""), sibling(f.metadata.get("ci")),
                          counts,
                          f.metadata.get("rate", False), col.plot and not f.metadata.get("detail", False),
                          path + (f.name,), sibling(f.metadata.get("name_field")), col.rank))
    return out


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at an attribute path; None where a record on the way is absent."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name)
    return list(obj) if isinstance(obj, tuple) else obj


def format_value(value: Any, fmt: str, ci: Optional[list] = None) -> str:
    """``value`` in ``fmt`` and its interval ``[lo, hi]`` ("n/a" when missing)."""
    if value is None:
        return "n/a"
    text = format(value, fmt) if isinstance(value, (int, float)) else str(value)
    if ci and all(isinstance(v, (int, float)) for v in ci):
        text += f" [{format(ci[0], fmt)}, {format(ci[1], fmt)}]"
    return text
