"""Writing a dataset: one atomic commit of several parts and images tables at once.

A commit, under the writer lock:

1. writes every new file (images and regions of a source, base parts, layer parts) under a
   fresh name,
   validated on the way (schema, vocabularies, geometry, keys: unique across a source's base
   parts; every layer row names an existing object, its mask inside that object's image);
2. builds the new manifest in memory: file entries (sha256, bytes, rows) for the new files
   only, old entries kept; counts recomputed for the touched sources only, from their own
   files — the cost of a commit grows with what it touches, never with the dataset;
3. replaces ``manifest.json`` (the one atomic switch);
4. deletes files no longer listed and stale temporaries.

Anything failing before step 3 deletes the new files and leaves the dataset as it was.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate import __version__
from mfcurate.dataset.counts import source_counts, update_totals
from mfcurate.dataset.files import (
    atomic_write_json,
    remove_stale_temporaries,
    sha256_file,
    write_parquet_atomic,
)
from mfcurate.dataset.manifest import MANIFEST, now
from mfcurate.dataset.parts import PARTS, PartKind, part_spec
from mfcurate.dataset.store import Dataset
from mfcurate.errors import DatasetError, SchemaValidationError
from mfcurate.schemas.tables import (
    IMAGES_SCHEMA,
    LAYER_SCHEMA,
    OBJECTS_SCHEMA,
    REGIONS_SCHEMA,
    conform,
)
from mfcurate.schemas.validate import (
    validate_images,
    validate_layer,
    validate_objects,
    validate_regions,
)

#: Manifest fields of a source taken from the adapter's info.
INFO_FIELDS = ("name", "citation", "doi", "license", "homepage")


@dataclass
class Commit:
    """What one commit changes.

    Attributes:
        parts: ``(source, part) -> tables`` to write (each replaces that part).
        images: ``source -> images table`` to write (replaces the source's images).
        regions: ``source -> regions table`` to write (replaces the source's regions; an
            empty table removes them).
        remove: ``(source, part)`` to drop.
        entries: ``source -> manifest fields`` for new or re-ingested sources.
        refilter: layer ``(source, part)`` kept from before the commit, filtered to the
            objects that exist after it (re-ingest).
    """

    parts: dict[tuple[str, str], Iterable[pa.Table]] = field(default_factory=dict)
    images: dict[str, pa.Table] = field(default_factory=dict)
    regions: dict[str, pa.Table] = field(default_factory=dict)
    remove: set[tuple[str, str]] = field(default_factory=set)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    refilter: set[tuple[str, str]] = field(default_factory=set)


def commit_source(ds: Dataset, source: str, images: pa.Table, objects: Iterable[pa.Table], *,
                  info: Mapping[str, Any], root: Path | str,
                  regions: pa.Table | None = None) -> dict[str, Any]:
    """Add or replace one source: its images, its ``ingest`` part and its regions.

    ``regions`` (``REGIONS_SCHEMA``) replaces the source's region polygons; None or an empty
    table leaves the source without regions.

    Re-ingesting replaces the source's images and annotations; parts computed from them
    (harvest, refine, harvest-fill) are dropped, since they refer to annotations that may
    have changed; parts holding people's work (review, labels, detect) are kept for the
    objects and images that still exist.

    Returns:
        The manifest entry of the source.
    """
    entry: dict[str, Any] = {k: str(info.get(k, "") or "") for k in INFO_FIELDS}
    entry["name"] = entry["name"] or source
    entry["license"] = entry["license"] or "unknown"
    entry["details"] = {k: v for k, v in info.items() if k not in INFO_FIELDS}
    entry["root"] = str(Path(root).resolve())
    entry["ingested_at"] = now()
    with ds.lock():
        commit = Commit(parts={(source, "ingest"): objects}, images={source: images},
                        regions={source: regions if regions is not None
                                 else REGIONS_SCHEMA.empty_table()},
                        entries={source: entry})
        if source in ds.manifest["sources"]:
            _carry_human_parts(ds, source, images, commit)
        _apply_locked(ds, commit)
    return ds.source_info(source)


def _carry_human_parts(ds: Dataset, source: str, images: pa.Table, commit: Commit) -> None:
    """On re-ingest: drop machine parts, keep people's parts filtered to what survives."""
    keep_images = images.column("image_key").combine_chunks()
    for part in ds.parts(source):
        if part == "ingest":
            continue
        spec = part_spec(part)
        if not spec.human:
            commit.remove.add((source, part))
            continue
        if spec.kind is PartKind.BASE:
            t = ds.part(source, part)
            commit.parts[(source, part)] = [t.filter(pc.is_in(t.column("image_key"),
                                                               value_set=keep_images))]
        else:
            commit.parts[(source, part)] = [ds.layer(source, part)]
            commit.refilter.add((source, part))


def apply_commit(ds: Dataset, commit: Commit) -> None:
    """Apply ``commit`` to ``ds`` atomically (takes the writer lock)."""
    with ds.lock():
        _apply_locked(ds, commit)


def _apply_locked(ds: Dataset, commit: Commit) -> None:
    touched = ({s for s, _ in [*commit.parts, *commit.remove]} | set(commit.images)
               | set(commit.regions) | set(commit.entries))
    manifest = _copy_for(ds.manifest, touched)
    for src, entry in commit.entries.items():
        old = manifest["sources"].get(src, {})
        manifest["sources"][src] = {**entry, "images": old.get("images"),
                                    "parts": dict(old.get("parts", {}))}
        if old.get("regions"):
            manifest["sources"][src]["regions"] = old["regions"]
    for src, _ in [*commit.parts, *commit.remove]:
        if src not in manifest["sources"]:
            raise DatasetError(f"{ds.root}: source {src!r} is not in the dataset")
    written: list[Path] = []
    try:
        _write_images(ds, manifest, commit, written)
        _write_regions(ds, manifest, commit, written)
        for src, part in commit.remove:
            manifest["sources"][src]["parts"].pop(part, None)
        order = sorted(commit.parts, key=lambda sp: part_spec(sp[1]).kind is PartKind.LAYER)
        for src, part in order:
            _write_part(ds, manifest, src, part, commit.parts[(src, part)], written,
                        refilter=(src, part) in commit.refilter)
        if _same_content(ds.manifest, manifest, touched) and not commit.entries:
            return  # nothing changed: a rerun on an unchanged dataset writes nothing
        _finish_manifest(ds, manifest, touched)
        atomic_write_json(ds.root / MANIFEST, manifest, compact=True)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    ds.adopt(manifest, touched)
    _remove_unlisted(ds, touched)


def _copy_for(manifest: Mapping[str, Any], touched: set[str]) -> dict[str, Any]:
    """A copy of ``manifest`` safe to edit for ``touched`` sources (others shared, read-only).

    Copies the top level, the ``sources`` and ``files`` maps and the touched entries only, so
    a commit's cost does not grow with the number of sources.
    """
    out = dict(manifest)
    out["sources"] = dict(manifest["sources"])
    out["files"] = dict(manifest["files"])
    for src in touched:
        if src in out["sources"]:
            out["sources"][src] = copy.deepcopy(out["sources"][src])
    return out


def _register(manifest: dict[str, Any], ds_root: Path, rel: str, rows: int, kind: str,
              source: str, part: str | None, old: str | None) -> str:
    """List a new file; when it equals the file it replaces, keep the old one instead.

    Returns:
        The file the manifest names now (``old`` when the content did not change, so that
        rerunning a step on an unchanged dataset changes nothing).
    """
    path = ds_root / rel
    digest = sha256_file(path)
    prev = manifest["files"].get(old) if old else None
    if prev is not None and prev["sha256"] == digest:
        path.unlink()
        return str(old)
    manifest["files"][rel] = {"sha256": digest, "bytes": path.stat().st_size,
                              "rows": int(rows), "kind": kind, "source": source, "part": part}
    return rel


def _write_images(ds: Dataset, manifest: dict[str, Any], commit: Commit,
                  written: list[Path]) -> None:
    for src, table in commit.images.items():
        table = conform(table, IMAGES_SCHEMA)
        validate_images(table)
        if table.num_rows and set(table.column("source").to_pylist()) != {src}:
            raise DatasetError(f"images of source {src!r} carry another source key")
        rel = f"images/source={src}/images-{uuid.uuid4().hex[:12]}.parquet"
        written.append(ds.root / rel)
        rows = write_parquet_atomic(ds.root / rel, [table], IMAGES_SCHEMA)
        old = manifest["sources"][src].get("images")
        manifest["sources"][src]["images"] = _register(manifest, ds.root, rel, rows, "images",
                                                       src, None, old)


def _write_regions(ds: Dataset, manifest: dict[str, Any], commit: Commit,
                   written: list[Path]) -> None:
    """Write each source's regions (after its images, which they are checked against)."""
    for src, table in commit.regions.items():
        table = conform(table, REGIONS_SCHEMA)
        if table.num_rows == 0:
            manifest["sources"][src].pop("regions", None)
            continue
        validate_regions(table, _view(ds, manifest).images(sources=[src]))
        if set(table.column("source").to_pylist()) != {src}:
            raise DatasetError(f"regions of source {src!r} carry another source key")
        rel = f"regions/source={src}/regions-{uuid.uuid4().hex[:12]}.parquet"
        written.append(ds.root / rel)
        rows = write_parquet_atomic(ds.root / rel, [table], REGIONS_SCHEMA)
        old = manifest["sources"][src].get("regions")
        manifest["sources"][src]["regions"] = _register(manifest, ds.root, rel, rows,
                                                        "regions", src, None, old)


def _same_content(old: Mapping[str, Any], new: Mapping[str, Any], touched: set[str]) -> bool:
    """Whether two manifests name the same files for the touched sources."""
    def files(m: Mapping[str, Any]) -> dict[str, Any]:
        return {s: (e.get("images"), e.get("regions"), sorted(e.get("parts", {}).items()))
                for s, e in m["sources"].items() if s in touched}

    return files(old) == files(new)


def _view(ds: Dataset, manifest: Mapping[str, Any]) -> Dataset:
    """A read view of the commit's state so far (new files, manifest not yet written)."""
    return Dataset(ds.root, manifest)


def _write_part(ds: Dataset, manifest: dict[str, Any], src: str, part: str,
                tables: Iterable[pa.Table], written: list[Path], refilter: bool = False
                ) -> None:
    spec = PARTS.get(part) or part_spec(part)
    old = manifest["sources"][src]["parts"].get(part)
    view = _view(ds, manifest)
    rel = f"objects/source={src}/{part}-{uuid.uuid4().hex[:12]}.parquet"
    path = ds.root / rel
    written.append(path)
    if spec.kind is PartKind.BASE:
        images = view.images(sources=[src])
        rows = write_parquet_atomic(path, _valid_base(tables, images, src), OBJECTS_SCHEMA)
        manifest["sources"][src]["parts"].pop(part, None)
        _check_disjoint(view, src, part, path)
        kind = "base"
    else:
        manifest["sources"][src]["parts"].pop(part, None)
        objects = _view(ds, manifest).objects(
            sources=[src], columns=["object_key", "image_key"], exclude_parts=[part])
        images = view.images(sources=[src])
        rows = write_parquet_atomic(
            path, _valid_layer(tables, objects, images, src, part, refilter), LAYER_SCHEMA)
        kind = "layer"
    manifest["sources"][src]["parts"][part] = _register(manifest, ds.root, rel, rows, kind,
                                                         src, part, old)


def _valid_base(tables: Iterable[pa.Table], images: pa.Table, src: str) -> Iterator[pa.Table]:
    for t in tables:
        t = conform(t, OBJECTS_SCHEMA)
        validate_objects(t, images)
        if t.num_rows and set(t.column("source").to_pylist()) != {src}:
            raise DatasetError(f"objects written for source {src!r} carry another source key")
        yield t


def _valid_layer(tables: Iterable[pa.Table], objects: pa.Table, images: pa.Table, src: str,
                 part: str, refilter: bool) -> Iterator[pa.Table]:
    """Validate layer rows: schema, keys that exist, masks inside their object's image."""
    keys = objects.column("object_key").combine_chunks()
    for t in tables:
        if refilter:  # re-ingest: keep the rows whose objects survive
            t = t.filter(pc.is_in(t.column("object_key"), value_set=keys))
        t = conform(t, LAYER_SCHEMA)
        validate_layer(t)
        if t.num_rows == 0:
            continue
        idx = pc.index_in(t.column("object_key"), value_set=keys)
        unknown = pc.is_null(idx)
        if pc.any(unknown).as_py():
            bad = pc.filter(t.column("object_key"), unknown).to_pylist()
            raise SchemaValidationError(f"{part} layer of {src}", "object_key names no object "
                                        "of the source", [str(k) for k in bad])
        _check_layer_geometry(t, objects, images, idx)
        yield t


def _check_layer_geometry(t: pa.Table, objects: pa.Table, images: pa.Table,
                          idx: pa.ChunkedArray) -> None:
    has = pc.is_valid(t.column("mask_rle"))
    if not pc.any(has).as_py():
        return
    sub = t.filter(has)
    img_keys = pc.take(objects.column("image_key"), pc.filter(idx, has))
    fake = pa.table({
        **{c: sub.column(c) for c in ("object_key", "bbox_xyxy", "mask_rle", "mask_origin",
                                      "mask_score", "area_px", "area_um2", "qa_flags")},
        "image_key": img_keys,
    })
    n = fake.num_rows
    fill = {"source": pa.array(["?"] * n), "source_annotation_id": pa.array(["?"] * n),
            "label": pa.array(["other_cell"] * n), "label_origin": pa.array(["model"] * n),
            "centroid_xy": pa.array([[0.0, 0.0]] * n, type=pa.list_(pa.float64(), 2)),
            "qa_state": pa.array(["unreviewed"] * n)}
    for k, v in fill.items():
        fake = fake.append_column(k, v)
    validate_objects(conform(fake, OBJECTS_SCHEMA), images)


def _check_disjoint(view: Dataset, src: str, part: str, path: Path) -> None:
    from mfcurate.dataset.files import read_parquet

    new_keys = read_parquet(path, OBJECTS_SCHEMA, ["object_key"]).column("object_key")
    if pc.count_distinct(new_keys).as_py() != len(new_keys):
        raise DatasetError(f"{path.name}: duplicate object_key within the part")
    value_set = new_keys.combine_chunks()
    for other in view.base_parts(src):
        if other == part:
            continue
        keys = view.part(src, other, columns=["object_key"]).column("object_key")
        clash = pc.is_in(keys, value_set=value_set)
        if pc.any(clash).as_py():
            first = pc.filter(keys, clash)[0].as_py()
            raise DatasetError(f"{part} part of {src}: object_key {first} is already used by "
                               f"part {other}")


def _finish_manifest(ds: Dataset, manifest: dict[str, Any], touched: set[str]) -> None:
    """Drop the touched sources' replaced files; recount the touched sources; totals."""
    live = {rel for src in touched
            for rel in [manifest["sources"][src].get("images"),
                        manifest["sources"][src].get("regions"),
                        *manifest["sources"][src].get("parts", {}).values()] if rel}
    for rel in [r for r, m in manifest["files"].items() if m.get("source") in touched]:
        if rel not in live:
            del manifest["files"][rel]
    view = _view(ds, manifest)
    new = {src: source_counts(view, src) for src in sorted(touched)}
    for src, c in new.items():
        manifest["sources"][src]["counts"] = c
    manifest["counts"] = update_totals(manifest["counts"], new)
    manifest["updated"] = now()
    manifest["mfcurate_version"] = __version__


def _remove_unlisted(ds: Dataset, touched: set[str]) -> None:
    """Delete files of the touched sources that the manifest no longer lists.

    Also empty partition folders and stale temporaries; only the touched sources' folders
    are listed, so the cost does not grow with the number of sources.
    """
    listed = set(ds.manifest["files"])
    for sub in ("objects", "images", "regions"):
        for src in touched:
            folder = ds.root / sub / f"source={src}"
            if not folder.is_dir():
                continue
            remove_stale_temporaries(folder)
            for p in folder.glob("*.parquet"):
                if p.relative_to(ds.root).as_posix() not in listed:
                    p.unlink(missing_ok=True)
            if not any(folder.iterdir()):
                folder.rmdir()
    for p in ds.root.glob(f".{MANIFEST}.*.tmp"):
        p.unlink(missing_ok=True)
