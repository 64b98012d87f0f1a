"""The resumable local state of a deposit (``PACKAGE/.publish/state.json``).

It records the API root, the deposition's id and links, which files were uploaded with which
md5, whether the metadata was set and whether the record was published, rewritten
atomically after every step.  It never holds the token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mfcurate.dataset import atomic_write_json
from mfcurate.errors import MfcurateError

STATE_VERSION = 1


class StateError(MfcurateError, ValueError):
    """The state file is unreadable or belongs to another deposit."""


@dataclass
class DepositState:
    """What a deposit has done so far.

    Attributes:
        base_url: API root the deposition lives on.
        package_fingerprint: fingerprint of the package being uploaded.
        deposition_id: id of the draft (None before it is created).
        links: the draft's ``links`` (self, bucket, files, publish, html).
        new_version_of: record id this draft is a new version of.
        uploaded: file name -> md5 of the bytes the server confirmed.
        metadata_set: the metadata PUT succeeded.
        published: the record is published.
        doi: DOI of the published record (or the reserved one).
        record_url: landing page of the record.
    """

    base_url: str
    package_fingerprint: str
    deposition_id: int | None = None
    links: dict[str, str] = field(default_factory=dict)
    new_version_of: str | None = None
    uploaded: dict[str, str] = field(default_factory=dict)
    metadata_set: bool = False
    published: bool = False
    doi: str | None = None
    record_url: str | None = None
    version: int = STATE_VERSION

    @classmethod
    def load(cls, path: Path) -> DepositState | None:
        """Read the state (None if there is none)."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise StateError(f"{path}: unreadable deposit state ({exc}); remove it or pass "
                             "--restart") from None

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        atomic_write_json(path, asdict(self))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return asdict(self)
