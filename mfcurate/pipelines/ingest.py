"""Ingest one source into a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.dataset import Dataset
from mfcurate.dataset.duplicates import mark_duplicates
from mfcurate.pipelines.steps import StepContext, step


@dataclass
class IngestReport:
    """What an ingest did."""

    source: str
    n_images: int
    n_objects: int
    missing_images: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: annotations left out, named with why (NULL coordinate, unknown image or class id)
    skipped: list[str] = field(default_factory=list)
    #: one line per source pair sharing images (mfcurate.dataset.duplicates)
    duplicates: list[str] = field(default_factory=list)
    #: region polygons kept (tumour zones, exclusions; mfcurate.regions)
    n_regions: int = 0
    #: region polygons repaired with make_valid (their keys)
    regions_repaired: list[str] = field(default_factory=list)


def ingest_source(source: str, root: Path | str, out: Path | str,
                  config: AdapterConfig | None = None) -> IngestReport:
    """Read ``root`` with the adapter ``source`` and commit it into the dataset ``out``.

    The adapter reads and validates everything before the dataset is touched, so bad input
    leaves the dataset exactly as it was.  Images shared with another source of the dataset
    (MIDOG 2021 inside MIDOG++) are then marked ``duplicate_of`` with the original's split
    (:mod:`mfcurate.dataset.duplicates`); ``duplicates`` holds one line per source pair.
    """
    adapter = get_adapter(source)(root, config)
    images, objects = adapter.to_tables()
    regions = adapter.regions_table()
    ds = Dataset.open(out, create=True)
    ds.commit_source(source, images, [objects], info=adapter.source_card(), root=root,
                     regions=regions)
    dups = [r.line() for r in mark_duplicates(ds, source)]
    return IngestReport(source, images.num_rows, objects.num_rows,
                        list(adapter.missing_images), list(adapter.dropped),
                        list(adapter.skipped), dups, regions.num_rows,
                        list(adapter.regions_repaired))


def _ingest_step(ctx: StepContext, *, sources: list[dict[str, Any]] | None = None,
                 **_: Any) -> dict[str, Any]:
    """Recipe step: ingest every ``{key, root, options}`` source into ``ctx.dataset``."""
    out: dict[str, Any] = {}
    for spec in sources or ctx.state.get("sources", []):
        root = Path(spec["root"])
        if not root.is_absolute():
            root = ctx.work_dir / root
        cfg = AdapterConfig(options={k: str(v) for k, v in spec.get("options", {}).items()})
        rep = ingest_source(str(spec["key"]), root, ctx.dataset, cfg)
        out[rep.source] = {"images": rep.n_images, "objects": rep.n_objects,
                           "regions": rep.n_regions,
                           "missing_images": len(rep.missing_images),
                           "duplicates": rep.duplicates}
        regions = f", {rep.n_regions} region polygons" if rep.n_regions else ""
        ctx.console.print(f"ingested {rep.source}: {rep.n_images} images, "
                          f"{rep.n_objects} objects{regions}", markup=False)
        for line in rep.duplicates:
            ctx.console.print(line, markup=False)
    return out


step("ingest")(_ingest_step)
