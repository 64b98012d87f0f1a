"""Effective rows: a batch of base rows with the source's layer parts applied.

The precedence rules are stated in :mod:`mfcurate.dataset.parts`.  Everything is vectorised
with pyarrow/numpy over the batch; only the rows a layer touches pay for the ``qa_flags``
merge.  Memory: the source's layer tables plus one base batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset.parts import (
    DECIDED_STATES,
    FORCED_RANK,
    MASK_RANK,
    NO_MASK_RANK,
    PartSpec,
)
from mfcurate.schemas.tables import OBJECTS_SCHEMA

#: Columns that travel together with a mask.
MASK_BUNDLE = ("bbox_xyxy", "mask_rle", "mask_origin", "mask_score", "area_px", "area_um2")
#: Base columns the resolution itself needs, whatever the caller asked for.
NEEDED = ("object_key", "mask_rle", "mask_origin", "qa_state", "qa_flags")

Layer = tuple[PartSpec, pa.Table]


def needed_columns(columns: Sequence[str] | None) -> list[str] | None:
    """Base columns to read for ``columns`` of effective rows (None: all)."""
    if columns is None:
        return None
    return list(dict.fromkeys([*columns, *NEEDED]))


def _bools(a: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def _base_ranks(base: pa.Table) -> npt.NDArray[np.float64]:
    origins = base.column("mask_origin").to_pylist()
    has = _bools(pc.is_valid(base.column("mask_rle")))
    ranks = np.array([MASK_RANK.get(o or "", 2.0) for o in origins], dtype=np.float64)
    return np.where(has, ranks, NO_MASK_RANK)


class _Matched:
    """One layer aligned to the batch: ``take(column)`` gives the layer's value per base row."""

    def __init__(self, spec: PartSpec, layer: pa.Table, keys: pa.ChunkedArray) -> None:
        self.spec = spec
        self.layer = layer
        self.idx = pc.index_in(keys, value_set=layer.column("object_key").combine_chunks())
        self.hit = _bools(pc.is_valid(self.idx))

    def take(self, column: str) -> pa.ChunkedArray:
        return pc.take(self.layer.column(column), self.idx)

    def sets(self, column: str) -> npt.NDArray[np.bool_]:
        return self.hit & _bools(pc.is_valid(self.take(column)))

    def mask_rank(self) -> npt.NDArray[np.float64]:
        forced = _bools(self.take("mask_forced"))
        r = np.where(forced, FORCED_RANK, self.spec.mask_rank)
        return np.where(self.sets("mask_rle"), r, -np.inf)


def _replace(col: pa.ChunkedArray, where: npt.NDArray[np.bool_], values: pa.ChunkedArray
             ) -> pa.ChunkedArray:
    if not where.any():
        return col
    out = pc.if_else(pa.array(where), values.cast(col.type), col)
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])


def resolve(base: pa.Table, layers: Sequence[Layer], columns: Sequence[str] | None = None
            ) -> pa.Table:
    """Apply ``layers`` (ascending precedence) to a batch of base rows.

    Args:
        base: base rows with at least :data:`NEEDED` and the requested columns.
        layers: ``(spec, table)`` per layer part of the rows' source, ``LAYER_SCHEMA`` tables.
        columns: output columns (default: every ``objects`` column, in schema order).

    Returns:
        The effective rows, same order and length as ``base``.
    """
    names = list(columns) if columns is not None else OBJECTS_SCHEMA.names
    schema = pa.schema([OBJECTS_SCHEMA.field(n) for n in names])
    keys = base.column("object_key")
    matched = [_Matched(spec, t, keys) for spec, t in layers if t.num_rows] \
        if base.num_rows else []
    if not matched:
        return base.select(names).cast(schema)
    out = {n: base.column(n) for n in base.column_names}
    _apply_masks(out, base, matched)
    _apply_labels(out, matched)
    _apply_links(out, matched)
    _apply_step_info(out, matched)
    return pa.Table.from_arrays([out[n].cast(schema.field(n).type) for n in names],
                                schema=schema)


def _apply_masks(out: dict[str, pa.ChunkedArray], base: pa.Table, matched: list[_Matched]
                 ) -> None:
    ranks = np.vstack([_base_ranks(base)] + [m.mask_rank() for m in matched])
    # argmax takes the first maximum: search from the last candidate so layers win ties
    winner = len(matched) - np.argmax(ranks[::-1], axis=0)  # 0 = base, j = matched[j-1]
    base_q = base.column("qa_state")
    decided = _bools(pc.is_in(base_q, value_set=pa.array(sorted(DECIDED_STATES))))
    flag_rows: dict[int, list[str]] = {}
    for j, m in enumerate(matched, start=1):
        won = winner == j
        if won.any():
            for c in MASK_BUNDLE:
                if c in out:
                    out[c] = _replace(out[c], won, m.take(c))
            q = won & ~decided & m.sets("qa_state")
            out["qa_state"] = _replace(out["qa_state"], q, m.take("qa_state"))
            _collect_flags(flag_rows, won, m)
    for j, m in enumerate(matched, start=1):
        if m.spec.human:  # a person's QA state and flags hold whichever mask won
            out["qa_state"] = _replace(out["qa_state"], m.sets("qa_state"), m.take("qa_state"))
            _collect_flags(flag_rows, winner != j, m)
    if flag_rows and "qa_flags" in out:
        out["qa_flags"] = _merge_flags(out["qa_flags"], flag_rows)


def _collect_flags(rows: dict[int, list[str]], where: npt.NDArray[np.bool_], m: _Matched
                   ) -> None:
    idx = np.flatnonzero(where & m.sets("qa_flags"))
    if len(idx) == 0:
        return
    vals = pc.take(m.take("qa_flags"), pa.array(idx)).to_pylist()
    for i, v in zip(idx, vals, strict=True):
        rows.setdefault(int(i), []).extend(v or [])


def _merge_flags(col: pa.ChunkedArray, extra: dict[int, list[str]]) -> pa.ChunkedArray:
    values = col.to_pylist()
    for i, more in extra.items():
        merged = list(dict.fromkeys([*(values[i] or []), *more]))
        values[i] = merged or None
    return pa.chunked_array([pa.array(values, type=col.type)])


def _apply_labels(out: dict[str, pa.ChunkedArray], matched: list[_Matched]) -> None:
    for m in sorted((m for m in matched if m.spec.label_rank), key=lambda m: m.spec.label_rank):
        sets = m.sets("label")
        if "label" in out:
            out["label"] = _replace(out["label"], sets, m.take("label"))
        if "label_origin" in out:
            out["label_origin"] = _replace(out["label_origin"], sets & m.sets("label_origin"),
                                           m.take("label_origin"))
    for m in matched:
        if "votes" in out:
            out["votes"] = _replace(out["votes"], m.sets("votes"), m.take("votes"))


def _apply_step_info(out: dict[str, pa.ChunkedArray], matched: list[_Matched]) -> None:
    """Each layer's ``step_info`` appears in ``extra`` under the layer's part name."""
    if "extra" not in out:
        return
    extra: list[str | None] | None = None
    for m in matched:
        rows = np.flatnonzero(m.sets("step_info"))
        if len(rows) == 0:
            continue
        if extra is None:
            extra = out["extra"].to_pylist()
        infos = pc.take(m.take("step_info"), pa.array(rows)).to_pylist()
        for i, info in zip(rows, infos, strict=True):
            d = _loads(extra[i])
            d[m.spec.name] = _loads(info) or info
            extra[i] = json.dumps(d, sort_keys=True)
    if extra is not None:
        out["extra"] = pa.chunked_array([pa.array(extra, pa.string())])


def _loads(s: str | None) -> dict[str, Any]:
    if not s:
        return {}
    try:
        v = json.loads(s)
    except json.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


def _apply_links(out: dict[str, pa.ChunkedArray], matched: list[_Matched]) -> None:
    if "parent_key" not in out:
        return
    for m in matched:
        out["parent_key"] = _replace(out["parent_key"], m.sets("parent_key"),
                                     m.take("parent_key"))
