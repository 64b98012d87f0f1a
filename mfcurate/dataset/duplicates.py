"""Images that two sources share: find them, mark the copy, carry the test split over.

MIDOG 2021's 150 images are MIDOG++'s 150 breast images (same files ``001.tiff`` ...
``150.tiff``); 33 of them are MIDOG++ test images.  Ingesting both must not put a test image
in training through its copy, nor count it twice.  After every ingest,
:func:`mark_duplicates` compares the new source with every other source of the dataset:

* **by identity** for declared pairs (:data:`KNOWN_COPIES`): same file name and same size;
* **by pixel hash** for any pair, when both files are present: same size and the same
  SHA-256 of the decoded level-0 pixels (:func:`pixel_hash`; slides are not hashed).

The copy's image gets ``duplicate_of = <original image_key>`` and the original's split (so a
``midog++:test`` image stays test in MIDOG 2021 too).  Which side is the copy: the declared
copy source of a known pair (whatever the ingest order); otherwise the source ingested later.
:class:`~mfcurate.dataset.Selection` leaves duplicates out by default and a holdout removes
the copies of held-out images, so nothing leaks either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from mfcurate.dataset.store import Dataset


@dataclass(frozen=True)
class CopyRule:
    """A source (``copy``) known to re-publish images of another (``original``)."""

    copy: str
    original: str
    note: str = ""


#: Declared pairs.  Add a rule here for any future source that re-publishes another's images.
KNOWN_COPIES: tuple[CopyRule, ...] = (
    CopyRule("midog2021", "midog++",
             "MIDOG 2021's 150 images are MIDOG++'s breast images 001-150"),
)


@dataclass
class DuplicateReport:
    """What :func:`mark_duplicates` found for one source pair."""

    copy: str
    original: str
    n_images: int
    n_marked: int
    by: str
    splits_carried: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the user."""
        carried = ", ".join(f"{n} {s}" for s, n in sorted(self.splits_carried.items()))
        return (f"{self.copy}: {self.n_marked} of {self.n_images} images are copies of "
                f"{self.original} images (by {self.by}); marked duplicate_of, split carried "
                f"over ({carried or 'none'}); left out of selections by default")


def pixel_hash(path: Path | str, rows: int = 1024) -> str:
    """SHA-256 of an image's decoded level-0 RGB pixels (with its size), read in strips."""
    from mfcurate.io import open_image

    src = open_image(path)
    try:
        h = hashlib.sha256(f"{src.width}x{src.height}".encode())
        for y in range(0, src.height, rows):
            h.update(src.read_region(0, y, src.width, min(rows, src.height - y)).tobytes())
        return h.hexdigest()
    finally:
        src.close()


def _identity(row: Mapping[str, Any]) -> tuple[str, Any, Any]:
    return PurePosixPath(str(row["path"])).name.lower(), row["width"], row["height"]


def _match_identity(copy: list[dict[str, Any]], orig: list[dict[str, Any]]) -> dict[str, str]:
    index: dict[tuple[str, Any, Any], list[str]] = {}
    for r in orig:
        index.setdefault(_identity(r), []).append(r["image_key"])
    return {r["image_key"]: keys[0] for r in copy
            if len(keys := index.get(_identity(r), [])) == 1}


def _present(ds: Dataset, row: Mapping[str, Any]) -> Path | None:
    if not row.get("file_found") or row.get("is_wsi"):
        return None
    p = ds.image_path(row)
    return p if p.exists() else None


def _match_pixels(ds: Dataset, copy: list[dict[str, Any]], orig: list[dict[str, Any]],
                  cache: dict[str, str]) -> dict[str, str]:
    sizes = {(r["width"], r["height"]) for r in orig}
    cand = [r for r in copy if (r["width"], r["height"]) in sizes and _present(ds, r)]
    if not cand:
        return {}
    want = {(r["width"], r["height"]) for r in cand}

    def digest(r: Mapping[str, Any]) -> str:
        if r["image_key"] not in cache:
            cache[r["image_key"]] = pixel_hash(_present(ds, r))  # type: ignore[arg-type]
        return cache[r["image_key"]]

    by_hash = {digest(r): r["image_key"] for r in orig
               if (r["width"], r["height"]) in want and _present(ds, r)}
    return {r["image_key"]: by_hash[h] for r in cand if (h := digest(r)) in by_hash}


def _pairs(ds: Dataset, source: str) -> list[tuple[str, str, bool]]:
    """``(copy, original, declared)`` pairs to check after ``source`` was ingested."""
    out: list[tuple[str, str, bool]] = []
    for other in ds.sources:
        if other == source:
            continue
        rule = next((r for r in KNOWN_COPIES if {r.copy, r.original} == {source, other}),
                    None)
        if rule is not None:
            out.append((rule.copy, rule.original, True))
        else:
            out.append((source, other, False))  # the later ingest is the copy
    return out


def mark_duplicates(ds: Dataset, source: str, *, hash_pixels: bool = True
                    ) -> list[DuplicateReport]:
    """Mark the images ``source`` shares with the dataset's other sources (one commit).

    Args:
        ds: the dataset (``source`` already ingested).
        source: the source just ingested.
        hash_pixels: also compare present, non-slide images of equal size by pixel hash.

    Returns:
        One :class:`DuplicateReport` per pair with at least one copy.
    """
    reports: list[DuplicateReport] = []
    updated: dict[str, pa.Table] = {}
    cache: dict[str, str] = {}
    for copy_src, orig_src, declared in _pairs(ds, source):
        copy_t = updated[copy_src] if copy_src in updated else ds.images(sources=[copy_src])
        copy_rows = copy_t.to_pylist()
        orig_rows = [r for r in ds.images(sources=[orig_src]).to_pylist()
                     if r["duplicate_of"] is None]
        found = _match_identity(copy_rows, orig_rows) if declared else {}
        by = "file name and size" if found else ""
        if hash_pixels:
            pixels = _match_pixels(ds, [r for r in copy_rows if r["image_key"] not in found],
                                   orig_rows, cache)
            if pixels:
                by = f"{by} and pixel hash" if by else "pixel hash"
            found.update(pixels)
        if not found:
            continue
        split_of = {r["image_key"]: r["split"] for r in orig_rows}
        carried: dict[str, int] = {}
        for r in copy_rows:
            if r["image_key"] in found:
                r["duplicate_of"] = found[r["image_key"]]
                r["split"] = split_of[found[r["image_key"]]]
                carried[r["split"]] = carried.get(r["split"], 0) + 1
        updated[copy_src] = pa.Table.from_pylist(copy_rows, schema=copy_t.schema)
        reports.append(DuplicateReport(copy_src, orig_src, len(copy_rows), len(found), by,
                                       carried))
    if updated:
        ds.update_images(updated)
    return reports
