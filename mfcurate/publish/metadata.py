"""The record's deposit metadata: the publisher's file merged with what mfcurate knows.

The publisher gives Zenodo's legacy deposit fields (``title``, ``creators``,
``description``, ``keywords``, ``communities``...) in a JSON or TOML file (``--metadata``),
either at top level or under ``metadata``.  mfcurate adds ``upload_type = dataset``, the
resolved licence, ``isDerivedFrom`` related identifiers for every source DOI, the version,
keywords and a generated HTML description of the contents (appended to the publisher's).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mfcurate.errors import MfcurateError, UsageError
from mfcurate.publish.licenses import Resolution, parse_license

DEFAULT_KEYWORDS = ("mitotic figures", "computational pathology", "nuclei segmentation",
                    "histopathology", "H&E")
_ACCESS = {"open", "embargoed", "restricted", "closed"}


class MetadataError(MfcurateError, ValueError):
    """The publisher's metadata file is unreadable or incomplete."""


def load_metadata(path: Path | str) -> dict[str, Any]:
    """Read a JSON or TOML metadata file (top-level fields or a ``metadata`` table)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise MetadataError(f"{p}: metadata file does not exist") from None
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MetadataError(f"{p}: cannot parse ({exc})") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{p}: expected an object of deposit fields")
    inner = data.get("metadata", data)
    if not isinstance(inner, dict):
        raise MetadataError(f"{p}: 'metadata' must be an object")
    check_metadata_types(inner, str(p))
    return dict(inner)


#: Deposit fields that must be text, and those that must be lists of objects / of text.
_TEXT = ("title", "description", "version", "access_right", "license", "notes",
         "publication_date")
_OBJECT_LISTS = {"creators": "name", "contributors": "name", "communities": "identifier",
                 "grants": "id", "related_identifiers": "identifier"}
_TEXT_LISTS = ("keywords", "references")


def check_metadata_types(md: Mapping[str, Any], where: str) -> None:
    """Refuse fields of the wrong type, naming the file and the field.

    Raises:
        MetadataError: e.g. ``creators`` given as a string instead of a list of
            ``{name: "Family, Given"}`` objects.
    """
    for k in _TEXT:
        if k in md and not isinstance(md[k], str):
            raise MetadataError(f"{where}: {k} must be text, not {type(md[k]).__name__}")
    for k, needed in _OBJECT_LISTS.items():
        if k not in md:
            continue
        v = md[k]
        if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
            raise MetadataError(f"{where}: {k} must be a list of objects like "
                                f"{{{needed}: ...}}, not {type(v).__name__}")
        for i, x in enumerate(v):
            if not isinstance(x.get(needed), str) or not x[needed].strip():
                raise MetadataError(f"{where}: {k}[{i}].{needed} must be non-empty text")
    for k in _TEXT_LISTS:
        if k in md and (not isinstance(md[k], list)
                        or not all(isinstance(x, str) for x in md[k])):
            raise MetadataError(f"{where}: {k} must be a list of text")


def contents_html(summary: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]],
                  license_spdx: str) -> str:
    """HTML description of the contents (Zenodo's allowed subset: p, ul, li, table...)."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(str(info.get('name', k)))}</td><td>{e(str(info.get('license', '')))}</td>"
        f"<td>{summary['by_source'].get(k, {}).get('images', 0)}</td>"
        f"<td>{summary['by_source'].get(k, {}).get('objects', 0)}</td></tr>"
        for k, info in sorted(sources.items()))
    labels = ", ".join(f"{e(k)}: {v}" for k, v in sorted(summary["by_label"].items()))
    return (f"<p>Contents: {summary['images']} images, {summary['objects']} objects "
            f"({labels}). Tables in Parquet (mfcurate schema), masks as COCO compressed RLE; "
            f"see DATASHEET.md and croissant.json.</p>"
            f"<table><tr><th>source</th><th>licence</th><th>images</th><th>objects</th></tr>"
            f"{rows}</table><p>Licence of this release: {e(license_spdx)} (derived from the "
            f"sources; the most restrictive wins).</p>")


def merge_metadata(user: Mapping[str, Any], *, resolution: Resolution,
                   sources: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any],
                   version: str) -> dict[str, Any]:
    """Zenodo deposit metadata: the publisher's fields plus what mfcurate knows.

    A ``license`` in the publisher's file is accepted only if it keeps every condition of
    the sources (upward override), like ``--license``.

    Raises:
        UsageError: the file's licence would weaken the sources' licences.
    """
    md: dict[str, Any] = {k: v for k, v in user.items()}
    md["upload_type"] = "dataset"
    lic = resolution.license
    if user.get("license"):
        chosen = parse_license(str(user["license"]))
        if not chosen.covers(resolution.license):
            raise UsageError(f"metadata licence {user['license']} is less restrictive than "
                             f"the sources allow ({resolution.license.spdx})")
        lic = chosen
    md["license"] = lic.zenodo_id
    md.setdefault("access_right", "open")
    md.setdefault("publication_date", dt.date.today().isoformat())
    md["version"] = str(user.get("version") or version)
    related = [dict(r) for r in user.get("related_identifiers", [])]
    seen = {str(r.get("identifier", "")).lower() for r in related}
    for _, info in sorted(sources.items()):
        doi = str(info.get("doi") or "").strip()
        if doi and doi.lower() not in seen:
            related.append({"identifier": doi, "relation": "isDerivedFrom",
                            "resource_type": "dataset"})
            seen.add(doi.lower())
    md["related_identifiers"] = related
    kws = list(user.get("keywords", []))
    for k in DEFAULT_KEYWORDS:
        if k not in kws:
            kws.append(k)
    md["keywords"] = kws
    generated = contents_html(summary, sources, lic.spdx)
    desc = str(user.get("description") or "")
    md["description"] = (f"{desc}\n{generated}" if desc else generated)
    return md


def check_deposit_metadata(md: Mapping[str, Any], where: str = "metadata") -> list[str]:
    """Problems that Zenodo would refuse at publish time (empty when complete)."""
    problems = []
    if not str(md.get("title") or "").strip():
        problems.append("title is missing")
    creators = md.get("creators") or []
    if not creators:
        problems.append("creators is missing (list of {name: 'Family, Given', ...})")
    elif not all(isinstance(c, Mapping) and str(c.get("name") or "").strip()
                 for c in creators):
        problems.append("every creator needs a name ('Family, Given')")
    if md.get("access_right", "open") not in _ACCESS:
        problems.append(f"access_right must be one of {', '.join(sorted(_ACCESS))}")
    return [f"{where}: {p}" for p in problems]
