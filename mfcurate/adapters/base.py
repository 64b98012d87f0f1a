"""The adapter contract: every source is one read-only class behind :class:`SourceAdapter`.

An adapter only *reads*: it finds its files under the root the user gave, and yields
:class:`~mfcurate.schemas.ImageRecord` and :class:`~mfcurate.schemas.ObjectRecord` rows under
deterministic keys (``<source>/<image id>`` and ``<image key>/<annotation id>``).  The base class
builds, validates and commits the tables, so a new source is one module, one registry entry,
one fake-data generator and one page in ``docs/sources/``.
"""

from __future__ import annotations

import abc
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from mfcurate.adapters._mpp import plausible_mpp
from mfcurate.adapters.sliderunner import SlideRunnerDB, read_sliderunner
from mfcurate.errors import SourceFormatError, SourceNotFoundError, UsageError
from mfcurate.geometry import BoxXYXY, box_around, box_is_valid, clip_box
from mfcurate.io.reader import ImageInfo, check_readable, probe_image
from mfcurate.schemas.tables import (
    REGIONS_SCHEMA,
    ImageRecord,
    ObjectRecord,
    images_table,
    objects_table,
)
from mfcurate.schemas.validate import validate_images, validate_objects
from mfcurate.schemas.vocab import LabelOrigin


@dataclass(frozen=True)
class SourceInfo:
    """The source card in code: what the manifest and the publish step say about a source.

    Attributes:
        name: human-readable name.
        citation: the paper to cite (free text).
        doi: DOI of the dataset or paper (without ``https://doi.org/``).
        homepage: where users obtain the data.
        license: licence of the data, SPDX-like (``CC0-1.0``, ``CC-BY-NC-ND-2.0``...).
        annotation_kind: ``pixel``, ``centroid``, ``box``, ``polygon`` or ``ihc``.
        nominal_mpp: µm/px the source documents, used only when an image file is absent.
    """

    name: str
    citation: str
    doi: str
    homepage: str
    license: str
    annotation_kind: str
    nominal_mpp: float | None = None


@dataclass
class AdapterConfig:
    """Options common to all adapters.

    Attributes:
        point_box_um: side in µm of the square box derived for point annotations
            (default 12.5 µm, the 50 px MIDOG box at 0.25 µm/px).
        strict: when true, an annotation whose image file is missing is an error.
        probe_images: read each image file's header for its size and µm/px.
        default_mpp: µm/px to use when neither the file nor the source card gives one.
        options: adapter-specific options (documented on each adapter).
    """

    point_box_um: float = 12.5
    strict: bool = False
    probe_images: bool = True
    default_mpp: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.point_box_um, int | float) and math.isfinite(self.point_box_um)
                and self.point_box_um > 0):
            raise UsageError(f"point box side must be a positive number of µm, got "
                             f"{self.point_box_um!r}")
        if self.default_mpp is not None and not (
                isinstance(self.default_mpp, int | float) and math.isfinite(self.default_mpp)
                and self.default_mpp > 0):
            raise UsageError(f"default µm/px must be a positive number, got "
                             f"{self.default_mpp!r}")


class SourceAdapter(abc.ABC):
    """Base class of all adapters.

    Subclasses set :attr:`key` and :attr:`info`, implement :meth:`locate`,
    :meth:`iter_images` and :meth:`iter_objects`, and never write anything.

    Args:
        root: the folder as the source ships it.
        config: common options.

    Raises:
        SourceNotFoundError: the root or the annotation files are not there.
    """

    key: ClassVar[str]
    info: ClassVar[SourceInfo]

    def __init__(self, root: Path | str, config: AdapterConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config or AdapterConfig()
        self.missing_images: list[str] = []
        self.dropped: list[str] = []
        #: annotations left out because they cannot be placed: ``"<what>: <why>"`` each
        #: (NULL coordinate, unknown image id, unknown class id).
        self.skipped: list[str] = []
        #: image files present but unreadable (relative path -> why); ``file_found`` is False.
        self.unreadable: dict[str, str] = {}
        #: keys of region polygons repaired with make_valid (see :meth:`regions_table`).
        self.regions_repaired: list[str] = []
        if not self.root.exists():
            raise SourceNotFoundError(self.root, self.expected_files(), self.key)
        self.locate()

    # ------------------------------------------------------------------ contract
    @classmethod
    @abc.abstractmethod
    def expected_files(cls) -> Sequence[str]:
        """Names of the files the adapter looks for (for error messages and docs)."""

    @abc.abstractmethod
    def locate(self) -> None:
        """Find the annotation files under :attr:`root`; raise SourceNotFoundError if absent."""

    def build_image_records(self) -> Mapping[Any, ImageRecord]:
        """Source image id -> record, in a deterministic order.

        Read once through :attr:`images_by_id`; adapters implement this or override
        :meth:`iter_images`.
        """
        raise NotImplementedError(f"{type(self).__name__} builds no image records")

    @functools.cached_property
    def images_by_id(self) -> Mapping[Any, ImageRecord]:
        """The image records, built once per adapter by :meth:`build_image_records`."""
        return self.build_image_records()

    def iter_images(self) -> Iterator[ImageRecord]:
        """Yield one record per image, in a deterministic order."""
        yield from self.images_by_id.values()

    @abc.abstractmethod
    def iter_objects(self) -> Iterator[ObjectRecord]:
        """Yield one record per annotation, in a deterministic order."""

    # ------------------------------------------------------------------ helpers
    def find(self, *candidates: str) -> Path:
        """First existing path among ``candidates`` (relative to root, globs allowed)."""
        for c in candidates:
            if any(ch in c for ch in "*?["):
                hits = sorted(self.root.glob(c))
                if hits:
                    return hits[0]
            elif (self.root / c).exists():
                return self.root / c
        raise SourceNotFoundError(self.root, candidates, self.key)

    def image_key(self, source_image_id: str) -> str:
        """Deterministic image key."""
        return f"{self.key}/{source_image_id}"

    def probe(self, rel_path: str) -> ImageInfo | None:
        """Header metadata of an image file relative to the root, or None when missing.

        Missing files are remembered in :attr:`missing_images`; with ``strict`` they raise.
        A file that is there but cannot be read (bad header, truncated pixel data: see
        :func:`~mfcurate.io.reader.check_readable`) is remembered in :attr:`unreadable` and
        in :attr:`missing_images` (as ``"<path> (unreadable: <why>)"``), so later steps skip
        it (``file_found`` is False); with ``strict`` it raises.  Its header, when it could
        be read, still gives the size.
        """
        path = self.root / rel_path
        if not path.exists():
            if self.config.strict:
                raise SourceNotFoundError(self.root, [rel_path], self.key)
            self.missing_images.append(rel_path)
            return None
        if not self.config.probe_images:
            return None
        info: ImageInfo | None = None
        try:
            info = probe_image(path)
            why = check_readable(path)
        except SourceFormatError as exc:
            why = exc.detail
        if why is not None:
            if self.config.strict:
                raise SourceFormatError(path, f"unreadable image ({why})")
            self.unreadable[rel_path] = why
            self.missing_images.append(f"{rel_path} (unreadable: {why})")
        return info

    def file_ok(self, rel_path: str) -> bool:
        """Whether the image file exists and was not found unreadable (``file_found``)."""
        return rel_path not in self.unreadable and (self.root / rel_path).exists()

    def read_database(self, path: Path, **kwargs: Any) -> SlideRunnerDB:
        """Read a SlideRunner database; its left-out annotations go to :attr:`skipped`.

        Left out (by :func:`~mfcurate.adapters.sliderunner.read_sliderunner`): NULL
        coordinates, unknown slide ids, unknown class ids.
        """
        db = read_sliderunner(path, **kwargs)
        try:
            name = path.relative_to(self.root).as_posix()
        except ValueError:
            name = path.as_posix()
        self.skipped.extend(f"{name}: {p}" for p in db.problems)
        return db

    def skip(self, what: str, why: str) -> None:
        """Leave an annotation out, named and counted in :attr:`skipped`."""
        self.skipped.append(f"{what}: {why}")

    def mpp_or_default(self, mpp: float | None) -> float | None:
        """The file's µm/px, else the configured default, else the source's nominal one."""
        if mpp:
            return mpp
        return self.config.default_mpp or self.info.nominal_mpp

    def region_image(
        self,
        image_id: str,
        rel_path: str,
        *,
        split: str,
        tumour_type: str | None,
        species: str | None,
        scanner: str | None = None,
        nominal_mpp: float | None = None,
    ) -> ImageRecord:
        """Record of a region image (not a whole slide), from its file header when present.

        µm/px: the header's when plausible for a microscope (see ``plausible_mpp``), else
        ``config.default_mpp``, else ``nominal_mpp``, else the source card's nominal value.
        """
        probed = self.probe(rel_path)
        fallback = self.config.default_mpp or nominal_mpp or self.info.nominal_mpp
        mx = plausible_mpp(probed.mpp_x if probed else None) or fallback
        my = plausible_mpp(probed.mpp_y if probed else None) or mx
        return ImageRecord(
            image_key=self.image_key(image_id), source=self.key, source_image_id=image_id,
            path=rel_path, width=probed.width if probed else None,
            height=probed.height if probed else None, mpp_x=mx, mpp_y=my, scanner=scanner,
            vendor=probed.vendor if probed else None, tumour_type=tumour_type,
            species=species, is_wsi=False, split=split, fold=None, license=self.info.license,
            file_found=self.file_ok(rel_path))

    def point_box(self, x: float, y: float, mpp: float | None) -> BoxXYXY:
        """Box of side ``config.point_box_um`` (converted with ``mpp``) around a point.

        Without any µm/px, the 50 px MIDOG box is used.
        """
        half = (self.config.point_box_um / mpp / 2.0) if mpp else 25.0
        return box_around(x, y, half)

    def clipped(self, box: BoxXYXY, width: int | None, height: int | None,
                what: str) -> BoxXYXY | None:
        """Clip a box to its image; None (and a note in :attr:`dropped`) if nothing is left."""
        c = clip_box(box, width, height)
        if not box_is_valid(c):
            self.dropped.append(what)
            return None
        return c

    def point_object(
        self,
        img: ImageRecord,
        ann_id: str,
        x: float,
        y: float,
        *,
        label: str,
        source_label: str | None,
        source_file: str | None,
        votes: Sequence[dict[str, str | None]] | None = None,
        confidence: float | None = None,
        extra: str | None = None,
    ) -> ObjectRecord | None:
        """The object of a point annotation at ``(x, y)`` on ``img``.

        Its box is :meth:`point_box` through the image's µm/px, clipped to the image; None
        (and a note in :attr:`dropped`) when the box lies wholly outside the image.
        """
        key = f"{img.image_key}/{ann_id}"
        box = self.clipped(self.point_box(x, y, img.mpp_x), img.width, img.height, key)
        if box is None:
            return None
        return ObjectRecord(
            object_key=key, image_key=img.image_key, source=self.key,
            source_annotation_id=str(ann_id), source_file=source_file, label=label,
            source_label=source_label, label_origin=LabelOrigin.CENTROID.value, votes=votes,
            confidence=confidence, centroid_xy=(x, y), bbox_xyxy=box, extra=extra)

    @staticmethod
    def extra_json(**fields: Any) -> str | None:
        """Serialise adapter-specific fields for the ``extra`` column (None when empty)."""
        clean = {k: v for k, v in fields.items() if v is not None}
        return json.dumps(clean, sort_keys=True) if clean else None

    def format_error(self, path: Path, detail: str) -> SourceFormatError:
        """A :class:`SourceFormatError` naming a file under the root."""
        return SourceFormatError(path, detail)

    # ------------------------------------------------------------------ tables
    def to_tables(self) -> tuple[pa.Table, pa.Table]:
        """Read the whole source into validated ``(images, objects)`` tables."""
        images = images_table(self.iter_images())
        validate_images(images)
        objects = objects_table(self.iter_objects())
        validate_objects(objects, images)
        return images, objects

    def regions_table(self) -> pa.Table:
        """The source's region polygons (``REGIONS_SCHEMA``; empty for most sources).

        Sources that draw regions (CMC ``_ROI``, CCMCT Tumorzone) override this; it is read
        after :meth:`to_tables`, against the same image records.
        """
        return REGIONS_SCHEMA.empty_table()

    @classmethod
    def source_card(cls) -> dict[str, Any]:
        """The :class:`SourceInfo` as a dict (manifest entry, publish metadata)."""
        i = cls.info
        return {"name": i.name, "citation": i.citation, "doi": i.doi, "homepage": i.homepage,
                "license": i.license, "annotation_kind": i.annotation_kind}
