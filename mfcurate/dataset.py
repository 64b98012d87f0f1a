"""An mfcurate dataset on disk: Parquet tables plus a manifest, committed atomically.

Layout of a dataset folder::

    DATASET/
      manifest.json                         # the commit point (see below)
      images.parquet                        # all images, every source
      objects/source=<key>/<part>-<id>.parquet   # objects, partitioned by source and part
      .work/                                # per-image intermediate results of pipelines

``manifest.json`` lists every live data file with its sha256, size and row count, the
sources with their citation, licence and root, and the counts.  Readers only read files the
manifest lists, and a commit writes new files under fresh names, then replaces
``images.parquet`` and ``manifest.json`` by ``os.replace`` (each atomic), and only then
deletes files no longer listed.  A failed or killed write therefore leaves the dataset as it
was (at worst with an unlisted stray file that the next commit removes).

A source's objects are stored as named *parts*: ``ingest`` (what the adapter read) and
whatever later steps add (``harvest``, ``phh3`` ...).  Re-ingesting a source replaces all of
its parts, since derived parts refer to annotations that may have changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mfcurate import __version__
from mfcurate.errors import DatasetError
from mfcurate.schemas.tables import (
    IMAGES_SCHEMA,
    OBJECTS_SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    conform,
)
from mfcurate.schemas.validate import validate_images, validate_objects

MANIFEST = "manifest.json"
IMAGES_FILE = "images.parquet"
FORMAT_NAME = "mfcurate-dataset"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (pretty, UTF-8)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def write_parquet_atomic(path: Path, tables: Iterable[pa.Table], schema: pa.Schema) -> int:
    """Stream tables into one Parquet file at ``path`` atomically; return the row count.

    The schema (with its version metadata) is written to the file; memory holds one input
    table at a time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for t in tables:
                if t.num_rows == 0:
                    continue
                writer.write_table(conform(t, schema))
                rows += t.num_rows
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def read_parquet(path: Path, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet table and conform it to ``schema`` (checks the schema version)."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(SCHEMA_VERSION_KEY, b"").decode()
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise DatasetError(f"{path}: schema version {version or 'missing'} is not "
                           f"compatible with {SCHEMA_VERSION}")
    table = pf.read(columns=list(columns) if columns else None)
    if columns:
        return table
    return conform(table, schema)


class Dataset:
    """A dataset folder.  Open with :meth:`open` (or :meth:`create`).

    Args:
        root: the dataset folder.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.manifest: dict[str, Any] = self._load_manifest()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: Path | str, *, create: bool = False) -> Dataset:
        """Open an existing dataset, or create an empty one when ``create`` is true.

        Raises:
            DatasetError: the folder is not a dataset (and ``create`` is false).
        """
        root = Path(root)
        if not (root / MANIFEST).exists():
            if not create:
                if not root.exists():
                    raise DatasetError(f"{root}: dataset folder does not exist")
                raise DatasetError(f"{root}: not an mfcurate dataset (no {MANIFEST})")
            if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
                raise DatasetError(f"{root}: folder exists and is not an mfcurate dataset; "
                                   "choose an empty or new folder")
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(root / MANIFEST, _empty_manifest())
        return cls(root)

    def _load_manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise DatasetError(f"{self.root}: not an mfcurate dataset (no {MANIFEST})") from exc
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON ({exc})") from exc
        if manifest.get("format") != FORMAT_NAME:
            raise DatasetError(f"{path}: not an mfcurate manifest")
        return dict(manifest)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for writers (one commit at a time, across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self.manifest = self._load_manifest()
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading
    @property
    def sources(self) -> list[str]:
        """Source keys present in the dataset, sorted."""
        return sorted(self.manifest["sources"])

    def source_info(self, source: str) -> dict[str, Any]:
        """Manifest entry of a source (citation, licence, root, parts, counts)."""
        try:
            return dict(self.manifest["sources"][source])
        except KeyError as exc:
            raise DatasetError(f"{self.root}: source {source!r} is not in the dataset "
                               f"(has {self.sources})") from exc

    def source_root(self, source: str) -> Path:
        """Folder the source was ingested from (image paths are relative to it)."""
        return Path(self.source_info(source)["root"])

    def image_path(self, image_row: Mapping[str, Any]) -> Path:
        """Absolute path of an image given its ``images`` row."""
        return self.source_root(str(image_row["source"])) / str(image_row["path"])

    def images(self, sources: Sequence[str] | None = None,
               columns: Sequence[str] | None = None) -> pa.Table:
        """The ``images`` table (optionally only some sources / columns)."""
        path = self.root / IMAGES_FILE
        if not path.exists():
            t = IMAGES_SCHEMA.empty_table()
        else:
            t = read_parquet(path, IMAGES_SCHEMA)
        if sources is not None:
            import pyarrow.compute as pc

            t = t.filter(pc.is_in(t.column("source"), value_set=pa.array(list(sources))))
        return t.select(list(columns)) if columns else t

    def object_files(self, sources: Sequence[str] | None = None,
                     parts: Sequence[str] | None = None) -> list[Path]:
        """Live object Parquet files, in source then part order."""
        out = []
        for key in self.sources:
            if sources is not None and key not in sources:
                continue
            for part, rel in sorted(self.manifest["sources"][key].get("parts", {}).items()):
                if parts is None or part in parts:
                    out.append(self.root / rel)
        return out

    def iter_objects(self, sources: Sequence[str] | None = None,
                     columns: Sequence[str] | None = None,
                     parts: Sequence[str] | None = None,
                     batch_size: int = 65536) -> Iterator[pa.Table]:
        """Stream the ``objects`` table in batches (memory bounded by ``batch_size``)."""
        for path in self.object_files(sources, parts):
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=batch_size,
                                         columns=list(columns) if columns else None):
                t = pa.Table.from_batches([batch])
                yield t if columns else conform(t, OBJECTS_SCHEMA)

    def objects(self, sources: Sequence[str] | None = None,
                columns: Sequence[str] | None = None,
                parts: Sequence[str] | None = None) -> pa.Table:
        """The whole ``objects`` table (or a subset) in memory."""
        tables = [read_parquet(p, OBJECTS_SCHEMA, columns)
                  for p in self.object_files(sources, parts)]
        if not tables:
            empty = OBJECTS_SCHEMA.empty_table()
            return empty.select(list(columns)) if columns else empty
        return pa.concat_tables(tables)

    def count_objects(self, sources: Sequence[str] | None = None) -> int:
        """Number of object rows, from the Parquet footers."""
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.object_files(sources))

    # ------------------------------------------------------------------ writing
    def commit_source(
        self,
        source: str,
        images: pa.Table,
        objects: Iterable[pa.Table],
        *,
        info: Mapping[str, Any],
        root: Path | str,
    ) -> dict[str, Any]:
        """Add or replace one source: its images and its ``ingest`` objects.

        Everything is validated before anything becomes visible; rows of other sources are
        untouched; re-ingesting a source replaces exactly its rows (and its derived parts).

        Args:
            source: adapter key.
            images: the source's images (``IMAGES_SCHEMA``).
            objects: the source's objects, as one or more tables (streamed to disk).
            info: citation, licence, name, homepage, doi of the source.
            root: folder the source was read from.

        Returns:
            The manifest entry of the source.
        """
        images = conform(images, IMAGES_SCHEMA)
        validate_images(images)
        if images.num_rows and set(images.column("source").to_pylist()) != {source}:
            raise DatasetError(f"images of source {source!r} carry another source key")
        with self.lock():
            rel = self._new_part_path(source, "ingest")
            path = self.root / rel
            try:
                rows = write_parquet_atomic(
                    path, _validated(objects, images, source), OBJECTS_SCHEMA)
                old = self.images()
                import pyarrow.compute as pc

                keep = old.filter(pc.not_equal(old.column("source"), source))
                new_images = pa.concat_tables([keep, images])
                entry = {
                    "name": info.get("name", source),
                    "citation": info.get("citation", ""),
                    "doi": info.get("doi", ""),
                    "license": info.get("license", "unknown"),
                    "homepage": info.get("homepage", ""),
                    "root": str(Path(root).resolve()),
                    "ingested_at": _now(),
                    "parts": {"ingest": rel},
                }
                self._commit(new_images, {source: entry}, extra_rows={rel: rows})
            except BaseException:
                if path.exists() and rel not in self._listed_files():
                    path.unlink()
                raise
        return self.source_info(source)

    def write_part(self, source: str, part: str, objects: Iterable[pa.Table]) -> Path:
        """Replace (or add) one named part of a source's objects, atomically.

        Used by pipelines: ``refine-masks`` rewrites ``ingest`` with masks, ``harvest``
        writes ``harvest``, ``register-phh3`` writes ``phh3``.  Rows are validated against
        the images table; object keys must stay unique across the source's parts.
        """
        with self.lock():
            if source not in self.manifest["sources"]:
                raise DatasetError(f"{self.root}: source {source!r} is not in the dataset")
            images = self.images(sources=[source])
            rel = self._new_part_path(source, part)
            path = self.root / rel
            try:
                rows = write_parquet_atomic(path, _validated(objects, images, source),
                                            OBJECTS_SCHEMA)
                entry = dict(self.manifest["sources"][source])
                parts = dict(entry.get("parts", {}))
                others = [self.root / r for p, r in parts.items() if p != part]
                new_keys = pq.read_table(path, columns=["object_key"]).column("object_key")
                _check_disjoint(new_keys, others, path)
                parts[part] = rel
                entry["parts"] = parts
                self._commit(self.images(), {source: entry}, extra_rows={rel: rows})
            except BaseException:
                if path.exists() and rel not in self._listed_files():
                    path.unlink()
                raise
        return path

    def remove_part(self, source: str, part: str) -> None:
        """Drop a named part of a source (no-op if absent)."""
        with self.lock():
            entry = dict(self.manifest["sources"].get(source, {}))
            parts = dict(entry.get("parts", {}))
            if part not in parts:
                return
            del parts[part]
            entry["parts"] = parts
            self._commit(self.images(), {source: entry})

    def _new_part_path(self, source: str, part: str) -> str:
        return f"objects/source={source}/{part}-{uuid.uuid4().hex[:12]}.parquet"

    def _listed_files(self) -> set[str]:
        return set(self.manifest.get("files", {}))

    def _commit(self, images: pa.Table, source_entries: Mapping[str, dict[str, Any]],
                extra_rows: Mapping[str, int] | None = None) -> None:
        manifest = json.loads(json.dumps(self.manifest))
        manifest["sources"].update(source_entries)
        write_parquet_atomic(self.root / f"{IMAGES_FILE}.next", [images], IMAGES_SCHEMA)
        files: dict[str, Any] = {}
        old_files = manifest.get("files", {})
        live = [IMAGES_FILE]
        for entry in manifest["sources"].values():
            live.extend(entry.get("parts", {}).values())
        for rel in live:
            disk = self.root / (f"{IMAGES_FILE}.next" if rel == IMAGES_FILE else rel)
            if rel in old_files and rel != IMAGES_FILE:
                files[rel] = old_files[rel]
                continue
            rows = (extra_rows or {}).get(rel)
            if rows is None:
                rows = pq.ParquetFile(disk).metadata.num_rows
            files[rel] = {"sha256": sha256_file(disk), "bytes": disk.stat().st_size,
                          "rows": int(rows)}
        manifest["files"] = files
        manifest["updated"] = _now()
        manifest["mfcurate_version"] = __version__
        manifest["counts"] = _counts(images, self.root, manifest)
        for key, entry in manifest["sources"].items():
            entry["counts"] = manifest["counts"]["by_source"].get(key, {})
        os.replace(self.root / f"{IMAGES_FILE}.next", self.root / IMAGES_FILE)
        atomic_write_json(self.root / MANIFEST, manifest)
        self.manifest = manifest
        self._remove_unlisted()

    def _remove_unlisted(self) -> None:
        listed = self._listed_files()
        obj_root = self.root / "objects"
        if not obj_root.exists():
            return
        for p in obj_root.rglob("*.parquet"):
            if p.relative_to(self.root).as_posix() not in listed:
                p.unlink()
        for d in sorted(obj_root.glob("source=*"), reverse=True):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()

    def verify(self) -> list[str]:
        """Check every listed file against its manifest checksum; return the problems."""
        problems = []
        for rel, meta in self.manifest.get("files", {}).items():
            p = self.root / rel
            if not p.exists():
                problems.append(f"{rel}: missing")
            elif sha256_file(p) != meta["sha256"]:
                problems.append(f"{rel}: checksum mismatch")
        return problems

    @property
    def work_dir(self) -> Path:
        """Folder for per-image intermediate results of pipelines (resumable runs)."""
        return self.root / ".work"


def _validated(objects: Iterable[pa.Table], images: pa.Table, source: str) -> Iterator[pa.Table]:
    for t in objects:
        t = conform(t, OBJECTS_SCHEMA)
        validate_objects(t, images)
        if t.num_rows and set(t.column("source").to_pylist()) != {source}:
            raise DatasetError(f"objects written for source {source!r} carry another source key")
        yield t


def _check_disjoint(new_keys: pa.ChunkedArray, others: Sequence[Path], path: Path) -> None:
    import pyarrow.compute as pc

    if pc.count_distinct(new_keys).as_py() != len(new_keys):
        raise DatasetError(f"{path.name}: duplicate object_key within the part")
    for other in others:
        keys = pq.read_table(other, columns=["object_key"]).column("object_key")
        clash = pc.is_in(new_keys, value_set=pa.concat_arrays(keys.chunks) if keys.num_chunks
                         else pa.array([], pa.string()))
        if pc.any(clash).as_py():
            raise DatasetError(f"{path.name}: object_key already used in {other.name}")


def _counts(images: pa.Table, root: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    import pyarrow.compute as pc

    by_source: dict[str, Any] = {}
    total_objects = 0
    by_label_total: dict[str, int] = {}
    src_col = images.column("source")
    for key, entry in manifest["sources"].items():
        n_images = int(pc.sum(pc.equal(src_col, key)).as_py() or 0)
        labels: dict[str, int] = {}
        n = 0
        rejected = 0
        for rel in entry.get("parts", {}).values():
            disk = root / rel
            if not disk.exists():
                continue
            t = pq.read_table(disk, columns=["label", "qa_state"])
            n += t.num_rows
            live = pc.not_equal(t.column("qa_state"), "rejected")
            rejected += t.num_rows - int(pc.sum(live).as_py() or 0)
            for row in pc.value_counts(t.filter(live).column("label")):
                lab = str(row["values"].as_py())
                labels[lab] = labels.get(lab, 0) + int(row["counts"].as_py())
        total_objects += n
        for lab, c in labels.items():
            by_label_total[lab] = by_label_total.get(lab, 0) + c
        by_source[key] = {"images": n_images, "objects": n, "rejected": rejected,
                          "by_label": labels}
    # by_label counts objects that are not rejected (harvested duplicates of annotations,
    # objects a reviewer rejected); "objects" counts every row.
    return {"images": images.num_rows, "objects": total_objects, "by_label": by_label_total,
            "by_source": by_source}


def _empty_manifest() -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "mfcurate_version": __version__,
        "created": _now(),
        "updated": _now(),
        "sources": {},
        "files": {},
        "counts": {"images": 0, "objects": 0, "by_label": {}, "by_source": {}},
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
