"""One selection: the only way commands read a dataset's objects.

``info``, the report, every export, publish, patches, training, detection and scoring pick
their images and objects with a :class:`Selection`, so ``--source``, ``--split``,
``--species``, ``--tumour``, ``--label``, ``--qa-state``, ``--images`` and ``--holdout``
mean the same everywhere, and so does the default for rejected rows.

Defaults:

* ``rejected`` objects are left out (``include_rejected`` keeps them);
* images that are copies of another source's image (``duplicate_of`` set, e.g. MIDOG 2021
  inside MIDOG++) are left out with their objects (``include_duplicates`` keeps them);
* a **holdout** ``(source, split)`` removes those images *and every copy of them in another
  source*, so a test image cannot come back through a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset.counts import COUNT_COLUMNS, tally
from mfcurate.dataset.store import Dataset
from mfcurate.errors import UsageError
from mfcurate.schemas.vocab import Label, QAState, Species, Split

Names = tuple[str, ...] | None


@dataclass(frozen=True)
class Selection:
    """Which images and objects a command reads (None: no restriction).

    Attributes:
        sources: source keys.
        splits: image splits (train, val, test, unassigned).
        species: image species.
        tumour_types: image tumour types (lower case, as in the images table).
        labels: object labels.
        qa_states: object QA states (given: exactly these, ``rejected`` only if listed).
        image_keys: image keys (e.g. from ``--images FILE``).
        holdout: ``(source, split)`` pairs whose images (and their copies) are left out.
        include_rejected: keep rejected objects (when ``qa_states`` is not given).
        include_duplicates: keep images that are copies of another source's image.
        masked_only: keep only objects that have a mask.
        exclude_parts: parts to read the dataset without (a step excluding its own output).
    """

    sources: Names = None
    splits: Names = None
    species: Names = None
    tumour_types: Names = None
    labels: Names = None
    qa_states: Names = None
    image_keys: frozenset[str] | None = None
    holdout: tuple[tuple[str, str], ...] = ()
    include_rejected: bool = False
    include_duplicates: bool = False
    masked_only: bool = False
    exclude_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, enum in (("splits", Split), ("species", Species), ("labels", Label),
                           ("qa_states", QAState)):
            values = getattr(self, name)
            allowed = {v.value for v in enum}
            bad = [v for v in values or () if v not in allowed]
            if bad:
                raise UsageError(f"{name}: unknown value(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(sorted(allowed))}")
        for src, split in self.holdout:
            if split not in {v.value for v in Split}:
                raise UsageError(f"holdout {src}:{split}: unknown split {split!r}")

    @classmethod
    def from_options(cls, **options: Any) -> Selection:
        """Build from loose values (a string or a list each; ``holdout`` as ``SOURCE:SPLIT``).

        Unknown keys are a usage error naming them.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"unknown selection option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        kw: dict[str, Any] = {}
        for name in ("sources", "splits", "species", "tumour_types", "labels", "qa_states"):
            kw[name] = names(options.get(name))
            if name == "tumour_types" and kw[name]:
                kw[name] = tuple(v.lower() for v in kw[name])
        keys = names(options.get("image_keys"))
        kw["image_keys"] = frozenset(keys) if keys else None
        kw["holdout"] = tuple(parse_holdout(h) for h in names(options.get("holdout")) or ())
        kw["exclude_parts"] = names(options.get("exclude_parts")) or ()
        for flag in ("include_rejected", "include_duplicates", "masked_only"):
            kw[flag] = bool(options.get(flag, False))
        return cls(**kw)

    def check(self, ds: Dataset) -> Selection:
        """Raise :class:`UsageError` for sources the dataset does not hold; return self."""
        named = set(self.sources or ()) | {s for s, _ in self.holdout}
        missing = sorted(named - set(ds.sources))
        if missing:
            raise UsageError(f"source(s) {', '.join(missing)} not in {ds.root} "
                             f"(has {', '.join(ds.sources) or 'none'})")
        return self

    def describe(self) -> dict[str, Any]:
        """JSON-able description (recorded beside what a command wrote)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, frozenset):
                v = sorted(v)
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out


def as_selection(selection: Selection | None = None, **options: Any) -> Selection:
    """``selection`` itself, or one built from keyword options (``sources=[...]``, ...).

    Lets library functions take either a :class:`Selection` or the same loose keyword
    filters the CLI passes (``None`` values are ignored); giving both is an error.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if selection is not None:
        if options:
            raise UsageError(f"give a Selection or filter options, not both "
                             f"({', '.join(sorted(options))})")
        return selection
    return Selection.from_options(**options)


def names(v: Any) -> Names:
    """None, a string or an iterable of strings as a tuple of strings (None when empty)."""
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    t = tuple(str(x) for x in v)
    return t or None


def parse_holdout(text: str) -> tuple[str, str]:
    """``"midog++:test"`` -> ``("midog++", "test")``."""
    src, sep, split = str(text).rpartition(":")
    if not sep or not src or not split:
        raise UsageError(f"holdout {text!r}: write SOURCE:SPLIT, e.g. midog++:test")
    return src, split


def read_image_list(path: Path | str) -> frozenset[str]:
    """Image keys from a text file (one per line; ``#`` comments; a CSV's first column)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read the image list ({exc.strerror or exc})") from None
    keys = [ln.split(",")[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    if keys and keys[0] == "image_key":
        keys = keys[1:]
    if not keys:
        raise UsageError(f"{p}: the image list is empty")
    return frozenset(keys)


def _in(col: pa.ChunkedArray, values: Iterable[str]) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_in(col, value_set=pa.array(sorted(values), pa.string())), False)


def select_images(ds: Dataset, sel: Selection, columns: Sequence[str] | None = None
                  ) -> pa.Table:
    """The images a selection keeps (every images column unless ``columns``)."""
    images = ds.images()
    keep = pc.is_valid(images.column("image_key"))
    if sel.sources:
        keep = pc.and_(keep, _in(images.column("source"), sel.sources))
    if not sel.include_duplicates:
        keep = pc.and_(keep, pc.is_null(images.column("duplicate_of")))
    for col, values in (("split", sel.splits), ("species", sel.species),
                        ("tumour_type", sel.tumour_types)):
        if values:
            keep = pc.and_(keep, _in(images.column(col), values))
    if sel.image_keys is not None:
        keep = pc.and_(keep, _in(images.column("image_key"), sel.image_keys))
    if sel.holdout:
        keep = pc.and_(keep, pc.invert(_held_out(images, sel.holdout)))
    out = images.filter(keep)
    return out.select(list(columns)) if columns else out


def _held_out(images: pa.Table, holdout: Sequence[tuple[str, str]]) -> pa.ChunkedArray:
    """Images in a held-out (source, split), or copies of / originals of such images."""
    group = pc.coalesce(images.column("duplicate_of"), images.column("image_key"))
    hit: Any = pa.scalar(False)
    for src, split in holdout:
        hit = pc.or_(hit, pc.and_(pc.equal(images.column("source"), src),
                                  pc.equal(images.column("split"), split)))
    held_groups = pc.filter(group, hit)
    return _in(group, held_groups.to_pylist())


def iter_selected(ds: Dataset, sel: Selection, columns: Sequence[str] | None = None,
                  batch_size: int = 65536, images: pa.Table | None = None
                  ) -> Iterator[pa.Table]:
    """Stream the effective objects a selection keeps, in batches.

    Args:
        ds: the dataset.
        sel: the selection.
        columns: output columns (default all).
        batch_size: rows per read batch.
        images: the selection's images if already computed (else :func:`select_images`).
    """
    sel.check(ds)
    if images is None:
        images = select_images(ds, sel, columns=["image_key", "source"])
    keys = images.column("image_key").combine_chunks()
    wanted = set(images.column("source").to_pylist())
    need = None if columns is None else list(dict.fromkeys(
        [*columns, "image_key", "label", "qa_state", "mask_rle"]))
    for t in ds.iter_objects(sources=sorted(wanted), columns=need, batch_size=batch_size,
                             exclude_parts=sel.exclude_parts):
        keep = pc.is_in(t.column("image_key"), value_set=keys)
        if sel.labels:
            keep = pc.and_(keep, _in(t.column("label"), sel.labels))
        if sel.qa_states:
            keep = pc.and_(keep, _in(t.column("qa_state"), sel.qa_states))
        elif not sel.include_rejected:
            keep = pc.and_(keep, pc.not_equal(t.column("qa_state"), QAState.REJECTED.value))
        if sel.masked_only:
            keep = pc.and_(keep, pc.is_valid(t.column("mask_rle")))
        t = t.filter(keep)
        if t.num_rows:
            yield t.select(list(columns)) if columns else t


def select_objects(ds: Dataset, sel: Selection, columns: Sequence[str] | None = None
                   ) -> pa.Table:
    """The effective objects a selection keeps, in memory."""
    from mfcurate.schemas.tables import OBJECTS_SCHEMA

    tables = list(iter_selected(ds, sel, columns))
    if tables:
        return pa.concat_tables(tables)
    empty = OBJECTS_SCHEMA.empty_table()
    return empty.select(list(columns)) if columns else empty


def select_regions(ds: Dataset, sel: Selection, images: pa.Table | None = None) -> pa.Table:
    """The region polygons (``REGIONS_SCHEMA``) drawn on the images a selection keeps.

    Only images are chosen (object options such as ``labels`` do not apply); the result is
    empty when none of those images has regions.

    Args:
        ds: the dataset.
        sel: the selection.
        images: the selection's images if already computed (else :func:`select_images`).
    """
    sel.check(ds)
    if images is None:
        images = select_images(ds, sel, columns=["image_key", "source"])
    regions = ds.regions(sorted(set(images.column("source").to_pylist())))
    keys = images.column("image_key").combine_chunks()
    return regions.filter(pc.is_in(regions.column("image_key"), value_set=keys))


def summarize(ds: Dataset, sel: Selection | None = None,
              by: Sequence[str] = ("source",)) -> dict[str, Any]:
    """Counts of a selection, grouped by image columns (default per source).

    Returns:
        ``{"images": n, "groups": {group: {"images": n, **tally}}, "total": tally}``, a
        group key joining the ``by`` values with ``" | "``.
    """
    sel = (sel or Selection(include_rejected=True)).check(ds)
    images = select_images(ds, sel)
    group_of = {r["image_key"]: " | ".join(str(r[c]) for c in by)
                for r in images.select(["image_key", *by]).to_pylist()}
    groups: dict[str, dict[str, Any]] = {}
    for g in group_of.values():
        groups.setdefault(g, {"images": 0})["images"] += 1
    per: dict[str, list[pa.Table]] = {}
    cols = ["image_key", *COUNT_COLUMNS]
    for t in iter_selected(ds, sel, cols, images=images):
        g_col = pa.array([group_of[k] for k in t.column("image_key").to_pylist()])
        for g in pc.unique(g_col).to_pylist():
            per.setdefault(str(g), []).append(t.filter(pc.equal(g_col, g)))
    for g, tables in per.items():
        groups[g].update(tally(tables))
    for g in groups:
        groups[g] = {**tally([]), **groups[g]}
    total = tally(_all(per))
    return {"images": images.num_rows, "groups": dict(sorted(groups.items())), "total": total}


def _all(per: Mapping[str, list[pa.Table]]) -> Iterator[pa.Table]:
    for tables in per.values():
        yield from tables
