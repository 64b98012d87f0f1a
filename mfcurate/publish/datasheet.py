"""``DATASHEET.md``: a Datasheet for Datasets (Gebru et al., arXiv:1803.09010).

Generated from the dataset manifest and statistics: the seven question groups (motivation,
composition, collection, preprocessing/labelling, uses, distribution, maintenance) with the
sources, their licences, the counts, the tumour-region polygons (when packaged), how masks
were made and the known limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mfcurate.publish.licenses import Resolution
from mfcurate.report.stats import DatasetStats

#: How each ``mask_origin`` was produced (datasheet text).
MASK_ORIGINS: dict[str, str] = {
    "source": "drawn by the source's annotators (pixel masks or polygons)",
    "disk": "a disk of fixed radius around the annotated centre (fallback; not a segmentation)",
    "sam_box": "Segment Anything (SAM) prompted with the annotation's box",
    "sam_auto": "SAM automatic mask generator (harvested nuclei)",
    "phh3": "transferred from a registered pHH3 immunohistochemistry re-stain",
    "classical": "classical haematoxylin-channel segmentation",
    "manual": "drawn or corrected by a reviewer",
    "none": "no mask (box or point only)",
}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _composition(stats: DatasetStats, s: Mapping[str, Any]) -> list[str]:
    """The *Composition* section: totals, sources, Table 1 counts, mask areas."""
    src_rows = []
    for key, info in sorted(stats.sources.items()):
        bs = s["by_source"].get(key, {})
        src_rows.append([key, info.get("name", key), info.get("license", "unknown"),
                         f"doi:{info['doi']}" if info.get("doi") else "",
                         bs.get("images", 0), bs.get("objects", 0),
                         ", ".join(f"{k} {v}" for k, v in sorted(bs.get("by_label", {}).items()))])
    t1 = stats.table1()
    t1_rows = t1.astype(str).values.tolist()
    area_rows = [[k, v["n"], f"{v['median']:.1f}", f"{v['p05']:.1f}", f"{v['p95']:.1f}"]
                 for k, v in sorted(s["area_um2"].items())]
    return [
        "## Composition",
        f"- {s['images']} images, {s['objects']} objects "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(s['by_label'].items()))}).",
        f"- Tumour types: {', '.join(s['tumour_types']) or 'not recorded'}.",
        f"- Species: {', '.join(s['species']) or 'not recorded'}; scanners: "
        f"{', '.join(s['scanners']) or 'not recorded'}.",
        "### Sources",
        _table(["key", "name", "licence", "DOI", "images", "objects", "labels"], src_rows),
        "### Counts per source and tumour type (OMG-Net Table 1 layout)",
        _table(list(t1.columns), t1_rows),
        "### Mask area (µm²)",
        _table(["label", "n", "median", "5 %", "95 %"], area_rows) if area_rows
        else "No masks with a known pixel size.",
        "- Each object row holds its box and centroid in level-0 pixels of its image "
        "(x = column), a COCO compressed RLE mask on the box's integer grid, the label and "
        "its origin, per-annotator votes where the source has them, and its QA state.",
        "- The images themselves are not redistributed unless an archive of them is listed "
        "under *Distribution*; obtain them from each source's homepage.",
    ]


def _regions(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The *Region polygons* part of *Composition* (``regions.parquet``); none without rows.

    ``rows``: :func:`mfcurate.regions.count_by_class` of the packaged regions table.
    """
    if not rows:
        return []
    def area(mm2: float | None) -> str:  # small (synthetic) areas in µm²
        if mm2 is None:
            return "unknown"
        return f"{mm2:,.2f} mm²" if mm2 >= 0.01 else f"{mm2 * 1e6:,.0f} µm²"

    table = [[r["source"], r["region_class"], r["polygons"], r["images"], area(r["area_mm2"])]
             for r in rows]
    return [
        "### Region polygons (`regions.parquet`)",
        f"- {sum(r['polygons'] for r in rows)} polygons the sources drew on the released "
        "images (tumour areas and the areas cut out of them, as each source's annotation "
        "files hold them): one row per polygon, `geometry_wkb` a Polygon or MultiPolygon "
        "as WKB in level-0 pixels of its image (x = column; outlines may reach past the "
        "image as drawn), `region_class` "
        "the normalised class and `source_class` the source's own name. Invalid outlines "
        "were repaired with shapely's `make_valid` (`repaired`); polygons without area were "
        "left out.",
        "- Tumour area as mfcurate uses it (`harvest --within tumour-region`): the union of an "
        "image's `tumour` polygons minus its `exclude`, `necrosis` and `blurred` polygons.",
        _table(["source", "region class", "polygons", "images", "area"], table),
    ]


def _processing(s: Mapping[str, Any]) -> list[str]:
    """The *Collection*, *Preprocessing* (mask origins, QA states) and *Known limits* sections."""
    origin_rows = [[k, v, MASK_ORIGINS.get(k, "")] for k, v in
                   sorted(s["by_mask_origin"].items(), key=lambda kv: -kv[1])]
    qa_rows = [[k, v] for k, v in sorted(s["by_qa_state"].items(), key=lambda kv: -kv[1])]
    n_disk = s["by_mask_origin"].get("disk", 0)
    n_unrev = s["by_qa_state"].get("unreviewed", 0) + s["by_qa_state"].get("flagged", 0)
    return [
        "## Collection process",
        "- Objects come from the sources' own annotations (points, boxes, pixel masks) read "
        "by mfcurate's adapters; coordinates are converted to level-0 pixels and labels to "
        "the mfcurate vocabulary. Additional objects may have been harvested by a model "
        "(label origin `model`).",
        "## Preprocessing, cleaning, labelling",
        "### How masks were made",
        _table(["mask origin", "objects", "method"], origin_rows),
        "### Quality assurance state",
        _table(["QA state", "objects"], qa_rows),
        "## Known limits",
        f"- {n_disk} objects carry a fixed-radius disk instead of a segmentation." if n_disk
        else "- No disk fallback masks.",
        f"- {n_unrev} objects have not been accepted by a reviewer (unreviewed or flagged)."
        if n_unrev else "- Every object was reviewed.",
        "- Labels inherit the sources' annotation noise (inter-observer disagreement on "
        "mitotic figures is substantial); point annotations were converted to boxes of a "
        "fixed physical size.",
        "- Tumour types, species and scanners are unevenly represented (see the tables).",
    ]


def _distribution(stats: DatasetStats, resolution: Resolution,
                  files: Sequence[Mapping[str, Any]]) -> list[str]:
    """The *Distribution* (licence, files, citations) and *Maintenance* sections."""
    cites = "\n".join(f"- **{info.get('name', k)}**: {info.get('citation', '')}"
                      + (f" doi:{info['doi']}" if info.get("doi") else "")
                      for k, info in sorted(stats.sources.items()))
    file_rows = [[f["path"], f["kind"], f"{f['bytes']:,}"] for f in files]
    warn = "\n".join(f"- {w}" for w in resolution.warnings) or "- none"
    lic = resolution.license
    return [
        "## Distribution",
        f"- Licence: **{lic.spdx}** ({lic.url}), derived from the sources' licences (the most "
        f"restrictive wins; derived from sources alone: {resolution.derived.spdx}).",
        "- Licence notes:",
        warn,
        "- Files:",
        _table(["file", "kind", "bytes"], file_rows),
        "### Cite the sources",
        cites,
        "## Maintenance",
        "- New releases are published as new versions of the same Zenodo concept record; "
        "errata are listed in the record's description.",
    ]


def build_datasheet(*, title: str, version: str, stats: DatasetStats, resolution: Resolution,
                    files: Sequence[Mapping[str, Any]], description: str = "",
                    regions: Sequence[Mapping[str, Any]] = ()) -> str:
    """The datasheet as Markdown.

    Args:
        title: release title.
        version: release version.
        stats: dataset statistics.
        resolution: the licence resolution (release licence, per source, warnings).
        files: package manifest entries (``path``, ``bytes``, ``kind``).
        description: the publisher's own description (plain text or Markdown).
        regions: per source and class counts of the packaged ``regions.parquet``
            (:func:`mfcurate.regions.count_by_class`); empty: no regions section.
    """
    s = stats.summary()
    parts = [
        f"# Datasheet: {title} (version {version})",
        "Following *Datasheets for Datasets* (Gebru et al., 2021). Generated by mfcurate "
        "from the dataset manifest; edit before publishing if something is wrong.",
        "## Motivation",
        "- **Purpose.** A harmonised, pan-cancer collection of nuclei with instance masks and "
        "labels (mitotic figure, mitotic-like figure, background nuclei) built from public "
        "mitotic-figure datasets, for training and evaluating mitotic-figure classifiers "
        "(the data pipeline of OMG-Net, Shen et al.).",
        f"- **Description.** {description}" if description else "",
        *_composition(stats, s),
        *_regions(regions),
        *_processing(s),
        "## Uses",
        "- Intended: research on mitotic-figure detection/classification and nuclei "
        "segmentation in H&E images.",
        "- Not intended: clinical diagnosis or any decision about a patient.",
        *_distribution(stats, resolution, files),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"
