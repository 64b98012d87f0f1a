"""A label round on disk: ``round.json``, the rater packages and the vote ledger.

Layout of a round folder::

    ROUND/
      round.json                       # id, dataset, raters, objects, each rater's order
      votes.csv                        # the ledger: every imported vote (rater, file, time)
      packages/<rater>/images.txt      # project-free image list (one path per line)
      packages/<rater>/images.csv      # image key, path, size, µm/px, GeoJSON file
      packages/<rater>/geojson/*.geojson   # one QuPath FeatureCollection per image
      packages/<rater>/<rater>-sheet.csv   # the same objects as a spreadsheet
      resolution.csv, agreement.json, agreement.png   # written by ``resolve``

Each rater's features carry ids derived from (round, rater, object key), so an imported
file tells whose package it came from even when it was renamed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mfcurate.dataset import atomic_write_json
from mfcurate.errors import SourceFormatError

ROUND_FILE = "round.json"
FORMAT = "mfcurate-label-round"
_NAMESPACE = uuid.UUID("0b9d7d0e-2f4c-4f61-9a55-2b7f1c3e8d42")


@dataclass
class RoundObject:
    """One object under review.

    Attributes:
        object_key: the dataset object (new detections get theirs in the ``detect`` part).
        image_key: its image.
        source: its source.
        centroid_xy: centre, level-0 px.
        new: whether the round created it from a detector candidate.
        score: the detector's score (None for objects chosen otherwise).
        why: ``detector``, ``uncertain``, ``flagged`` or ``sample``.
    """

    object_key: str
    image_key: str
    source: str
    centroid_xy: tuple[float, float]
    new: bool = False
    score: float | None = None
    why: str = "sample"


@dataclass
class Round:
    """What ``label-round new`` decided (see the module docstring)."""

    round_id: str
    dataset: str
    raters: list[str]
    objects: list[RoundObject]
    order: dict[str, list[str]]
    seed: int = 0
    created: str = ""
    selection: dict[str, Any] = field(default_factory=dict)

    def feature_id(self, rater: str, object_key: str) -> str:
        """Feature UUID of an object in one rater's package."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.round_id}|{rater}|{object_key}"))

    def id_index(self) -> dict[str, tuple[str, str]]:
        """``feature id -> (rater, object key)`` over every package (computed once)."""
        cached: dict[str, tuple[str, str]] | None = self.__dict__.get("_ids")
        if cached is None:
            cached = {self.feature_id(r, o.object_key): (r, o.object_key)
                      for r in self.raters for o in self.objects}
            self.__dict__["_ids"] = cached
        return cached

    def by_key(self) -> dict[str, RoundObject]:
        """``object key -> RoundObject``."""
        return {o.object_key: o for o in self.objects}

    def save(self, folder: Path | str) -> Path:
        """Write ``round.json`` atomically."""
        doc = {"format": FORMAT, **asdict(self)}
        path = Path(folder) / ROUND_FILE
        atomic_write_json(path, doc)
        return path


def load_round(folder: Path | str) -> Round:
    """Read ``ROUND/round.json``.

    Raises:
        SourceFormatError: missing or malformed (names the file).
    """
    path = Path(folder) / ROUND_FILE
    if not path.exists():
        raise SourceFormatError(path, "not a label-round folder (no round.json); create one "
                                      "with `mfcurate label-round new`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {FORMAT!r}")
        objects = [RoundObject(**{**o, "centroid_xy": tuple(o["centroid_xy"])})
                   for o in doc["objects"]]
        return Round(round_id=str(doc["round_id"]), dataset=str(doc["dataset"]),
                     raters=[str(r) for r in doc["raters"]], objects=objects,
                     order={str(k): list(v) for k, v in doc["order"].items()},
                     seed=int(doc.get("seed", 0)), created=str(doc.get("created", "")),
                     selection=dict(doc.get("selection", {})))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SourceFormatError(path, f"malformed round file ({exc})") from None
