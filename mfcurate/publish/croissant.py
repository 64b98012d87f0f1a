"""``croissant.json``: MLCommons Croissant 1.0 JSON-LD describing the package.

The tables are ``cr:FileObject`` resources with their sha256 (``mlcroissant`` refuses files
whose digest does not match); image/crop archives are ``cr:FileObject`` tar files with a
``cr:FileSet`` of their members.  Record sets ``objects``, ``images`` and (when packaged)
``regions`` expose the columns of the Parquet tables (lists such as ``bbox_xyxy`` as repeated
fields; only ``votes``, a list of structs, is left to the datasheet).  The regions' WKB
``geometry_wkb`` is a ``sc:Text`` field: Croissant has no binary type, and ``mlcroissant``
reads ``sc:Text`` as bytes, so records hold the WKB unchanged.  Validate with
:func:`validate_croissant`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from mfcurate.errors import MfcurateError
from mfcurate.schemas.tables import IMAGES_SCHEMA, OBJECTS_SCHEMA, REGIONS_SCHEMA

CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
    "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}

_TYPES = {pa.string(): "sc:Text", pa.int64(): "sc:Integer", pa.int32(): "sc:Integer",
          pa.float64(): "sc:Float", pa.bool_(): "sc:Boolean", pa.binary(): "sc:Text"}

#: Packaged table file -> (record set, schema, key column, description).
_RECORD_SETS: dict[str, tuple[str, pa.Schema, str, str]] = {
    "objects.parquet": ("objects", OBJECTS_SCHEMA, "object_key",
                        "One row per object (nucleus); level-0 pixel coordinates, x = column."),
    "images.parquet": ("images", IMAGES_SCHEMA, "image_key", "One row per image or slide."),
    "regions.parquet": ("regions", REGIONS_SCHEMA, "region_key",
                        "One row per region polygon a source drew on an image (tumour, "
                        "exclusion, necrosis, blurred, high-power-field areas); geometry_wkb "
                        "is WKB in level-0 pixel coordinates of the image, x = column."),
}


class CroissantError(MfcurateError, ValueError):
    """``croissant.json`` does not validate."""


def _fields(schema: pa.Schema, record_set: str, file_id: str) -> list[dict[str, Any]]:
    out = []
    for f in schema:
        repeated = pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type)
        dtype = _TYPES.get(f.type.value_type if repeated else f.type)
        if dtype is None:  # e.g. votes (list of structs): documented in the datasheet
            continue
        desc = (f.metadata or {}).get(b"description", b"").decode()
        field: dict[str, Any] = {
            "@type": "cr:Field", "@id": f"{record_set}/{f.name}", "name": f.name,
            "description": desc, "dataType": dtype,
            "source": {"fileObject": {"@id": file_id}, "extract": {"column": f.name}}}
        if repeated:
            field["repeated"] = True
        out.append(field)
    return out


def build_croissant(*, name: str, description: str, url: str, license_url: str,
                    creators: Sequence[dict[str, Any]], date_published: str, version: str,
                    cite_as: str, files: Sequence[dict[str, Any]], keywords: Sequence[str],
                    rai: dict[str, str] | None = None) -> dict[str, Any]:
    """The Croissant document of a package.

    Args:
        name: dataset name (no spaces is safest).
        description: plain-text description.
        url: landing page (DOI URL once known).
        license_url: licence URL.
        creators: Zenodo-style creators (``name`` "Family, Given", optional ``affiliation``).
        date_published: ``YYYY-MM-DD``.
        version: release version.
        cite_as: BibTeX or plain citation.
        files: package manifest entries (``path``, ``kind``, ``sha256``, ``bytes``,
            ``members`` glob for archives).
        keywords: subject keywords.
        rai: Responsible-AI properties (``rai:`` keys without prefix).
    """
    distribution: list[dict[str, Any]] = []
    record_sets: list[dict[str, Any]] = []
    archives: list[dict[str, Any]] = []
    for f in files:
        fid = f["path"].replace("/", "-")
        fmt = {"table": "application/x-parquet", "archive": "application/x-tar"}.get(
            f["kind"], "application/octet-stream")
        if f["kind"] not in ("table", "archive"):
            continue
        distribution.append({"@type": "cr:FileObject", "@id": fid, "name": f["path"],
                             "contentUrl": f["path"], "encodingFormat": fmt,
                             "contentSize": f"{f['bytes']} B", "sha256": f["sha256"]})
        if f["kind"] == "archive":
            archives.append(f)
        elif f["path"] in _RECORD_SETS:
            rs, schema, key, desc = _RECORD_SETS[f["path"]]
            record_sets.append({"@type": "cr:RecordSet", "@id": rs, "name": rs,
                                "description": desc, "key": {"@id": f"{rs}/{key}"},
                                "field": _fields(schema, rs, fid)})
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for a in archives:
        by_kind.setdefault(a.get("content", "files"), []).append(a)
    for content, group in sorted(by_kind.items()):
        distribution.append({
            "@type": "cr:FileSet", "@id": f"{content}-files", "name": f"{content}-files",
            "description": f"{content} inside the tar archives",
            "containedIn": [{"@id": a["path"].replace("/", "-")} for a in group],
            "encodingFormat": "image/png" if content == "crops" else "image/tiff",
            "includes": group[0].get("members", "**/*")})
    doc: dict[str, Any] = {
        "@context": CONTEXT, "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": name, "description": description, "url": url, "license": license_url,
        "creator": [{"@type": "sc:Person", "name": c["name"],
                     **({"affiliation": c["affiliation"]} if c.get("affiliation") else {})}
                    for c in creators] or [{"@type": "sc:Organization", "name": "mfcurate"}],
        "datePublished": date_published, "version": version, "citeAs": cite_as,
        "keywords": list(keywords), "distribution": distribution, "recordSet": record_sets,
    }
    for k, v in (rai or {}).items():
        doc[f"rai:{k}"] = v
    return doc


def validate_croissant(path: Path) -> list[str]:
    """Validate with ``mlcroissant`` and check the fields it only warns about.

    Returns:
        Warnings (empty when clean).

    Raises:
        CroissantError: the validator reports errors, or a required property is missing.
    """
    import mlcroissant as mlc

    doc = json.loads(path.read_text())
    missing = [k for k in ("name", "description", "url", "license", "creator", "datePublished",
                           "conformsTo") if not doc.get(k)]
    if missing:
        raise CroissantError(f"{path}: missing required properties {', '.join(missing)}")
    try:
        ds = mlc.Dataset(jsonld=path)
    except mlc.ValidationError as exc:
        raise CroissantError(f"{path}: {exc}") from None
    issues = ds.metadata.ctx.issues
    if issues.errors:
        raise CroissantError(f"{path}: {'; '.join(sorted(issues.errors))}")
    return sorted(issues.warnings)
