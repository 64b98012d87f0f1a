"""QuPath-compatible GeoJSON: write objects as features, read annotations back.

Written files are ``FeatureCollection`` objects in level-0 pixel coordinates (x = column), the
form QuPath's *File > Import objects* and *Export objects as GeoJSON* use.  Each feature has:

* ``id``: a UUID derived from the ``object_key`` (stable across exports);
* ``geometry``: the mask outline as a ``Polygon``/``MultiPolygon`` (traced from the RLE), or
  a ``Point`` at the centroid when the object has no mask;
* ``properties``: ``objectType`` (``annotation``), ``name`` (= ``object_key``, which QuPath
  keeps, so the review round trip can match features back), ``classification``
  (``{"name", "color"}``), ``isLocked`` and ``mfcurate`` (label, QA state and flags, mask
  origin and score, for people and tools that read them).

Reading accepts what QuPath and people write: points and multipoints, polygons (rectangles
included), multipolygons, with a ``classification`` or a plain ``name``/``class`` property.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mfcurate.dataset import atomic_write_bytes
from mfcurate.errors import SourceFormatError
from mfcurate.geometry import Grid, mask_grid, mask_polygons
from mfcurate.schemas.vocab import LABEL_NAMES, Label

_NAMESPACE = uuid.UUID("6f1c8f5e-3a52-4d5e-9a0b-6d1f0c2b7a11")

#: QuPath classification colours (RGB) per label.
LABEL_COLORS: dict[str, list[int]] = {
    Label.MITOTIC_FIGURE.value: [220, 20, 60],
    Label.MITOTIC_LIKE.value: [255, 165, 0],
    Label.BACKGROUND.value: [70, 130, 180],
    Label.GRANULOCYTE.value: [148, 0, 211],
    Label.TUMOUR_CELL.value: [34, 139, 34],
    Label.OTHER_CELL.value: [128, 128, 128],
}


def feature_id(object_key: str) -> str:
    """Deterministic UUID of an object (QuPath wants UUIDs as feature ids)."""
    return str(uuid.uuid5(_NAMESPACE, object_key))


def objects_to_features(objects: pa.Table) -> Iterator[dict[str, Any]]:
    """Yield one GeoJSON feature per row of an ``objects`` table.

    Any column subset works that has ``object_key``, ``label``, ``centroid_xy``, ``bbox_xyxy``
    and ``mask_rle``.
    """
    cols = set(objects.column_names)
    for row in objects.to_pylist():
        label = str(row["label"])
        geometry: dict[str, Any]
        rle = row.get("mask_rle")
        if rle:
            polys = mask_polygons(rle, mask_grid(row["bbox_xyxy"]))
            rings = [[[p[i], p[i + 1]] for i in range(0, len(p), 2)] for p in polys]
            rings = [[*r, r[0]] for r in rings if len(r) >= 3]
            if len(rings) == 1:
                geometry = {"type": "Polygon", "coordinates": [rings[0]]}
            elif rings:
                geometry = {"type": "MultiPolygon", "coordinates": [[r] for r in rings]}
            else:
                geometry = _point(row["centroid_xy"])
        else:
            geometry = _point(row["centroid_xy"])
        try:
            display = LABEL_NAMES[Label(label)]
        except ValueError:
            display = label
        props: dict[str, Any] = {
            "objectType": "annotation",
            "name": row["object_key"],
            "classification": {"name": display, "color": LABEL_COLORS.get(label, [0, 0, 0])},
            "isLocked": False,
            "mfcurate": {k: row[k] for k in ("label", "qa_state", "qa_flags", "mask_origin",
                                            "mask_score", "area_um2", "image_key")
                         if k in cols and row.get(k) is not None},
        }
        yield {"type": "Feature", "id": feature_id(row["object_key"]), "geometry": geometry,
               "properties": props}


def _point(c: Any) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [float(c[0]), float(c[1])]}


def write_feature_collection(path: Path | str, features: Iterable[dict[str, Any]]) -> Path:
    """Write features as a FeatureCollection, atomically."""
    p = Path(path)
    doc = {"type": "FeatureCollection", "features": list(features)}
    atomic_write_bytes(p, json.dumps(doc, separators=(",", ":")).encode())
    return p


@dataclass
class Feature:
    """One feature read from a GeoJSON file.

    Attributes:
        kind: ``point`` or ``polygon``.
        coords: for a point ``(1, 2)`` ``[[x, y]]``; for a polygon the exterior ring ``(N, 2)``.
        holes: interior rings of a polygon.
        class_name: classification name (or ``name``/``class`` property), may be None.
        name: the feature's ``name`` property (object key for mfcurate exports).
        fid: the feature id.
        properties: all properties.
        index: position of the feature in the file (for error messages).
    """

    kind: str
    coords: npt.NDArray[np.float64]
    holes: list[npt.NDArray[np.float64]]
    class_name: str | None
    name: str | None
    fid: str | None
    properties: dict[str, Any]
    index: int

    @property
    def is_rectangle(self) -> bool:
        """True for an axis-aligned rectangle (QuPath's rectangle tool)."""
        if self.kind != "polygon":
            return False
        ring = self.coords[:-1] if len(self.coords) and np.allclose(self.coords[0],
                                                                    self.coords[-1]) else \
            self.coords
        if len(ring) != 4:
            return False
        xs, ys = np.unique(np.round(ring[:, 0], 6)), np.unique(np.round(ring[:, 1], 6))
        return len(xs) == 2 and len(ys) == 2

    @property
    def bbox_xyxy(self) -> tuple[float, float, float, float]:
        """Bounding box of the coordinates."""
        return (float(self.coords[:, 0].min()), float(self.coords[:, 1].min()),
                float(self.coords[:, 0].max()), float(self.coords[:, 1].max()))


def read_features(path: Path | str) -> list[Feature]:
    """Read a GeoJSON file (FeatureCollection, Feature list, or a single Feature).

    Raises:
        SourceFormatError: invalid JSON or a feature with a bad geometry (names the file and
            the feature index).
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise SourceFormatError(p, f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                   f"{exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise SourceFormatError(p, f"not UTF-8 text ({exc})") from exc
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        raw = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        raw = [doc]
    elif isinstance(doc, list):
        raw = doc
    else:
        raise SourceFormatError(p, "expected a GeoJSON FeatureCollection, Feature or list")
    if not isinstance(raw, list):
        raise SourceFormatError(p, "'features' is not a list")
    out: list[Feature] = []
    for i, f in enumerate(raw):
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
            raise SourceFormatError(p, f"feature {i} has no geometry")
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise SourceFormatError(p, f"feature {i}: field properties: expected an object, "
                                       f"got {type(props).__name__}")
        cls = props.get("classification")
        class_name = (cls.get("name") if isinstance(cls, dict) else cls) or \
            props.get("class") or props.get("label")
        name = props.get("name")
        geom = f["geometry"]
        try:
            out.extend(_geometry_features(geom, class_name, name, f.get("id"), props, i))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise SourceFormatError(p, f"feature {i}: bad {geom.get('type')} geometry "
                                       f"({exc})") from exc
    return out


def _geometry_features(geom: dict[str, Any], class_name: Any, name: Any, fid: Any,
                       props: dict[str, Any], i: int) -> list[Feature]:
    typ = geom.get("type")
    coords: Any = geom.get("coordinates")
    cn = None if class_name is None else str(class_name)
    nm = None if name is None else str(name)
    fi = None if fid is None else str(fid)
    if typ == "Point":
        return [Feature("point", _arr([coords]), [], cn, nm, fi, props, i)]
    if typ in ("MultiPoint", "Polygon", "MultiPolygon") and not isinstance(coords, list):
        raise ValueError("'coordinates' is not a list")
    if typ == "MultiPoint":
        return [Feature("point", _arr([c]), [], cn, nm, fi, props, i) for c in coords or []]
    if typ == "Polygon":
        return [Feature("polygon", _arr(coords[0]), [_arr(h) for h in coords[1:]], cn, nm, fi,
                        props, i)]
    if typ == "MultiPolygon":
        return [Feature("polygon", _arr(poly[0]), [_arr(h) for h in poly[1:]], cn, nm, fi, props,
                        i) for poly in coords or []]
    if typ == "GeometryCollection":
        feats: list[Feature] = []
        for g in geom.get("geometries") or []:
            if not isinstance(g, dict):
                raise ValueError("a member of 'geometries' is not a geometry object")
            feats.extend(_geometry_features(g, class_name, name, fid, props, i))
        return feats
    raise ValueError(f"unsupported geometry type {typ!r}")


def _arr(coords: Any) -> npt.NDArray[np.float64]:
    a = np.asarray(coords, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 2 or not np.isfinite(a[:, :2]).all():
        raise ValueError("coordinates must be a list of [x, y] pairs")
    return a[:, :2]


def polygon_to_mask(exterior: npt.NDArray[np.float64],
                    holes: Iterable[npt.NDArray[np.float64]] = (),
                    grid: Grid | None = None) -> tuple[Grid, npt.NDArray[np.bool_]]:
    """Rasterise a polygon (level-0 px) onto an integer grid.

    A pixel is inside when its centre is.

    Returns:
        ``(grid, mask)`` with ``grid = (x0, y0, w, h)`` (the polygon's box grid unless given)
        and ``mask`` of shape ``(h, w)``.
    """
    import cv2

    if grid is None:
        grid = mask_grid((exterior[:, 0].min(), exterior[:, 1].min(),
                          exterior[:, 0].max(), exterior[:, 1].max()))
    x0, y0, w, h = grid
    canvas = np.zeros((max(h, 1), max(w, 1)), np.uint8)
    shift = 4

    def pts(ring: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        q = (ring - np.array([x0 + 0.5, y0 + 0.5])) * (1 << shift)
        return np.round(q).astype(np.int32).reshape(-1, 1, 2)

    cv2.fillPoly(canvas, [pts(exterior)], 1, lineType=cv2.LINE_8, shift=shift)
    for hole in holes:
        cv2.fillPoly(canvas, [pts(hole)], 0, lineType=cv2.LINE_8, shift=shift)
    return grid, canvas[:h, :w].astype(bool)
