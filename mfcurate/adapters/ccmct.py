"""CCMCT adapter: canine cutaneous mast cell tumour WSIs (``mfcurate ingest ccmct ROOT``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from mfcurate.adapters import register
from mfcurate.adapters._sliderunner_source import SlideRunnerWSISource
from mfcurate.adapters.base import SourceInfo
from mfcurate.errors import SourceNotFoundError
from mfcurate.schemas.vocab import Label

#: The separate region database of CCMCT (tumour, necrosis, blurred and exclusion polygons).
TUMORZONE = "MITOS_WSI_CCMCT_Tumorzone.sqlite"


def _db(name: str, *folders: str) -> tuple[str, ...]:
    return (name, *(f"{d}/{name}" for d in ("databases", *folders)))


@register
class CCMCT(SlideRunnerWSISource):
    """MITOS_WSI_CCMCT: 32 canine cutaneous mast cell tumour WSIs, SlideRunner labels.

    **Source card.**  Bertram CA, Aubreville M, Marzahl C, Maier A, Klopfleisch R, "A
    large-scale dataset for mitotic figure assessment on whole slide images of canine
    cutaneous mast cell tumor", Sci Data 6:274 (2019), doi 10.1038/s41597-019-0290-4.
    Databases: GitHub DeepMicroscopy/MITOS_WSI_CCMCT ``databases/``; slides (32 Aperio
    ScanScope CS2 ``.svs``, 0.25 µm/px) on figshare; a DICOM variant on Kaggle.  Licence:
    the official COCO export declares CC BY-NC-ND 2.0 (the repository has no licence file).

    **Layout under ROOT**: one of ``MITOS_WSI_CCMCT_ODAEL.sqlite`` (default),
    ``..._HEAEL.sqlite``, ``..._MEL.sqlite``, the Kaggle ``MITOS_WSI_CCMCT_ODAEL_train_dcm.sqlite``
    / ``..._ODAEL_test.dcm.sqlite`` (slides named ``.dcm``), or the region-only
    ``MITOS_WSI_CCMCT_Tumorzone.sqlite`` and ``HighMCAreas.sqlite`` (also under
    ``databases/`` or ``AblationStudy/databases/``); slides ``<hash>.svs`` in ROOT or
    ``WSI/``, ``slides/``, ``images/``.

    **Counts** (repo notebook; the MF databases are not in the saved data): ODAEL 44,880
    mitotic figures (22,404 train / 22,476 test), 27,965 look-alikes, 51,439 granulocytes,
    71,351 tumour cells; 262,481 annotations in all (paper).  The saved real Tumorzone and
    HighMCAreas databases cover all 32 slides and hold **no cells**: they ingest as 32 images
    and zero objects.

    **Quirks handled**: class ids are per database: CCMCT 1 = granulocyte, 2 = mitotic
    figure, 3 = tumour cell, 7 = mitotic figure look-alike (the OMG-Net reader took 1 as the
    negative class and missed the look-alikes).  Labels go by case-insensitive class name,
    then by this id table; granulocytes and tumour cells stay their own labels; region
    classes (``Tumorzone``, ``Nekrosezone``, ``10hpf selection``...) are never cells, even
    as spots.  Only type-1 spots are read (the Tumorzone DB has 113 polygons, 466 unlabelled
    type-4 special spots and 2 type-1 spots of region classes).  Old schema without
    ``deleted``/``guid``; REAL coordinates; read-only.  Split by slide file stem (11 test
    slides of the paper), so the ``.dcm`` variant splits the same way.

    **Regions**: the tumour-zone polygons live in a separate file,
    ``MITOS_WSI_CCMCT_Tumorzone.sqlite`` (old schema; 113 polygons of classes ``Tumorzone``,
    ``Nekrosezone``, ``unscharfe scan-area``, ``nicht tumorgewebe excludieren`` on the 32
    slides, plus 466 unlabelled special spots that are ignored).  It is read when it lies next
    to the annotation database or in ROOT / ``databases/`` (or is named by the ``regions``
    option) and matched to the slides by file name; its polygons become the ``regions`` table
    (tumour, necrosis, blurred, exclude), which ``harvest --within tumour-region`` uses.

    Options: ``database`` = ``odael`` | ``heael`` | ``mel`` | ``odael-train-dcm`` |
    ``odael-test-dcm`` | ``tumorzone`` | ``highmcareas`` or a path to a SlideRunner
    ``.sqlite`` file; ``regions`` = a path (relative to ROOT, or absolute) of the Tumorzone
    database, or ``none`` to read no separate region file.
    """

    key: ClassVar[str] = "ccmct"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="MITOS_WSI_CCMCT (canine cutaneous mast cell tumour)",
        citation="Bertram CA, Aubreville M, Marzahl C, Maier A, Klopfleisch R. A large-scale "
                 "dataset for mitotic figure assessment on whole slide images of canine "
                 "cutaneous mast cell tumor. Sci Data 6, 274 (2019).",
        doi="10.1038/s41597-019-0290-4",
        homepage="https://github.com/DeepMicroscopy/MITOS_WSI_CCMCT",
        license="CC-BY-NC-ND-2.0",
        annotation_kind="centroid",
        nominal_mpp=0.25,
    )
    databases: ClassVar[dict[str, tuple[str, ...]]] = {
        "odael": _db("MITOS_WSI_CCMCT_ODAEL.sqlite"),
        "heael": _db("MITOS_WSI_CCMCT_HEAEL.sqlite"),
        "mel": _db("MITOS_WSI_CCMCT_MEL.sqlite"),
        "odael-train-dcm": _db("MITOS_WSI_CCMCT_ODAEL_train_dcm.sqlite"),
        "odael-test-dcm": _db("MITOS_WSI_CCMCT_ODAEL_test.dcm.sqlite"),
        "tumorzone": _db("MITOS_WSI_CCMCT_Tumorzone.sqlite"),
        "highmcareas": _db("HighMCAreas.sqlite", "AblationStudy/databases"),
    }
    class_ids: ClassVar[dict[int, Label]] = {1: Label.GRANULOCYTE, 2: Label.MITOTIC_FIGURE,
                                             3: Label.TUMOUR_CELL, 7: Label.MITOTIC_LIKE}
    test_slides: ClassVar[frozenset[str]] = frozenset({
        "be10fa37ad6e88e1f406", "f3741e764d39ccc4d114", "c86cd41f96331adf3856",
        "552c51bfb88fd3e65ffe", "8c9f9618fcaca747b7c3", "c91a842257ed2add5134",
        "dd4246ab756f6479c841", "f26e9fcef24609b988be", "96274538c93980aad8d6",
        "add0a9bbc53d1d9bac4c", "1018715d369dd0df2fc0"})
    tumour_type: ClassVar[str | None] = "canine cutaneous mast cell tumour"
    scanner: ClassVar[str | None] = "Aperio ScanScope CS2"

    def region_databases(self) -> list[Path]:
        """The Tumorzone database (option ``regions``, else next to the DB or in ROOT)."""
        want = str(self.config.options.get("regions") or "").strip()
        if want.lower() == "none":
            return []
        if want:
            p = Path(want)
            p = p if p.is_absolute() else self.root / p
            if not p.is_file():
                raise SourceNotFoundError(self.root, [want], self.key)
            found = [p]
        else:
            cands = [self.db_path.parent / TUMORZONE,
                     *(self.root / c for c in self.databases["tumorzone"])]
            found = [c for c in cands if c.is_file()][:1]
        return [p for p in found if p.resolve() != self.db_path.resolve()]
