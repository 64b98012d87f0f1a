"""An mfcurate dataset on disk: Parquet tables plus a manifest, committed atomically.

Layout of a dataset folder::

    DATASET/
      manifest.json                                   # the one commit point
      images/source=<key>/images-<id>.parquet         # each source's images
      objects/source=<key>/<part>-<id>.parquet        # each source's parts (see parts.py)
      regions/source=<key>/regions-<id>.parquet       # region polygons (sources that draw them)
      .work/                                          # per-task results of pipelines
      .lock                                           # the writer lock (holder's pid)

Readers read only what ``manifest.json`` lists and check, for every file they open, its size,
row count and that its rows are of the source it is listed under; ``verify`` compares every
checksum.  Writers (:mod:`mfcurate.dataset.commit`) write new files under fresh names, replace
``manifest.json`` alone, then delete what is no longer listed: a failed or killed commit
leaves the dataset as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mfcurate.dataset.files import atomic_write_json, open_parquet, sha256_file
from mfcurate.dataset.manifest import (
    MANIFEST,
    empty_manifest,
    load_manifest,
    manifest_signature,
    writer_lock,
)
from mfcurate.dataset.parts import PartKind, layer_order, part_spec
from mfcurate.dataset.resolve import Layer, needed_columns, resolve
from mfcurate.errors import DatasetError
from mfcurate.schemas.tables import (
    IMAGES_SCHEMA,
    LAYER_SCHEMA,
    OBJECTS_SCHEMA,
    REGIONS_SCHEMA,
    conform,
)


class Dataset:
    """A dataset folder.  Open with :meth:`open`.

    Args:
        root: the dataset folder.
        manifest: an already loaded manifest (internal: commits read their own result).
    """

    def __init__(self, root: Path | str, manifest: Mapping[str, Any] | None = None) -> None:
        self.root = Path(root)
        self._signature = manifest_signature(self.root) if manifest is None else None
        self.manifest: dict[str, Any] = (dict(manifest) if manifest is not None
                                         else load_manifest(self.root))
        self._checked: set[str] = set()
        self._layers: dict[str, list[Layer]] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: Path | str, *, create: bool = False) -> Dataset:
        """Open an existing dataset, or create an empty one when ``create`` is true.

        Raises:
            DatasetError: the folder is not a dataset (and ``create`` is false), or it is
                damaged (see :func:`~mfcurate.dataset.manifest.load_manifest`).
        """
        root = Path(root)
        if not (root / MANIFEST).exists():
            if not create:
                if not root.exists():
                    raise DatasetError(f"{root}: dataset folder does not exist")
                if not root.is_dir():
                    raise DatasetError(f"{root}: is a file, not a dataset folder")
                raise DatasetError(f"{root}: not an mfcurate dataset (no {MANIFEST})")
            _create(root)
        return cls(root)

    def reload(self) -> None:
        """Re-read the manifest if another process committed since it was read.

        The manifest is only ever replaced (``os.replace``), so an unchanged (inode, size,
        mtime) means an unchanged manifest and the re-read is skipped.
        """
        sig = manifest_signature(self.root)
        if sig is not None and sig == self._signature:
            return
        self.manifest = load_manifest(self.root)
        self._signature = sig
        self._checked.clear()
        self._layers.clear()

    def adopt(self, manifest: dict[str, Any], touched: Iterable[str]) -> None:
        """Take the manifest this process just committed (internal: commits)."""
        self.manifest = manifest
        self._signature = manifest_signature(self.root)
        for src in touched:
            self._layers.pop(src, None)

    # ------------------------------------------------------------------ sources
    @property
    def sources(self) -> list[str]:
        """Source keys present in the dataset, sorted."""
        return sorted(self.manifest["sources"])

    def source_info(self, source: str) -> dict[str, Any]:
        """Manifest entry of a source (citation, licence, root, images, parts, counts)."""
        try:
            return dict(self.manifest["sources"][source])
        except KeyError:
            raise DatasetError(f"{self.root}: source {source!r} is not in the dataset "
                               f"(has {', '.join(self.sources) or 'none'})") from None

    def source_root(self, source: str) -> Path:
        """Folder the source was ingested from (image paths are relative to it)."""
        return Path(self.source_info(source)["root"])

    def image_path(self, image_row: Mapping[str, Any]) -> Path:
        """Absolute path of an image given its ``images`` row."""
        return self.source_root(str(image_row["source"])) / str(image_row["path"])

    @property
    def work_dir(self) -> Path:
        """Folder for per-task intermediate results of pipelines (resumable runs)."""
        return self.root / ".work"

    # ------------------------------------------------------------------ files
    def _open(self, rel: str) -> pq.ParquetFile:
        """Open a listed file, checking row count and source partition once per session."""
        path = self.root / rel
        meta = self.manifest["files"].get(rel)
        if meta is None:
            raise DatasetError(f"{path}: not listed in {self.root / MANIFEST}")
        pf = open_parquet(path)
        if rel not in self._checked:
            rows = pf.metadata.num_rows
            if rows != int(meta["rows"]):
                raise DatasetError(f"{path}: {rows} rows, the manifest says {meta['rows']}; the "
                                   "file was replaced outside mfcurate")
            src = meta.get("source")
            if src is not None and "source" in pf.schema_arrow.names and rows:
                found = _column_values(pf, "source")
                if found != {src}:
                    raise DatasetError(f"{path}: holds rows of {sorted(found)} but is listed "
                                       f"under source {src!r}; the file was swapped")
            self._checked.add(rel)
        return pf

    def _read(self, rel: str, schema: pa.Schema, columns: Sequence[str] | None = None
              ) -> pa.Table:
        pf = self._open(rel)
        try:
            t = pf.read(columns=list(columns) if columns else None)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(f"{self.root / rel}: cannot read ({exc})") from exc
        return t if columns else conform(t, schema)

    # ------------------------------------------------------------------ images
    def images(self, sources: Sequence[str] | None = None,
               columns: Sequence[str] | None = None) -> pa.Table:
        """The ``images`` table (optionally only some sources / columns)."""
        tables = []
        for key in self.sources:
            if sources is not None and key not in sources:
                continue
            rel = self.manifest["sources"][key].get("images")
            if rel:
                tables.append(self._read(rel, IMAGES_SCHEMA, None))
        t = pa.concat_tables(tables) if tables else IMAGES_SCHEMA.empty_table()
        return t.select(list(columns)) if columns else t

    # ------------------------------------------------------------------ regions
    def regions(self, source: str | Sequence[str] | None = None) -> pa.Table:
        """The ``regions`` table (region polygons, WKB in level-0 px) of one, some or all sources.

        Sources without regions contribute nothing; the result may be empty.
        """
        wanted = [source] if isinstance(source, str) else source
        tables = []
        for key in self.sources:
            if wanted is not None and key not in wanted:
                continue
            rel = self.manifest["sources"][key].get("regions")
            if rel:
                tables.append(self._read(rel, REGIONS_SCHEMA, None))
        return pa.concat_tables(tables) if tables else REGIONS_SCHEMA.empty_table()

    # ------------------------------------------------------------------ parts
    def parts(self, source: str) -> dict[str, str]:
        """``part name -> file`` of a source."""
        return dict(self.source_info(source).get("parts", {}))

    def part_path(self, source: str, part: str) -> Path | None:
        """File of one part (None when the source has no such part)."""
        rel = self.parts(source).get(part)
        return None if rel is None else self.root / rel

    def part(self, source: str, part: str, columns: Sequence[str] | None = None) -> pa.Table:
        """One part's rows as stored (base: ``OBJECTS_SCHEMA``; layer: ``LAYER_SCHEMA``).

        An absent part gives an empty table of its schema.
        """
        schema = OBJECTS_SCHEMA if part_spec(part).kind is PartKind.BASE else LAYER_SCHEMA
        rel = self.parts(source).get(part)
        if rel is None:
            t = schema.empty_table()
            return t.select(list(columns)) if columns else t
        return self._read(rel, schema, columns)

    def layer(self, source: str, part: str) -> pa.Table:
        """A layer part of a source (``LAYER_SCHEMA``; empty when absent)."""
        if part_spec(part).kind is not PartKind.LAYER:
            raise DatasetError(f"part {part!r} is not a layer")
        return self.part(source, part)

    def base_parts(self, source: str) -> list[str]:
        """Base part names of a source, sorted."""
        return sorted(p for p in self.parts(source) if part_spec(p).kind is PartKind.BASE)

    def layers(self, source: str, exclude: Iterable[str] = ()) -> list[Layer]:
        """The source's layers in ascending precedence, without the ``exclude`` parts."""
        skip = set(exclude)
        if source not in self._layers:
            names = layer_order(list(self.parts(source)))
            self._layers[source] = [(part_spec(n), self.part(source, n)) for n in names]
        return [(s, t) for s, t in self._layers[source] if s.name not in skip]

    # ------------------------------------------------------------------ objects
    def iter_objects(self, sources: Sequence[str] | None = None,
                     columns: Sequence[str] | None = None, *,
                     exclude_parts: Iterable[str] = (), parts: Iterable[str] | None = None,
                     batch_size: int = 65536) -> Iterator[pa.Table]:
        """Stream the effective ``objects`` rows in batches (see :mod:`.parts`).

        Args:
            sources: only these sources (default all).
            columns: only these columns (default every ``objects`` column).
            exclude_parts: leave these parts out (a step reading the dataset without its own
                parts, so its rerun does not see its previous result).
            parts: read only the objects of these base parts (layers still apply).
            batch_size: rows per batch (memory bound, besides each source's layers).
        """
        skip = set(exclude_parts)
        only = None if parts is None else set(parts)
        read_cols = needed_columns(columns)
        for key in self.sources:
            if sources is not None and key not in sources:
                continue
            layers = self.layers(key, skip)
            for part in self.base_parts(key):
                if part in skip or (only is not None and part not in only):
                    continue
                pf = self._open(self.parts(key)[part])
                for batch in pf.iter_batches(batch_size=batch_size, columns=read_cols):
                    t = pa.Table.from_batches([batch])
                    if read_cols is None:
                        t = conform(t, OBJECTS_SCHEMA)
                    yield resolve(t, layers, columns)

    def objects(self, sources: Sequence[str] | None = None,
                columns: Sequence[str] | None = None, *,
                exclude_parts: Iterable[str] = (), parts: Iterable[str] | None = None
                ) -> pa.Table:
        """The effective ``objects`` table (or a subset) in memory (see :meth:`iter_objects`)."""
        tables = list(self.iter_objects(sources, columns, exclude_parts=exclude_parts,
                                        parts=parts))
        if tables:
            return pa.concat_tables(tables)
        empty = OBJECTS_SCHEMA.empty_table()
        return empty.select(list(columns)) if columns else empty

    def count_objects(self, sources: Sequence[str] | None = None) -> int:
        """Number of objects (base rows, rejected included), from the manifest."""
        return sum(int(self.manifest["files"][rel]["rows"])
                   for key in self.sources if sources is None or key in sources
                   for p, rel in self.parts(key).items()
                   if part_spec(p).kind is PartKind.BASE)

    # ------------------------------------------------------------------ checks
    def verify(self) -> list[str]:
        """Full check: every listed file's checksum, rows and partition; the problems found."""
        problems = []
        for rel, meta in self.manifest["files"].items():
            p = self.root / rel
            if not p.exists():
                problems.append(f"{rel}: missing")
                continue
            if sha256_file(p) != meta["sha256"]:
                problems.append(f"{rel}: checksum mismatch")
                continue
            try:
                self._checked.discard(rel)
                self._open(rel)
            except DatasetError as exc:
                problems.append(str(exc))
        return problems

    # ------------------------------------------------------------------ writing
    def lock(self, wait: bool = True) -> Any:
        """Context manager: the exclusive writer lock; reloads the manifest on entry."""
        return _Locked(self, wait)

    def commit_source(self, source: str, images: pa.Table, objects: Iterable[pa.Table], *,
                      info: Mapping[str, Any], root: Path | str,
                      regions: pa.Table | None = None) -> dict[str, Any]:
        """Add or replace one source: images, ``ingest`` part, regions (see commit.py)."""
        from mfcurate.dataset.commit import commit_source

        return commit_source(self, source, images, objects, info=info, root=root,
                             regions=regions)

    def write_parts(self, parts: Mapping[tuple[str, str], Iterable[pa.Table]], *,
                    images: Mapping[str, pa.Table] | None = None,
                    remove: Iterable[tuple[str, str]] = ()) -> None:
        """Replace several parts (and images tables) in one atomic commit (see commit.py)."""
        from mfcurate.dataset.commit import Commit, apply_commit

        apply_commit(self, Commit(parts=dict(parts), images=dict(images or {}),
                                  remove=set(remove)))

    def write_part(self, source: str, part: str, objects: Iterable[pa.Table]) -> Path:
        """Replace (or add) one part of a source atomically; return its file."""
        self.write_parts({(source, part): objects})
        return self.root / self.parts(source)[part]

    def write_layers(self, tables: Mapping[str, pa.Table], part: str = "labels") -> None:
        """Replace the ``part`` layer of each given source (one commit)."""
        self.write_parts({(src, part): [t] for src, t in tables.items()})

    def remove_part(self, source: str, part: str) -> None:
        """Drop a named part of a source (no-op if absent)."""
        if part in self.manifest["sources"].get(source, {}).get("parts", {}):
            self.write_parts({}, remove=[(source, part)])

    def update_images(self, images: Mapping[str, pa.Table]) -> None:
        """Replace the images tables of some sources (same keys; e.g. duplicate marks)."""
        self.write_parts({}, images=images)


class _Locked:
    def __init__(self, ds: Dataset, wait: bool) -> None:
        self.ds = ds
        self.cm = writer_lock(ds.root, wait)

    def __enter__(self) -> Dataset:
        self.cm.__enter__()
        try:
            self.ds.reload()
        except BaseException:
            self.cm.__exit__(None, None, None)
            raise
        return self.ds

    def __exit__(self, *exc: Any) -> None:
        self.cm.__exit__(*exc)


def _column_values(pf: pq.ParquetFile, name: str) -> set[str]:
    """Distinct values of a string column, from row-group statistics when they are exact."""
    idx = pf.schema_arrow.get_field_index(name)
    values: set[str] = set()
    for g in range(pf.metadata.num_row_groups):
        st = pf.metadata.row_group(g).column(idx).statistics
        if st is None or not st.has_min_max:
            col = pf.read_row_group(g, columns=[name]).column(0)
            values.update(str(v) for v in pc.unique(col).to_pylist())
        else:
            values.update({str(st.min), str(st.max)})
    return values


def _create(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root}: is a file, not a dataset folder")
    if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise DatasetError(f"{root}: folder exists and is not an mfcurate dataset; "
                           "choose an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MANIFEST, empty_manifest())
