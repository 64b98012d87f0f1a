"""Region polygons, one home: class names, repair, the ``regions`` table, the allowed area.

Sources draw regions on their slides (CMC ``_ROI``: "Tumor region" / "Exclude from tumor
region"; CCMCT Tumorzone: ``Tumorzone``, ``Nekrosezone``, ``unscharfe scan-area``, ``nicht
tumorgewebe excludieren``; HighMCAreas: ``10hpf selection``).  Every geometry here is in
level-0 px, x = column, y = row; areas in px² and, through the image's µm/px
(:func:`mfcurate.units.area_um2`), in µm².

* :func:`region_class` maps a source's class name to :class:`~mfcurate.schemas.vocab.RegionClass`.
* :func:`make_geometry` turns stored vertices into a valid (Multi)Polygon: self-intersecting
  outlines are repaired with shapely's ``make_valid`` (its polygonal parts kept); fewer than 3
  distinct vertices or a zero area is dropped with the reason.
* :class:`RegionBuilder` collects rows for one source, counting what it repaired and dropped.
* :func:`allowed_area` is where harvest may work on an image: the union of its ``tumour``
  regions minus the union of its ``exclude``/``necrosis``/``blurred`` regions (None when the
  image has no tumour region).
* :func:`count_by_class` and :func:`describe` count a ``regions`` table (per source and class).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mfcurate.schemas.tables import RegionRecord, regions_table
from mfcurate.schemas.vocab import RegionClass
from mfcurate.units import area_um2

#: Region classes cut out of the tumour area.
CUT_CLASSES: frozenset[str] = frozenset({RegionClass.EXCLUDE, RegionClass.NECROSIS,
                                         RegionClass.BLURRED})

#: Substrings of a lower-cased class name -> class, tried in order (exclusions before the
#: tumour words they contain: "Exclude from tumor region", "nicht tumorgewebe excludieren").
_RULES: tuple[tuple[tuple[str, ...], RegionClass], ...] = (
    (("exclud", "nicht tumor", "non-tumo", "non tumo"), RegionClass.EXCLUDE),
    (("nekros", "necros"), RegionClass.NECROSIS),
    (("unscharf", "blur", "out of focus"), RegionClass.BLURRED),
    (("hpf", "hotspot", "high mc"), RegionClass.HPF_ROI),
    (("tumor", "tumour"), RegionClass.TUMOUR),
)


def region_class(name: str | None) -> RegionClass:
    """Normalised class of a region class name (case-insensitive); ``other`` if unknown.

    Examples:
        >>> [region_class(n).value for n in ("Tumor region", "Exclude from tumor region",
        ...  "Nekrosezone", "unscharfe scan-area", "nicht tumorgewebe excludieren",
        ...  "10hpf selection", "Tumorzone", "lymph node")]
        ['tumour', 'exclude', 'necrosis', 'blurred', 'exclude', 'hpf_roi', 'tumour', 'other']
    """
    low = (name or "").strip().lower()
    for words, cls in _RULES:
        if any(w in low for w in words):
            return cls
    return RegionClass.OTHER


def make_geometry(vertices: Sequence[tuple[float, float]], kind: str = "polygon"
                  ) -> tuple[Any | None, bool, str | None]:
    """A valid polygonal geometry from stored vertices.

    Args:
        vertices: ``(x, y)`` level-0 px in drawing order (a polygon), or the two corners of a
            rectangle.
        kind: ``"polygon"`` or ``"rectangle"``.

    Returns:
        ``(geometry, repaired, why_dropped)``: a shapely Polygon/MultiPolygon and whether
        ``make_valid`` changed it, or ``(None, False, reason)`` when nothing polygonal is left.
    """
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, box

    if kind == "rectangle":
        if len(vertices) < 2:
            return None, False, f"rectangle with {len(vertices)} corner(s)"
        (x0, y0), (x1, y1) = vertices[0], vertices[1]
        if x0 == x1 or y0 == y1:
            return None, False, f"degenerate rectangle ({abs(x1 - x0):g}x{abs(y1 - y0):g} px)"
        return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), False, None
    distinct = {(float(x), float(y)) for x, y in vertices}
    if len(distinct) < 3:
        return None, False, f"polygon with {len(distinct)} distinct vertices"
    try:
        geom: Any = Polygon(vertices)
        repaired = False
        if not geom.is_valid:
            fixed = shapely.make_valid(geom)
            parts = [g for g in getattr(fixed, "geoms", [fixed])
                     if isinstance(g, Polygon | MultiPolygon)]
            polys = [p for g in parts for p in getattr(g, "geoms", [g]) if not p.is_empty]
            geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
            repaired = True
    except (shapely.errors.GEOSException, ValueError) as exc:  # one bad outline, not the run
        return None, False, f"polygon shapely cannot build ({exc})"
    if geom.is_empty or geom.area <= 0:
        return None, False, "polygon of zero area"
    return geom, repaired, None


@dataclass
class RegionBuilder:
    """Collects one source's region rows (see :data:`~mfcurate.schemas.REGIONS_SCHEMA`).

    Attributes:
        source: adapter key.
        records: rows so far.
        repaired: keys of regions repaired with ``make_valid``.
        dropped: ``"<file>: region <id>: <why>"`` for regions left out.
    """

    source: str
    records: list[RegionRecord] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def add(self, *, image_key: str, ann_id: str, source_file: str, file_stem: str,
            class_name: str | None, vertices: Sequence[tuple[float, float]], kind: str,
            mpp_x: float | None, mpp_y: float | None) -> RegionRecord | None:
        """Add one region; None (and a line in :attr:`dropped`) when it has no area."""
        geom, fixed, why = make_geometry(vertices, kind)
        if geom is None:
            self.dropped.append(f"{source_file}: region {ann_id} on {image_key}: {why}")
            return None
        key = f"{image_key}/region/{file_stem}/{ann_id}"
        if fixed:
            self.repaired.append(key)
        x0, y0, x1, y1 = (float(v) for v in geom.bounds)
        rec = RegionRecord(
            region_key=key, image_key=image_key, source=self.source,
            region_class=region_class(class_name).value, source_class=class_name,
            geometry_wkb=geom.wkb, bbox_xyxy=(x0, y0, x1, y1), n_vertices=len(vertices),
            area_px=float(geom.area), area_um2=area_um2(float(geom.area), mpp_x, mpp_y),
            repaired=fixed, source_file=source_file, source_annotation_id=str(ann_id))
        self.records.append(rec)
        return rec

    def table(self) -> pa.Table:
        """The rows as a ``regions`` table, sorted by key."""
        return regions_table(sorted(self.records, key=lambda r: r.region_key))


def geometries(table: pa.Table) -> list[Any]:
    """The shapely geometries of a ``regions`` table, in row order."""
    import shapely

    return list(shapely.from_wkb(table.column("geometry_wkb").to_pylist()))


def allowed_area(classes: Iterable[str], geoms: Iterable[Any]) -> Any | None:
    """Union of the ``tumour`` regions minus the union of the cut regions; None: no tumour.

    An image whose tumour regions are all cut away gets an empty geometry (nothing allowed),
    not None.
    """
    import shapely

    keep: list[Any] = []
    cut: list[Any] = []
    for cls, g in zip(classes, geoms, strict=True):
        if cls == RegionClass.TUMOUR:
            keep.append(g)
        elif cls in CUT_CLASSES:
            cut.append(g)
    if not keep:
        return None
    area = shapely.union_all(keep)
    if cut:
        area = area.difference(shapely.union_all(cut))
    if area.geom_type == "GeometryCollection":  # keep the polygonal parts only
        from shapely.geometry import MultiPolygon, Polygon

        polys = [p for g in area.geoms if isinstance(g, Polygon | MultiPolygon)
                 for p in getattr(g, "geoms", [g])]
        area = MultiPolygon(polys)
    return area


def allowed_by_image(table: pa.Table) -> dict[str, Any]:
    """``image_key -> allowed area`` for every image of a ``regions`` table with a tumour region."""
    by: dict[str, tuple[list[str], list[Any]]] = {}
    for key, cls, g in zip(table.column("image_key").to_pylist(),
                           table.column("region_class").to_pylist(), geometries(table),
                           strict=True):
        c, gs = by.setdefault(str(key), ([], []))
        c.append(str(cls))
        gs.append(g)
    out = {}
    for key, (c, gs) in by.items():
        area = allowed_area(c, gs)
        if area is not None:
            out[key] = area
    return out


def inside(area: Any, xy: Any) -> Any:
    """Bool array: which points ``xy`` (``(n, 2)`` level-0 px) lie inside ``area``."""
    import numpy as np
    import shapely

    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    shapely.prepare(area)
    return np.asarray(shapely.contains_xy(area, pts[:, 0], pts[:, 1]), dtype=bool)


def count_by_class(table: pa.Table) -> list[dict[str, Any]]:
    """Per source and class: polygons, images and area of a ``regions`` table.

    Returns:
        Rows ``{"source", "region_class", "polygons", "images", "area_mm2"}`` sorted by
        source, then by class; ``area_mm2`` sums the rows with a known µm/px (None if none).
    """
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for src, cls, key, um2 in zip(table.column("source").to_pylist(),
                                  table.column("region_class").to_pylist(),
                                  table.column("image_key").to_pylist(),
                                  table.column("area_um2").to_pylist(), strict=True):
        a = acc.setdefault((src, cls), {"polygons": 0, "images": set(), "area_mm2": None})
        a["polygons"] += 1
        a["images"].add(key)
        if um2 is not None:
            a["area_mm2"] = (a["area_mm2"] or 0.0) + um2 / 1e6
    return [{"source": src, "region_class": cls, "polygons": a["polygons"],
             "images": len(a["images"]), "area_mm2": a["area_mm2"]}
            for (src, cls), a in sorted(acc.items())]


def describe(table: pa.Table) -> str | None:
    """One line on a source's regions: polygons, images, and per class count and mm².

    None for an empty table.  Areas without a µm/px are left out of the mm² sums.

    Example: ``113 region polygons on 32 images: tumour 41 (4,928.4 mm²), exclude 63 ...``.
    """
    if table.num_rows == 0:
        return None
    n: dict[str, int] = {}
    mm2: dict[str, float] = {}
    for cls, um2 in zip(table.column("region_class").to_pylist(),
                        table.column("area_um2").to_pylist(), strict=True):
        n[cls] = n.get(cls, 0) + 1
        mm2[cls] = mm2.get(cls, 0.0) + (um2 or 0.0) / 1e6
    per = ", ".join(f"{c} {n[c]} ({mm2[c]:,.1f} mm²)" for c in sorted(n, key=lambda c: -n[c]))
    images = len(set(table.column("image_key").to_pylist()))
    return f"{table.num_rows} region polygons on {images} images: {per}"
