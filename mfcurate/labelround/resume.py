"""Resuming ``label-round new``: its pending marker and the round's rows of the ``detect`` part.

``new`` writes, in this order: ``ROUND/round.pending.json`` (round id, creation time), the
round's new detections into the dataset's ``detect`` part (one commit), every rater's package
(each swapped in whole), ``round.json``, and then removes the marker.  Killed anywhere, a
rerun with the same options finds the marker, reads the dataset without the round's own
detections (``extra.detect.round`` names the round), selects the same objects with the same
keys, leaves the committed detections as they are (it replaces the round's rows, never
appends to them) and writes what is missing.  A detection carrying the round id without the
marker in the folder belongs to another folder's round of that id: ``new`` refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset, atomic_write_json, remove_temporaries_of
from mfcurate.labelround.round import ROUND_FILE
from mfcurate.schemas.tables import ObjectRecord, objects_table

PENDING = "round.pending.json"
PART = "detect"


def own_detections(ds: Dataset, round_id: str) -> dict[str, set[str]]:
    """``source -> keys`` of the ``detect`` rows whose ``extra.detect.round`` is ``round_id``."""
    out: dict[str, set[str]] = {}
    for src in ds.sources:
        if PART not in ds.parts(src):
            continue
        t = ds.part(src, PART, ["object_key", "extra"])
        for key, extra in zip(t.column("object_key").to_pylist(),
                              t.column("extra").to_pylist(), strict=True):
            if _round_of(extra) == round_id:
                out.setdefault(src, set()).add(key)
    return out


def _round_of(extra: str | None) -> str | None:
    try:
        doc = json.loads(extra) if extra else {}
    except json.JSONDecodeError:
        return None
    det = doc.get(PART) if isinstance(doc, dict) else None
    return str(det["round"]) if isinstance(det, dict) and det.get("round") else None


def read_pending(folder: Path) -> dict[str, Any] | None:
    """The marker of an unfinished ``new`` in ``folder`` (None: none, or unreadable)."""
    path = folder / PENDING
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("round_id") else None


def write_pending(folder: Path, round_id: str, created: str) -> None:
    """Create ``folder`` and mark it as holding the unfinished round ``round_id``."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / PENDING, {"round_id": round_id, "created": created})


def clear_pending(folder: Path) -> None:
    """Remove the marker (the round is complete)."""
    (folder / PENDING).unlink(missing_ok=True)


def remove_leftovers(folder: Path) -> int:
    """Delete the temporaries a killed ``new`` left of the marker and ``round.json``.

    (A killed package build is cleaned when that package is written again.)
    """
    return remove_temporaries_of(folder / PENDING, folder / ROUND_FILE)


def commit_detections(ds: Dataset, records: Mapping[str, list[ObjectRecord]],
                      own: Mapping[str, set[str]]) -> int:
    """Make the round's rows of each source's ``detect`` part exactly ``records`` (one commit).

    Args:
        ds: the dataset.
        records: ``source -> the round's new detections``.
        own: ``source -> keys of the round's detections already in the part``.

    Returns:
        How many of ``records`` were already committed (by a killed run of the round).
        Sources whose rows are already right are not written; other rounds' rows stay.
    """
    parts: dict[tuple[str, str], list[pa.Table]] = {}
    remove: list[tuple[str, str]] = []
    reused = 0
    for src in sorted(set(records) | set(own)):
        new = objects_table(records.get(src, []))
        cur = ds.part(src, PART)
        mine = pc.is_in(cur.column("object_key"),
                        value_set=pa.array(sorted(own.get(src, set())), pa.string()))
        committed = cur.filter(mine)
        reused += len(set(new.column("object_key").to_pylist())
                      & set(committed.column("object_key").to_pylist()))
        if _rows(committed) == _rows(new):
            continue
        others = cur.filter(pc.invert(mine))
        if others.num_rows + new.num_rows:
            parts[(src, PART)] = [others, new]
        else:
            remove.append((src, PART))
    if parts or remove:
        ds.write_parts(parts, remove=remove)
    return reused


def _rows(t: pa.Table) -> list[dict[str, Any]]:
    return sorted(t.to_pylist(), key=lambda r: str(r["object_key"]))
