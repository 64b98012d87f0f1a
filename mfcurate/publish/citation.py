"""``CITATION.cff`` (Citation File Format 1.2.0) for the release and its sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml


def _person(creator: Mapping[str, Any]) -> dict[str, Any]:
    name = str(creator["name"])
    out: dict[str, Any]
    if "," in name:
        family, given = (s.strip() for s in name.split(",", 1))
        out = {"family-names": family, "given-names": given}
    else:
        out = {"name": name}
    if creator.get("affiliation"):
        out["affiliation"] = str(creator["affiliation"])
    if creator.get("orcid"):
        out["orcid"] = f"https://orcid.org/{creator['orcid']}"
    return out


def _reference(key: str, src: Mapping[str, Any]) -> dict[str, Any]:
    citation = str(src.get("citation") or src.get("name") or key)
    authors, _, title = citation.partition(". ")
    ref: dict[str, Any] = {"type": "dataset", "title": (title or citation).strip(),
                           "authors": [{"name": (authors if title else src.get("name", key))
                                        .strip() or key}]}
    if src.get("doi"):
        ref["doi"] = str(src["doi"])
    if src.get("homepage"):
        ref["url"] = str(src["homepage"])
    if src.get("license") and str(src["license"]).lower() != "unknown":
        ref["license"] = str(src["license"])
    return ref


def build_citation(*, title: str, version: str, date_released: str, license_spdx: str,
                   creators: Sequence[Mapping[str, Any]], sources: Mapping[str, Mapping[str, Any]],
                   doi: str | None = None, keywords: Sequence[str] = (),
                   abstract: str = "") -> str:
    """The ``CITATION.cff`` text (YAML).

    Args:
        title: release title.
        version: release version.
        date_released: ``YYYY-MM-DD``.
        license_spdx: SPDX id of the release licence.
        creators: Zenodo-style creators ("Family, Given" names).
        sources: manifest source entries; each becomes a reference the release derives from.
        doi: the release DOI when known.
        keywords: keywords.
        abstract: short abstract.
    """
    doc: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": "If you use this dataset, please cite it and the source datasets listed "
                   "under references.",
        "type": "dataset",
        "title": title,
        "version": version,
        "date-released": date_released,
        "license": license_spdx,
        "authors": [_person(c) for c in creators] or [{"name": "mfcurate users"}],
    }
    if doi:
        doc["doi"] = doi
    if abstract:
        doc["abstract"] = abstract
    if keywords:
        doc["keywords"] = list(keywords)
    doc["references"] = [_reference(k, s) for k, s in sorted(sources.items())]
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))
