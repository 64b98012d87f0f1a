"""The upload set of a release (``mfcurate publish --dry-run``).

Layout of the package folder (everything except ``.publish/`` is uploaded)::

    OUT/
      images.parquet, objects.parquet             # the tables (mfcurate schema)
      regions.parquet                             # if any released image has region polygons
      crops-index.parquet                         # with crops: one row per crop
      crops-000.tar, ...                          # with crops: PNG crops + masks, sharded
      images-<source>-000.tar, ...                # with images: the source image files
      croissant.json  DATASHEET.md  CITATION.cff
      manifest.json                               # md5 + sha256 + bytes of every file
      .publish/deposit.json                       # the merged Zenodo deposit metadata
      .publish/state.json                         # the deposit's resumable state

The layout is flat because a Zenodo record has no folders: file names are the record's keys and
the ``contentUrl`` of ``croissant.json``. Archives are uncompressed tar shards of at most
``max_archive_bytes``; the whole set must stay within Zenodo's limits (100 files, 50 GB per
record) or the build stops before writing anything large. The folder is built beside ``OUT``
(``.OUT.<random>.tmp``) and swapped in at the end (:func:`mfcurate.dataset.atomic_folder`), so
a failed or killed build leaves a previous package (and its deposit state) as it was; the next
build deletes a killed one's folder, or puts back a package a kill left moved aside.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mfcurate import __version__
from mfcurate.dataset import (
    MANIFEST,
    Dataset,
    Selection,
    as_selection,
    atomic_folder,
    atomic_write_bytes,
    atomic_write_json,
    recover_folder,
    remove_temporaries_of,
    select_images,
    select_regions,
    write_parquet_atomic,
)
from mfcurate.errors import MfcurateError
from mfcurate.export.parquet_export import write_tables
from mfcurate.publish.citation import build_citation
from mfcurate.publish.croissant import build_croissant, validate_croissant
from mfcurate.publish.datasheet import build_datasheet
from mfcurate.publish.licenses import Resolution, resolve_license
from mfcurate.publish.metadata import check_deposit_metadata, merge_metadata
from mfcurate.regions import count_by_class
from mfcurate.report.stats import IMG_COLS, OBJ_COLS, DatasetStats, stats_from_tables
from mfcurate.schemas.tables import REGIONS_SCHEMA

PACKAGE_MANIFEST = "manifest.json"
REGIONS_FILE = "regions.parquet"
PACKAGE_FORMAT = "mfcurate-publish-package"
STATE_DIR = ".publish"
ZENODO_MAX_FILES = 100
ZENODO_MAX_RECORD_BYTES = 50 * 10**9


class PackageError(MfcurateError, ValueError):
    """The package cannot be built within the limits, or a packaged file is corrupt."""


def file_digests(path: Path, chunk: int = 1 << 20) -> tuple[str, str, int]:
    """``(md5_hex, sha256_hex, bytes)`` of a file, read once in chunks."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    n = 0
    with path.open("rb") as f:
        while block := f.read(chunk):
            md5.update(block)
            sha.update(block)
            n += len(block)
    return md5.hexdigest(), sha.hexdigest(), n


def plan_shards(items: Sequence[tuple[str, Path, int]], max_bytes: int
                ) -> list[list[tuple[str, Path, int]]]:
    """Group ``(arcname, path, size)`` items, in order, into shards of at most ``max_bytes``.

    A single item larger than ``max_bytes`` gets a shard of its own.  Tar overhead is
    counted conservatively (a header and a PAX header per member, block padding, and the
    10 KiB end-of-archive record), so a shard's file never exceeds ``max_bytes``.
    """
    shards: list[list[tuple[str, Path, int]]] = []
    cur: list[tuple[str, Path, int]] = []
    size = 0
    budget = max_bytes - 10240
    for it in items:
        need = 1536 + ((it[2] + 511) // 512) * 512
        if cur and size + need > budget:
            shards.append(cur)
            cur, size = [], 0
        cur.append(it)
        size += need
    if cur:
        shards.append(cur)
    return shards


def _write_tar(path: Path, members: Sequence[tuple[str, Path, int]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, p, _ in members:
            tar.add(p, arcname=arcname, recursive=False)
    tmp.replace(path)


@dataclass
class PackageResult:
    """What :func:`build_package` made.

    Attributes:
        out_dir: the package folder.
        files: manifest entries (``path``, ``kind``, ``bytes``, ``md5``, ``sha256``).
        license: SPDX id of the release licence.
        deposit_metadata: the merged Zenodo metadata (also in ``.publish/deposit.json``).
        problems: metadata problems that would stop a real publish (fine for a dry run).
        warnings: licence and validator warnings.
        reused: True when an identical package already existed and was kept.
    """

    out_dir: Path
    files: list[dict[str, Any]]
    license: str
    deposit_metadata: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reused: bool = False

    @property
    def total_bytes(self) -> int:
        """Sum of all file sizes (manifest.json included)."""
        return sum(int(f["bytes"]) for f in self.files) + \
            (self.out_dir / PACKAGE_MANIFEST).stat().st_size


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "dataset"


@dataclass
class _Release:
    """What the steps of one :func:`build_package` call share.

    Attributes:
        ds: the dataset.
        build: the folder being built (swapped in for ``OUT`` at the end).
        selection: the checked selection of images/objects to release.
        version: release version.
        title: release title.
        creators: Zenodo creators (``{"name": ..., ...}``).
        user_md: the publisher's deposit fields.
        res: the licence resolution.
        stats: statistics of the released tables.
        summary: ``stats.summary()``.
        deposit_md: the merged Zenodo deposit metadata.
        entries: manifest entries so far (``path``, ``kind``; digests once written).
        say: progress messages.
        regions: per source and class counts of ``regions.parquet``
            (:func:`mfcurate.regions.count_by_class`); empty when it is not packaged.
    """

    ds: Dataset
    build: Path
    selection: Selection
    version: str
    title: str
    creators: list[Any]
    user_md: dict[str, Any]
    res: Resolution
    stats: DatasetStats
    summary: dict[str, Any]
    deposit_md: dict[str, Any]
    entries: list[dict[str, Any]]
    say: Callable[[str], None]
    regions: list[dict[str, Any]] = field(default_factory=list)


_ShardJob = tuple[str, str, list[list[tuple[str, Path, int]]]]  # (prefix, content, shards)


def _fingerprint(ds: Dataset, options: Mapping[str, Any]) -> str:
    """sha256 hex of the dataset's manifest and the build options (reuse key)."""
    return hashlib.sha256(
        (ds.root / MANIFEST).read_bytes() + json.dumps(options, sort_keys=True,
                                                        default=str).encode()).hexdigest()


def _write_tables(ds: Dataset, build: Path, flt: Selection, *, res: Resolution,
                  user_md: dict[str, Any], version: str, title: str, creators: list[Any],
                  say: Callable[[str], None]) -> _Release:
    """Write the tables; compute statistics and metadata.

    ``images.parquet`` and ``objects.parquet`` always; ``regions.parquet`` (the region polygons
    of the released images only) when any of them has regions.
    """
    say("writing tables")
    write_tables(ds, build, flt)
    regions = select_regions(ds, flt, images=pq.read_table(build / "images.parquet",
                                                           columns=["image_key", "source"]))
    stats = stats_from_tables(pq.read_table(build / "images.parquet",
                                            columns=IMG_COLS),
                              [pq.read_table(build / "objects.parquet",
                                             columns=OBJ_COLS)],
                              {k: ds.source_info(k) for k in ds.sources})
    summary = stats.summary()
    deposit_md = merge_metadata(user_md, resolution=res, sources=stats.sources,
                                summary=summary, version=version)
    entries: list[dict[str, Any]] = [{"path": "images.parquet", "kind": "table"},
                                     {"path": "objects.parquet", "kind": "table"}]
    if regions.num_rows:  # a dataset without regions packages as before
        write_parquet_atomic(build / REGIONS_FILE, [regions], REGIONS_SCHEMA)
        entries.append({"path": REGIONS_FILE, "kind": "table"})
    return _Release(ds, build, flt, version, title, creators, user_md, res, stats, summary,
                    deposit_md, entries, say, count_by_class(regions))


def _plan_archives(rel: _Release, *, include_crops: bool, crop_size: int,
                   include_images: bool, max_archive_bytes: int) -> list[_ShardJob]:
    """Cut the crops (into ``.publish/crops``) and plan the tar shards of crops and images.

    Adds ``crops-index.parquet`` to ``rel.entries`` when cropping; images are sharded per
    source, only files that exist.
    """
    ds, build, flt = rel.ds, rel.build, rel.selection
    shard_jobs: list[_ShardJob] = []
    if include_crops:
        from mfcurate.export.crops import export_crops

        rel.say("cutting crops")
        work = build / STATE_DIR / "crops"
        export_crops(ds, work, size_px=crop_size, selection=flt)
        shutil.move(str(work / "crops" / "index.parquet"), build / "crops-index.parquet")
        rel.entries.append({"path": "crops-index.parquet", "kind": "table"})
        items = [(p.relative_to(work).as_posix(), p, p.stat().st_size)
                 for p in sorted((work / "crops").rglob("*.png"))]
        shard_jobs.append(("crops", "crops", plan_shards(items, max_archive_bytes)))
    if include_images:
        for src in sorted(rel.stats.sources):
            rows = select_images(ds, replace(flt, sources=(src,))).to_pylist()
            items = []
            for r in rows:
                p = ds.image_path(r)
                if p.exists():
                    items.append((f"{src}/{r['path']}", p, p.stat().st_size))
            shard_jobs.append((f"images-{_slug(src)}", "images",
                               plan_shards(items, max_archive_bytes)))
    return shard_jobs


def _check_limits(rel: _Release, shard_jobs: Sequence[_ShardJob], *, max_files: int,
                  max_record_bytes: int, max_archive_bytes: int) -> None:
    """Stop before packing when the release would exceed the file-count or size limit.

    Raises:
        PackageError: too many files (tables + shards + 3 documents + manifest) or bytes.
    """
    entries = rel.entries
    n_files = len(entries) + sum(len(s) for _, _, s in shard_jobs) + 4  # + docs, manifest
    if n_files > max_files:
        raise PackageError(f"the release would have {n_files} files, over the limit of "
                           f"{max_files} per record; raise --archive-size (now "
                           f"{max_archive_bytes:,} bytes)")
    planned = sum(it[2] for _, _, shards in shard_jobs for s in shards for it in s) + \
        sum((rel.build / e["path"]).stat().st_size for e in entries)
    if planned > max_record_bytes:
        raise PackageError(f"the release would hold {planned:,} bytes, over the limit of "
                           f"{max_record_bytes:,} per record; publish sources separately "
                           "(--source) or leave out images")


def _pack_archives(rel: _Release, shard_jobs: Sequence[_ShardJob]) -> None:
    """Write the tar shards (``<prefix>-000.tar``...) and digest every entry so far."""
    for prefix, content, shards in shard_jobs:
        for i, members in enumerate(shards):
            name = f"{prefix}-{i:03d}.tar"
            rel.say(f"packing {name} ({len(members)} files)")
            _write_tar(rel.build / name, members)
            rel.entries.append({"path": name, "kind": "archive", "content": content,
                                "members": "**/*.png" if content == "crops" else "**/*"})
    for e in rel.entries:
        e["md5"], e["sha256"], e["bytes"] = file_digests(rel.build / e["path"])


def _write_documents(rel: _Release) -> list[str]:
    """Write ``croissant.json``, ``DATASHEET.md`` and ``CITATION.cff`` and add their entries.

    Returns:
        the licence warnings followed by the Croissant validator's.
    """
    build, res, sources, md = rel.build, rel.res, rel.stats.sources, rel.deposit_md
    today = dt.date.today().isoformat()
    cite_as = "; ".join([f"{rel.title} (version {rel.version})"] +
                        [str(v.get("citation", "")) for v in sources.values()])
    croissant = build_croissant(
        name=_slug(rel.title), description=re.sub(r"<[^>]+>", " ", md["description"]),
        url=str(rel.user_md.get("url") or "https://zenodo.org/"),
        license_url=res.license.url, creators=rel.creators, date_published=today,
        version=rel.version, cite_as=cite_as, files=rel.entries, keywords=md["keywords"],
        rai={"dataCollection": "Derived from public mitotic-figure datasets (see "
                               "DATASHEET.md); masks made as listed under mask_origin.",
             "personalSensitiveInformation": "None: de-identified histology images from "
                                             "public datasets; no patient data."})
    atomic_write_json(build / "croissant.json", croissant)
    warnings = list(res.warnings) + validate_croissant(build / "croissant.json")
    atomic_write_bytes(build / "DATASHEET.md", build_datasheet(
        title=rel.title, version=rel.version, stats=rel.stats, resolution=res,
        files=rel.entries, description=str(rel.user_md.get("description") or ""),
        regions=rel.regions).encode())
    atomic_write_bytes(build / "CITATION.cff", build_citation(
        title=rel.title, version=rel.version, date_released=today,
        license_spdx=res.license.spdx, creators=rel.creators, sources=sources,
        keywords=md["keywords"]).encode())
    for name, kind in (("croissant.json", "metadata"), ("DATASHEET.md", "metadata"),
                       ("CITATION.cff", "metadata")):
        md5, sha, n = file_digests(build / name)
        rel.entries.append({"path": name, "kind": kind, "md5": md5, "sha256": sha, "bytes": n})
    return warnings


def _write_manifest(rel: _Release, fingerprint: str) -> list[dict[str, Any]]:
    """Write ``manifest.json`` and ``.publish/deposit.json``; return the sorted entries."""
    files_sorted = sorted(rel.entries, key=lambda e: str(e["path"]))
    summary = rel.summary
    manifest: dict[str, Any] = {
        "format": PACKAGE_FORMAT, "mfcurate_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "fingerprint": fingerprint, "dataset": str(rel.ds.root), "version": rel.version,
        "title": rel.title, "license": rel.res.license.spdx,
        "sources": {k: {f: v.get(f) for f in ("name", "citation", "doi", "license",
                                              "homepage", "counts")}
                    for k, v in sorted(rel.stats.sources.items())},
        "counts": summary | {"area_um2": summary["area_um2"]},
        "files": files_sorted,
    }
    atomic_write_json(rel.build / PACKAGE_MANIFEST, manifest)
    atomic_write_json(rel.build / STATE_DIR / "deposit.json", rel.deposit_md)
    return files_sorted


def _assemble(rel: _Release, fingerprint: str, *, include_crops: bool, crop_size: int,
              include_images: bool, max_archive_bytes: int, max_files: int,
              max_record_bytes: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Everything after the tables: archives (within the limits), documents, manifest.

    Returns:
        ``(files, warnings)``: the manifest entries sorted by path, and the licence and
        Croissant validator warnings.
    """
    shard_jobs = _plan_archives(rel, include_crops=include_crops, crop_size=crop_size,
                                include_images=include_images,
                                max_archive_bytes=max_archive_bytes)
    _check_limits(rel, shard_jobs, max_files=max_files, max_record_bytes=max_record_bytes,
                  max_archive_bytes=max_archive_bytes)
    _pack_archives(rel, shard_jobs)
    warnings = _write_documents(rel)
    shutil.rmtree(rel.build / STATE_DIR / "crops", ignore_errors=True)
    return _write_manifest(rel, fingerprint), warnings


def build_package(
    dataset: Dataset | Path | str,
    out_dir: Path | str,
    *,
    version: str = "1.0.0",
    license: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    include_crops: bool = False,
    crop_size: int = 128,
    include_images: bool = False,
    max_archive_bytes: int = 10 * 10**9,
    max_files: int = ZENODO_MAX_FILES,
    max_record_bytes: int = ZENODO_MAX_RECORD_BYTES,
    filters: Mapping[str, Any] | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] | None = None,
) -> PackageResult:
    """Build (or reuse) the upload set of a dataset in ``out_dir``.

    Args:
        dataset: a :class:`Dataset` or its folder.
        out_dir: package folder.
        version: release version (semver recommended).
        license: upward-only licence override (``--license``).
        metadata: the publisher's deposit fields (title, creators, description...).
        include_crops: add PNG crops (+ masks) around objects as tar shards.
        crop_size: crop side in level-0 px.
        include_images: add the source image files as tar shards (mind the sources' terms).
        max_archive_bytes: largest tar shard.
        max_files: Zenodo's file limit per record.
        max_record_bytes: Zenodo's size limit per record.
        filters: selection options (see :meth:`~mfcurate.dataset.Selection.from_options`).
        rebuild: rebuild even if an identical package exists.
        log: optional progress messages.

    Returns:
        The :class:`PackageResult`.

    Raises:
        PackageError: the release would exceed the file-count or size limit.
        LicenseError: the sources' licences cannot be combined.

    Builds writing the same ``out_dir`` must not overlap in time (each starts by deleting
    the build folders it finds beside ``out_dir``).
    """
    say = log or (lambda _m: None)
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    out = Path(out_dir)
    user_md = dict(metadata or {})
    options = {"version": version, "license": license, "metadata": user_md,
               "include_crops": include_crops, "crop_size": crop_size,
               "include_images": include_images, "max_archive_bytes": max_archive_bytes,
               "filters": dict(filters or {})}
    fingerprint = _fingerprint(ds, options)
    recover_folder(out)  # what a killed build left beside OUT
    remove_temporaries_of(out / STATE_DIR / "state.json")  # ... or a killed deposit in it
    existing = _existing(out, fingerprint)
    if existing is not None and not rebuild:
        say(f"package in {out} is up to date; reusing it")
        return existing
    flt = as_selection(None, **dict(filters or {})).check(ds)
    if not ds.sources:
        raise PackageError(f"{ds.root}: the dataset is empty; ingest a source first")
    res = resolve_license({k: str(ds.source_info(k).get("license", "unknown"))
                           for k in (flt.sources or ds.sources)}, license)
    title = str(user_md.get("title") or f"mfcurate mitotic-figure nuclei dataset {version}")
    creators = list(user_md.get("creators") or [])
    with atomic_folder(out) as build:
        rel = _write_tables(ds, build, flt, res=res, user_md=user_md, version=version,
                            title=title, creators=creators, say=say)
        files_sorted, warnings = _assemble(
            rel, fingerprint, include_crops=include_crops, crop_size=crop_size,
            include_images=include_images, max_archive_bytes=max_archive_bytes,
            max_files=max_files, max_record_bytes=max_record_bytes)
        _keep_state(out, build)
    return PackageResult(out, files_sorted, rel.res.license.spdx, rel.deposit_md,
                         problems=check_deposit_metadata(rel.deposit_md), warnings=warnings)


def _keep_state(out: Path, build: Path) -> None:
    """Copy an existing deposit state of ``out`` into the new package ``build``."""
    old_state = out / STATE_DIR / "state.json"
    if old_state.exists():
        (build / STATE_DIR).mkdir(exist_ok=True)
        shutil.copy2(old_state, build / STATE_DIR / "state.json")


def load_package(out_dir: Path | str) -> dict[str, Any]:
    """Read a package's ``manifest.json``."""
    p = Path(out_dir) / PACKAGE_MANIFEST
    try:
        m = json.loads(p.read_text())
    except FileNotFoundError:
        raise PackageError(f"{p.parent}: no package here (run `mfcurate publish --dry-run`)"
                           ) from None
    except json.JSONDecodeError as exc:
        raise PackageError(f"{p}: invalid JSON ({exc})") from None
    if m.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{p}: not an mfcurate publish package manifest")
    return dict(m)


def verify_package(out_dir: Path | str) -> list[str]:
    """Check every packaged file against its md5/sha256/size; return the problems."""
    out = Path(out_dir)
    problems = []
    for e in load_package(out)["files"]:
        p = out / e["path"]
        if not p.exists():
            problems.append(f"{e['path']}: missing")
            continue
        md5, sha, n = file_digests(p)
        if (md5, sha, n) != (e["md5"], e["sha256"], e["bytes"]):
            problems.append(f"{e['path']}: checksum or size differs from manifest.json")
    return problems


def _existing(out: Path, fingerprint: str) -> PackageResult | None:
    try:
        m = load_package(out)
    except PackageError:
        return None
    if m.get("fingerprint") != fingerprint or verify_package(out):
        return None
    dep = out / STATE_DIR / "deposit.json"
    md = json.loads(dep.read_text()) if dep.exists() else {}
    return PackageResult(out, m["files"], m["license"], md,
                         problems=check_deposit_metadata(md), reused=True)
