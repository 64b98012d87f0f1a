"""``manifest.json``: the one commit point of a dataset, its checks and its writer lock.

The manifest lists every live data file (relative path -> sha256, bytes, rows, kind, source,
part), the sources (citation, licence, root, their images and regions files and parts,
counts) and the
totals.  A file that is not listed does not exist for readers; a listed file that is missing,
has another size, another row count or rows of another source makes the dataset unreadable
(:class:`~mfcurate.errors.DatasetError`) until it is repaired — no command reads or writes a
dataset whose manifest promises what the disk does not hold.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mfcurate import __version__
from mfcurate.errors import DatasetError
from mfcurate.schemas.tables import SCHEMA_VERSION

MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT_NAME = "mfcurate-dataset"
#: Layout version of the dataset folder (images per source, layer parts).
FORMAT_VERSION = 2


def now() -> str:
    """UTC time stamp, seconds resolution, ISO 8601."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def empty_manifest() -> dict[str, Any]:
    """The manifest of a new, empty dataset."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "mfcurate_version": __version__,
        "created": now(),
        "updated": now(),
        "sources": {},
        "files": {},
        "counts": {"images": 0, "objects": 0, "rejected": 0, "by_label": {}, "by_source": {}},
    }


def _version_tuple(v: str) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in [*v.split("."), "0"][:2])
    except ValueError:
        return (-1, -1)
    return major, minor


def manifest_signature(root: Path) -> tuple[int, int, int] | None:
    """``(inode, bytes, mtime ns)`` of the manifest, None when it cannot be read."""
    try:
        st = (root / MANIFEST).stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def load_manifest(root: Path) -> dict[str, Any]:
    """Read and check ``root/manifest.json`` (format, versions, shape, listed files on disk).

    Raises:
        DatasetError: not a dataset, unreadable, from another format or a newer schema, or a
            listed file missing or of another size.
    """
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{root}: not an mfcurate dataset (no {MANIFEST})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: not an mfcurate manifest")
    _check_versions(path, manifest)
    _check_shape(path, manifest)
    check_files_present(root, manifest)
    return manifest


def _check_versions(path: Path, manifest: Mapping[str, Any]) -> None:
    fmt = manifest.get("format_version")
    schema = str(manifest.get("schema_version", ""))
    mine = _version_tuple(SCHEMA_VERSION)
    theirs = _version_tuple(schema)
    if fmt is None or theirs[0] < mine[0]:
        raise DatasetError(f"{path}: written by an older mfcurate (dataset format "
                           f"{fmt or 1}, schema {schema or '?'}); re-ingest the sources "
                           "into a new dataset folder")
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION or theirs > mine:
        raise DatasetError(f"{path}: written by a newer mfcurate (format {fmt}, schema "
                           f"{schema}); this mfcurate {__version__} reads schema up to "
                           f"{SCHEMA_VERSION}: upgrade mfcurate")


def _check_shape(path: Path, manifest: Mapping[str, Any]) -> None:
    for key in ("sources", "files", "counts"):
        if not isinstance(manifest.get(key), dict):
            raise DatasetError(f"{path}: {key!r} must be an object")
    for src, entry in manifest["sources"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("parts", {}), dict):
            raise DatasetError(f"{path}: source {src!r} entry is malformed")
        for rel in [entry.get("images"), entry.get("regions"),
                    *entry.get("parts", {}).values()]:
            if rel is not None and rel not in manifest["files"]:
                raise DatasetError(f"{path}: source {src!r} names {rel}, which the manifest "
                                   "does not list")
    for rel, meta in manifest["files"].items():
        if not isinstance(meta, dict) or not {"sha256", "bytes", "rows"} <= set(meta):
            raise DatasetError(f"{path}: file entry {rel!r} is malformed")


def check_files_present(root: Path, manifest: Mapping[str, Any]) -> None:
    """Every listed file exists with the listed size (one ``stat`` each).

    Raises:
        DatasetError: naming the first file that is missing or has another size.
    """
    for rel, meta in manifest["files"].items():
        p = root / rel
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise DatasetError(f"{p}: listed in {root / MANIFEST} but missing; the dataset "
                               "is damaged (restore the file or re-ingest)") from None
        except OSError as exc:
            raise DatasetError(f"{p}: cannot read ({exc.strerror or exc})") from None
        if size != int(meta["bytes"]):
            raise DatasetError(f"{p}: {size} bytes on disk, the manifest says {meta['bytes']}; "
                               "the file was changed or replaced outside mfcurate")


@contextlib.contextmanager
def writer_lock(root: Path, wait: bool = True) -> Iterator[None]:
    """Exclusive lock of the dataset for one writer (across processes), with the holder's pid.

    Args:
        root: dataset folder.
        wait: block until the lock is free (default); else raise at once.

    Raises:
        DatasetError: ``wait`` is false and another process holds the lock.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK
    with path.open("a+") as f:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(f, flags)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise DatasetError(f"{root}: the dataset is being written by {holder}; try again "
                               "when it has finished") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
