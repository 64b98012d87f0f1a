"""CMC adapter: canine mammary carcinoma WSIs (``mfcurate ingest cmc ROOT``)."""

from __future__ import annotations

from typing import ClassVar

from mfcurate.adapters import register
from mfcurate.adapters._sliderunner_source import SlideRunnerWSISource
from mfcurate.adapters.base import SourceInfo
from mfcurate.schemas.vocab import Label


def _db(name: str) -> tuple[str, ...]:
    return (name, f"databases/{name}")


@register
class CMC(SlideRunnerWSISource):
    """MITOS_WSI_CMC: 21 canine mammary carcinoma whole-slide images, SlideRunner labels.

    **Source card.**  Aubreville M, Bertram CA, Donovan TA, et al., "A completely annotated
    whole slide image dataset of canine breast cancer to aid human breast cancer research",
    Sci Data 7:417 (2020), doi 10.1038/s41597-020-00756-z.  Databases: GitHub
    DeepMicroscopy/MITOS_WSI_CMC ``databases/``; slides (21 Aperio ScanScope CS2 ``.svs``,
    about 37 GB, 0.25 µm/px) on figshare.  Licence: the repository has no licence file and
    the figshare licence was not checked, so it is recorded as ``unknown``: check it before
    redistributing.

    **Layout under ROOT**: one of ``MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite`` (default; what
    OMG-Net used), ``MITOS_WSI_CMC_CODAEL_TR.sqlite`` (older spelling ``..._COADEL_TR``),
    ``MITOS_WSI_CMC_ODAEL_TR.sqlite``, ``MITOS_WSI_CMC_MEL.sqlite`` (each also under
    ``databases/``); the slides ``<hash>.svs`` in ROOT or ``WSI/``, ``slides/``, ``images/``.

    **Counts** (repo notebook, not re-counted here: the DBs are not in the saved data):
    CODAEL 13,907 mitotic figures / 36,379 look-alikes (10,495 / 3,412 MF train / test);
    ODAEL 14,151 / 36,135; MEL 13,342 / 26,526.

    **Quirks handled**: class ids are per database (CMC 1 = mitotic figure look-alike,
    2 = mitotic figure; the ``_ROI`` variant adds tumour-region polygons): labels go by
    case-insensitive class name, then by this id table; only type-1 spots are cells (regions
    are skipped); ``deleted`` rows are skipped where the column exists; columns are selected
    by name (old and new schema); REAL coordinates are kept; the DB is opened read-only.
    The split is by slide *file name*: the 7 test slides of the README, with its erratum
    applied (``4eee7b944ad5e46c60ce.svs`` is test, ``fa4959e484beec77543b.svs`` is train);
    never the DB-specific ``Slides.uid`` lists of the original code.  Point annotations get
    a ``point_box_um`` box through the slide's µm/px (0.25 µm/px when the slide is absent).

    **Regions**: the ``_ROI`` variant's polygons (classes "Tumor region" and "Exclude from
    tumor region", matched by case-insensitive name) become the ``regions`` table (tumour,
    exclude), which ``harvest --within tumour-region`` uses.

    Options: ``database`` = ``codael-roi`` | ``codael`` | ``odael`` | ``mel`` or a path to a
    SlideRunner ``.sqlite`` file.
    """

    key: ClassVar[str] = "cmc"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="MITOS_WSI_CMC (canine mammary carcinoma)",
        citation="Aubreville M, Bertram CA, Donovan TA, Marzahl C, Maier A, Klopfleisch R. "
                 "A completely annotated whole slide image dataset of canine breast cancer to "
                 "aid human breast cancer research. Sci Data 7, 417 (2020).",
        doi="10.1038/s41597-020-00756-z",
        homepage="https://github.com/DeepMicroscopy/MITOS_WSI_CMC",
        license="unknown",
        annotation_kind="centroid",
        nominal_mpp=0.25,
    )
    databases: ClassVar[dict[str, tuple[str, ...]]] = {
        "codael-roi": _db("MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite"),
        "codael": _db("MITOS_WSI_CMC_CODAEL_TR.sqlite") + _db("MITOS_WSI_CMC_COADEL_TR.sqlite"),
        "odael": _db("MITOS_WSI_CMC_ODAEL_TR.sqlite"),
        "mel": _db("MITOS_WSI_CMC_MEL.sqlite"),
    }
    class_ids: ClassVar[dict[int, Label]] = {1: Label.MITOTIC_LIKE, 2: Label.MITOTIC_FIGURE}
    #: README test list with the erratum applied (4eee7b944ad5e46c60ce is test).
    test_slides: ClassVar[frozenset[str]] = frozenset({
        "4eee7b944ad5e46c60ce", "e09512d530d933e436d5", "2d56d1902ca533a5b509",
        "13528f1921d4f1f15511", "69a02453620ade0edefd", "b1bdee8e5e3372174619",
        "022857018aa597374b6c"})
    tumour_type: ClassVar[str | None] = "canine mammary carcinoma"
    scanner: ClassVar[str | None] = "Aperio ScanScope CS2"
