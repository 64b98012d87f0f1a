"""Licence of a release derived from the licences of its sources.

Creative Commons licences are treated as sets of conditions (BY, SA, NC, ND; CC0 has none).
A derivative that includes several sources must honour every source's conditions, so the
release licence is the CC 4.0 licence with the *union* of their conditions ("the most
restrictive wins").  A user-chosen ``--license`` may only add conditions (override upward).
ShareAlike and NoDerivatives cannot be combined: such a mix cannot be released as one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mfcurate.errors import MfcurateError, UsageError

_ORDER = ("BY", "NC", "SA", "ND")


class LicenseError(MfcurateError, ValueError):
    """The sources' licences cannot be combined, or a licence is not recognised."""


@dataclass(frozen=True)
class License:
    """A Creative Commons licence as its conditions.

    Attributes:
        conditions: subset of {"BY", "NC", "SA", "ND"}; empty for CC0.
    """

    conditions: frozenset[str]

    @property
    def spdx(self) -> str:
        """SPDX id, e.g. ``CC-BY-NC-SA-4.0`` (``CC0-1.0`` without conditions)."""
        if not self.conditions:
            return "CC0-1.0"
        return "CC-" + "-".join(c for c in _ORDER if c in self.conditions) + "-4.0"

    @property
    def zenodo_id(self) -> str:
        """Zenodo's licence id (lower-case SPDX), e.g. ``cc-by-nc-sa-4.0``."""
        return self.spdx.lower()

    @property
    def url(self) -> str:
        """The licence deed URL."""
        if not self.conditions:
            return "https://creativecommons.org/publicdomain/zero/1.0/"
        slug = "-".join(c.lower() for c in _ORDER if c in self.conditions)
        return f"https://creativecommons.org/licenses/{slug}/4.0/"

    def covers(self, other: License) -> bool:
        """True when this licence is at least as restrictive as ``other``."""
        return self.conditions >= other.conditions


def parse_license(text: str) -> License:
    """Parse SPDX ids, Zenodo ids, CC names and CC URLs.

    Examples:
        >>> parse_license("CC BY-NC-SA 4.0").spdx
        'CC-BY-NC-SA-4.0'
        >>> parse_license("https://creativecommons.org/publicdomain/zero/1.0/").spdx
        'CC0-1.0'

    Raises:
        LicenseError: not a Creative Commons licence.
    """
    t = text.strip().lower()
    if re.search(r"(^|[^a-z])cc-?0|publicdomain/zero|public domain", t):
        return License(frozenset())
    m = re.search(r"creativecommons\.org/licenses/([a-z-]+)/", t)
    parts: list[str]
    if m:
        parts = m.group(1).split("-")
    else:
        m2 = re.fullmatch(r"(?:cc|creative commons)[\s_-]*"
                          r"((?:by|nc|sa|nd)(?:[\s_-]+(?:by|nc|sa|nd))*)"
                          r"(?:[\s_-]*\d(?:\.\d)?)?(?:[\s_-]*[a-z]+)?", t)
        if not m2:
            raise LicenseError(f"licence {text!r} is not a Creative Commons licence that "
                               "mfcurate can combine (use e.g. CC0-1.0, CC-BY-4.0, "
                               "CC-BY-NC-SA-4.0)")
        parts = re.split(r"[\s_-]+", m2.group(1))
    conds = frozenset(p.upper() for p in parts if p)
    if "BY" not in conds or not conds <= set(_ORDER):
        raise LicenseError(f"licence {text!r} is not a recognised Creative Commons licence")
    if {"SA", "ND"} <= conds:
        raise LicenseError(f"licence {text!r} combines ShareAlike and NoDerivatives")
    return License(conds)


@dataclass
class Resolution:
    """The release licence and how it was reached.

    Attributes:
        license: the release licence.
        derived: the licence derived from the sources alone.
        per_source: source key -> its licence text as the manifest gives it.
        warnings: things the datasheet and the user should know.
    """

    license: License
    derived: License
    per_source: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def resolve_license(source_licenses: Mapping[str, str], override: str | None = None
                    ) -> Resolution:
    """Combine the sources' licences; apply an upward-only override.

    Args:
        source_licenses: source key -> licence text (from the dataset manifest).
        override: a licence the user asks for (``--license``); must keep every condition.

    Raises:
        LicenseError: a source licence is unknown or not combinable.
        UsageError: the override would drop a condition of the sources.
    """
    conds: set[str] = set()
    warnings: list[str] = []
    unknown: list[str] = []
    for key, text in sorted(source_licenses.items()):
        if not text or text.strip().lower() in {"unknown", "none", "other"}:
            unknown.append(key)
            continue
        try:
            conds |= parse_license(text).conditions
        except LicenseError as exc:
            raise LicenseError(f"source {key!r}: {exc}; leave it out of the release "
                               "(--source to pick the others)") from None
    if {"SA", "ND"} <= conds:
        sa = [k for k, v in source_licenses.items() if "sa" in v.lower()]
        nd = [k for k, v in source_licenses.items() if "nd" in v.lower()]
        raise LicenseError(f"sources {', '.join(sa)} (ShareAlike) and {', '.join(nd)} "
                           "(NoDerivatives) cannot be released in one record; publish them "
                           "separately (export with --source)")
    derived = License(frozenset(conds))
    if unknown:
        if override is None:
            raise LicenseError(f"source(s) {', '.join(unknown)} have no known licence; check "
                               "their terms and pass --license to state the release licence")
        warnings.append(f"licence of source(s) {', '.join(unknown)} unknown; release licence "
                        f"set by the publisher to {override}")
    final = derived
    if override is not None:
        chosen = parse_license(override)
        if not chosen.covers(derived):
            missing = sorted(derived.conditions - chosen.conditions)
            raise UsageError(f"--license {override} would drop condition(s) "
                             f"{', '.join(missing)} that the sources impose; the release "
                             f"must be at least {derived.spdx}")
        final = chosen
    if "ND" in final.conditions:
        warnings.append("a source is NoDerivatives: masks derived from it are adaptations; "
                        "check with its owners that they may be distributed")
    return Resolution(final, derived, dict(source_licenses), warnings)
