"""Counting objects, one way: :func:`tally` over effective rows.

The manifest's counts (written by every commit for the sources it touched), ``mfcurate
info``, the HTML report, the exports' summaries and the release metadata all count with
:func:`tally`, so they cannot disagree.  Conventions:

* ``objects``: every effective row, rejected included; ``rejected``: rows in state
  ``rejected`` (harvested duplicates of annotations, objects a reviewer rejected);
* ``by_label``, ``by_mask_origin``, ``by_qa_state``: rows that are **not** rejected;
* images: every row of the images table; ``duplicates``: images that are copies of another
  source's image (``duplicate_of`` set), left out of selections by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from mfcurate.dataset.store import Dataset

#: Columns :func:`tally` needs.
COUNT_COLUMNS = ("label", "qa_state", "mask_origin")


def _add(d: dict[str, int], col: pa.ChunkedArray | pa.Array) -> None:
    for row in pc.value_counts(col).to_pylist():
        key = "none" if row["values"] is None else str(row["values"])
        d[key] = d.get(key, 0) + int(row["counts"])


def tally(tables: Iterable[pa.Table]) -> dict[str, Any]:
    """Counts of effective object rows (see the module docstring for the conventions)."""
    out: dict[str, Any] = {"objects": 0, "rejected": 0, "by_label": {}, "by_mask_origin": {},
                           "by_qa_state": {}}
    for t in tables:
        if t.num_rows == 0:
            continue
        out["objects"] += t.num_rows
        live = pc.not_equal(t.column("qa_state"), "rejected")
        kept = t.filter(live)
        out["rejected"] += t.num_rows - kept.num_rows
        _add(out["by_label"], kept.column("label"))
        if "mask_origin" in kept.column_names:
            _add(out["by_mask_origin"], kept.column("mask_origin"))
        _add(out["by_qa_state"], kept.column("qa_state"))
    return out


def source_counts(ds: Dataset, source: str) -> dict[str, Any]:
    """Counts of one source (reads its images and the three narrow object columns)."""
    images = ds.images(sources=[source], columns=["duplicate_of"])
    out = {"images": images.num_rows,
           "duplicates": int(pc.sum(pc.is_valid(images.column("duplicate_of"))).as_py() or 0)}
    out.update(tally(ds.iter_objects(sources=[source], columns=list(COUNT_COLUMNS))))
    return out


def total_counts(by_source: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Dataset totals from per-source counts (``by_source`` kept inside)."""
    tot: dict[str, Any] = {"images": 0, "duplicates": 0, "objects": 0, "rejected": 0,
                           "by_label": {}, "by_mask_origin": {}, "by_qa_state": {}}
    for c in by_source.values():
        for k in ("images", "duplicates", "objects", "rejected"):
            tot[k] += int(c.get(k, 0))
        for k in ("by_label", "by_mask_origin", "by_qa_state"):
            for lab, n in c.get(k, {}).items():
                tot[k][lab] = tot[k].get(lab, 0) + int(n)
    tot["by_source"] = {k: dict(v) for k, v in by_source.items()}
    return tot


def update_totals(totals: Mapping[str, Any], new: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, Any]:
    """Dataset totals after some sources' counts changed: ``totals - previous + new``.

    Args:
        totals: the previous totals (``by_source`` holds each source's previous counts).
        new: the recounted sources.

    Costs O(touched sources), not O(sources): the other sources' counts are not re-added.
    """
    by_source = dict(totals.get("by_source", {}))
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                           for k, v in totals.items() if k != "by_source"}
    base = total_counts({})
    for k, v in base.items():
        if k != "by_source":
            out.setdefault(k, v)
    for src, c in new.items():
        prev = by_source.get(src, {})
        for sign, counts in ((-1, prev), (1, c)):
            for k in ("images", "duplicates", "objects", "rejected"):
                out[k] = int(out.get(k, 0)) + sign * int(counts.get(k, 0))
            for k in ("by_label", "by_mask_origin", "by_qa_state"):
                d = out[k]
                for lab, n in counts.get(k, {}).items():
                    d[lab] = d.get(lab, 0) + sign * int(n)
                    if d[lab] == 0:
                        del d[lab]
        by_source[src] = dict(c)
    out["by_source"] = by_source
    return out
