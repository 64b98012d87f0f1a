"""MIDOG 2021 adapter (``mfcurate ingest midog2021 ROOT``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from mfcurate.adapters import register
from mfcurate.adapters.base import SourceInfo
from mfcurate.adapters.midogpp import MIDOGpp

#: Scanner of each block of 50 image ids (MIDOG 2021 training set).
_SCANNERS = ((1, 50, "Hamamatsu XR"), (51, 100, "Hamamatsu S360"), (101, 150, "Aperio CS2"),
             (151, 200, "Leica GT450"))


@register
class MIDOG2021(MIDOGpp):
    """MIDOG 2021 challenge training set: 200 human breast-cancer regions, 150 labelled.

    **Source card.**  Aubreville et al., "Mitosis domain generalization in histopathology
    images - The MIDOG challenge", Med Image Anal 84:102699 (2023),
    doi 10.1016/j.media.2022.102699.  Annotations: DeepMicroscopy/MIDOG ``databases/``;
    images on Zenodo (record 4643381).  Licence: CC BY-NC-ND 2.0 (declared in the JSON).

    **Layout under ROOT**: ``MIDOG.json`` or ``MIDOG.sqlite`` (also under ``databases/``),
    images ``001.tiff ... 200.tiff`` (or under ``images/``).

    **Counts**: 150 labelled images, 1,721 mitotic figures, 2,714 imposters.

    **Quirks**: the same xyxy boxes as MIDOG++; ids 151-200 (Leica GT450) carry no labels and
    are not images of the dataset; there is no cross-validation csv, so every image is
    ``train``; the JSON has no ``labels`` votes, the SQLite has them (with the ``RetinaNet``
    machine person, excluded).  The annotations are a strict subset of MIDOG++.
    """

    key: ClassVar[str] = "midog2021"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="MIDOG 2021",
        citation="Aubreville M, et al. Mitosis domain generalization in histopathology images "
                 "- The MIDOG challenge. Med Image Anal 84, 102699 (2023).",
        doi="10.1016/j.media.2022.102699",
        homepage="https://github.com/DeepMicroscopy/MIDOG",
        license="CC-BY-NC-ND-2.0",
        annotation_kind="box",
        nominal_mpp=0.25,
    )
    json_names: ClassVar[tuple[str, ...]] = ("MIDOG.json", "databases/MIDOG.json")
    sqlite_names: ClassVar[tuple[str, ...]] = ("MIDOG.sqlite", "databases/MIDOG.sqlite")

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return [*cls.json_names, *cls.sqlite_names]

    def locate_xval(self) -> Path | None:
        return None

    def labelled(self, image_id: int, xval: dict[int, dict[str, str]],
                 annotated: set[int]) -> bool:
        return 1 <= image_id <= 150

    def default_split(self) -> str:
        return "train"

    def default_species(self) -> str | None:
        return "human"

    def default_tumour(self, image_id: int) -> str | None:
        return "human breast cancer"

    def default_scanner(self, image_id: int) -> str | None:
        for lo, hi, name in _SCANNERS:
            if lo <= image_id <= hi:
                return name
        return None
