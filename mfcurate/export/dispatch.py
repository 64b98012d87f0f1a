"""Dispatch ``mfcurate export --format geojson|parquet [--with-crops]`` to the exporters.

The CLI (``mfcurate/cli/export.py``) keeps ``--format coco`` itself and calls
:func:`run_export` for the other formats and for ``--with-crops``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.dataset import Dataset, as_selection
from mfcurate.errors import UsageError

FORMATS = ("geojson", "parquet")


def run_export(dataset: Dataset | Path | str, fmt: str | None, out_dir: Path | str,
               **options: Any) -> dict[str, Any]:
    """Run one export format and/or the crops.

    Args:
        dataset: a :class:`Dataset` or its folder.
        fmt: ``"geojson"``, ``"parquet"`` or None (crops only).
        out_dir: output folder.
        **options: ``selection`` (a :class:`Selection`) or the same as keyword filters
            (``sources``, ``labels``, ``splits``, ...), and ``with_crops``, ``crop_size``,
            ``workers``, ``scheduler``, ``progress``.

    Returns:
        ``{"<fmt>": summary, "crops": summary}`` for what ran.
    """
    from mfcurate.export.crops import export_crops
    from mfcurate.export.geojson_export import export_geojson
    from mfcurate.export.parquet_export import export_parquet

    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    with_crops = bool(options.pop("with_crops", False))
    crop_size = int(options.pop("crop_size", 128))
    run_opts = {k: options.pop(k) for k in ("workers", "scheduler", "progress")
                if k in options}
    sel = as_selection(options.pop("selection", None), **options).check(ds)
    out: dict[str, Any] = {}
    if fmt == "geojson":
        out["geojson"] = export_geojson(ds, out_dir, selection=sel)
    elif fmt == "parquet":
        out["parquet"] = export_parquet(ds, out_dir, selection=sel)
    elif fmt is not None:
        raise UsageError(f"unknown --format {fmt!r}; choose coco, {', '.join(FORMATS)}")
    if with_crops:
        out["crops"] = export_crops(ds, out_dir, size_px=crop_size, selection=sel, **run_opts)
    return out
