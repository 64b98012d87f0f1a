"""``--format parquet``: the dataset's tables as they are, for other tools.

Writes ``OUT/images.parquet`` and ``OUT/objects.parquet`` (every source in one file, the
mfcurate schema with its field descriptions and version metadata) and ``OUT/export.json``
(filter, row counts, sha256 of both files, schema version).  Coordinates are level-0 pixels,
``x`` = column; masks are COCO compressed RLE on the box grid (see ``docs/schema.md``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mfcurate import __version__
from mfcurate.dataset import (
    Dataset,
    Selection,
    as_selection,
    atomic_write_json,
    iter_selected,
    remove_temporaries_of,
    select_images,
    sha256_file,
    write_parquet_atomic,
)
from mfcurate.schemas.tables import IMAGES_SCHEMA, OBJECTS_SCHEMA, SCHEMA_VERSION


def write_tables(ds: Dataset, out: Path, sel: Selection) -> tuple[int, int]:
    """Write ``out/images.parquet`` and ``out/objects.parquet`` (streamed); return row counts.

    Only images that the filter keeps are written; objects are streamed batch by batch.
    """
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries_of(out / "images.parquet", out / "objects.parquet", out / "export.json")
    images = select_images(ds, sel)
    n_obj = write_parquet_atomic(out / "objects.parquet",
                                 iter_selected(ds, sel, images=images), OBJECTS_SCHEMA)
    write_parquet_atomic(out / "images.parquet", [images], IMAGES_SCHEMA)
    return images.num_rows, n_obj


def export_parquet(dataset: Dataset | Path | str, out_dir: Path | str,
                   selection: Selection | None = None, **filters: Any) -> dict[str, Any]:
    """Write the (filtered) ``images`` and ``objects`` tables to ``out_dir``.

    Args:
        dataset: a :class:`Dataset` or its folder.
        out_dir: output folder (created).
        selection: which images and objects (default: all but rejected objects).
        **filters: or the same as keyword options (see :meth:`Selection.from_options`).

    Returns:
        The summary also written to ``out_dir/export.json``.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    sel = as_selection(selection, **filters).check(ds)
    out = Path(out_dir)
    n_img, n_obj = write_tables(ds, out, sel)
    summary: dict[str, Any] = {
        "format": "parquet",
        "dataset": str(ds.root),
        "schema_version": SCHEMA_VERSION,
        "mfcurate_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "filter": sel.describe(),
        "files": {
            name: {"rows": rows, "sha256": sha256_file(out / name),
                   "bytes": (out / name).stat().st_size}
            for name, rows in (("images.parquet", n_img), ("objects.parquet", n_obj))
        },
        "source_roots": {s: str(ds.source_root(s)) for s in ds.sources},
    }
    atomic_write_json(out / "export.json", summary)
    return summary
