"""One reader abstraction over whole-slide and plain images.

``open_image(path)`` picks a backend: OpenSlide for vendor formats and pyramidal TIFFs that
OpenSlide recognises (``.svs``, ``.ndpi``, ``.mrxs``, ``.scn``, ``.vms``, ``.bif``, tiled
``.tif/.tiff``), tifffile for other TIFFs (including OME-TIFF), and Pillow for PNG/JPEG/BMP.
Every backend reads *regions* so a 100k x 100k slide is never decoded whole (the plain-image
backends do decode their file, which is fine for the region-sized images they are used for).

Arrays are ``(rows, cols, 3)`` uint8 RGB; coordinates are level-0 pixels, x = column.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mfcurate.errors import SourceFormatError

RGBArray = npt.NDArray[np.uint8]

_OPENSLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
_PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
#: Most pixels a non-tiled TIFF level may have to be decoded whole (a 32,768 px square).
MAX_DECODE_PIXELS = 1 << 30
#: Side of the region :func:`check_readable` decodes from tiled images.
CHECK_TILE_PX = 256


@runtime_checkable
class ImageSource(Protocol):
    """What every image backend offers.

    Attributes:
        width: level-0 columns.
        height: level-0 rows.
        mpp_x: µm per pixel along x, or None when the file does not say.
        mpp_y: µm per pixel along y, or None.
        vendor: backend/vendor name (``"aperio"``, ``"generic-tiff"``, ``"png"``...).
        level_dimensions: ``(width, height)`` per pyramid level, level 0 first.
        level_downsamples: downsample factor per level.
    """

    width: int
    height: int
    mpp_x: float | None
    mpp_y: float | None
    vendor: str
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        """Read a ``(h, w, 3)`` region whose top-left is level-0 ``(x, y)``.

        ``w`` and ``h`` are in pixels *of the requested level*.  Pixels outside the image
        are white (glass).
        """
        ...

    def thumbnail(self, max_size: int) -> tuple[RGBArray, float]:
        """Return an RGB thumbnail whose longest side is at most ``max_size`` and its scale.

        The scale is level-0 pixels per thumbnail pixel.
        """
        ...

    def close(self) -> None:
        """Release file handles."""
        ...


class _Base:
    width: int
    height: int
    mpp_x: float | None
    mpp_y: float | None
    vendor: str
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        raise NotImplementedError

    def best_level(self, downsample: float) -> int:
        """Largest pyramid level whose downsample does not exceed ``downsample``."""
        best = 0
        for i, d in enumerate(self.level_downsamples):
            if d <= downsample * 1.0001:
                best = i
        return best

    def thumbnail(self, max_size: int) -> tuple[RGBArray, float]:
        import cv2

        scale = max(self.width, self.height) / float(max_size)
        scale = max(scale, 1.0)
        level = self.best_level(scale)
        lw, lh = self.level_dimensions[level]
        region = self.read_region(0, 0, lw, lh, level=level)
        tw = max(1, round(self.width / scale))
        th = max(1, round(self.height / scale))
        if region.shape[1] != tw or region.shape[0] != th:
            region = np.asarray(cv2.resize(region, (tw, th), interpolation=cv2.INTER_AREA),
                                dtype=np.uint8)
        return np.ascontiguousarray(region), self.width / tw

    def close(self) -> None:
        return None

    def __enter__(self) -> _Base:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _paste(arr: RGBArray, x: int, y: int, w: int, h: int) -> RGBArray:
    """Crop ``arr`` to the window, padding with white outside it."""
    out = np.full((h, w, 3), 255, dtype=np.uint8)
    H, W = arr.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, W), min(y + h, H)
    if x1 > x0 and y1 > y0:
        out[y0 - y:y1 - y, x0 - x:x1 - x] = arr[y0:y1, x0:x1, :3]
    return out


class ArrayImage(_Base):
    """An in-memory image (tests, synthetic data, registration intermediates).

    Args:
        array: ``(rows, cols, 3)`` uint8 RGB.
        mpp: µm per pixel (both axes), or None.
        vendor: name reported as ``vendor``.
    """

    def __init__(self, array: RGBArray, mpp: float | None = None, vendor: str = "array") -> None:
        if array.ndim != 3 or array.shape[2] < 3:
            raise ValueError(f"expected an (rows, cols, 3) array, got shape {array.shape}")
        self.array = np.ascontiguousarray(array[:, :, :3], dtype=np.uint8)
        self.height, self.width = self.array.shape[:2]
        self.mpp_x = self.mpp_y = mpp
        self.vendor = vendor
        self.level_dimensions = ((self.width, self.height),)
        self.level_downsamples = (1.0,)

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        if level != 0:
            raise ValueError("ArrayImage has a single level")
        return _paste(self.array, x, y, w, h)


class OpenSlideImage(_Base):
    """OpenSlide backend (vendor formats and pyramidal TIFF)."""

    def __init__(self, path: Path) -> None:
        import openslide

        try:
            self._slide = openslide.OpenSlide(str(path))
        except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError) as exc:
            raise SourceFormatError(path, f"OpenSlide cannot read it ({exc})") from exc
        props = self._slide.properties
        self.width, self.height = self._slide.dimensions
        self.mpp_x = _float_or_none(props.get(openslide.PROPERTY_NAME_MPP_X))
        self.mpp_y = _float_or_none(props.get(openslide.PROPERTY_NAME_MPP_Y))
        self.vendor = str(props.get(openslide.PROPERTY_NAME_VENDOR, "unknown"))
        self.level_dimensions = tuple(tuple(d) for d in self._slide.level_dimensions)  # type: ignore[misc]
        self.level_downsamples = tuple(float(d) for d in self._slide.level_downsamples)
        self.properties = dict(props)

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        img = self._slide.read_region((int(x), int(y)), int(level), (int(w), int(h)))
        rgba = np.asarray(img, dtype=np.uint8)
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
        rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(rgb.round().astype(np.uint8))

    def close(self) -> None:
        self._slide.close()


class TiffImage(_Base):
    """tifffile backend for TIFFs OpenSlide does not take (OME-TIFF, plain strips)."""

    def __init__(self, path: Path) -> None:
        import tifffile

        self._path = path
        try:
            self._tif = tifffile.TiffFile(str(path))
            series = self._tif.series[0]
            levels = series.levels if series.levels else [series]
            self._levels = levels
            shape0 = levels[0].shape
        except Exception as exc:
            raise SourceFormatError(path, f"not a readable TIFF ({exc})") from exc
        axes = levels[0].axes
        self._axes = axes
        self.height = int(shape0[axes.index("Y")])
        self.width = int(shape0[axes.index("X")])
        dims = []
        for lv in levels:
            dims.append((int(lv.shape[axes.index("X")]), int(lv.shape[axes.index("Y")])))
        self.level_dimensions = tuple(dims)
        self.level_downsamples = tuple(self.width / d[0] for d in dims)
        self.mpp_x, self.mpp_y = _tiff_mpp(self._tif)
        self.vendor = "ome-tiff" if self._tif.is_ome else "tiff"
        self._cache: dict[int, RGBArray] = {}

    def _level_array(self, level: int) -> RGBArray:
        if level not in self._cache:
            w, h = self.level_dimensions[level]
            if w * h > MAX_DECODE_PIXELS:
                raise SourceFormatError(self._path, f"level {level} is {w} x {h} "
                                        f"px, too large to decode whole (limit "
                                        f"{MAX_DECODE_PIXELS:,} px); store it as a tiled "
                                        "pyramidal TIFF")
            arr = np.asarray(self._levels[level].asarray())
            axes = self._axes
            if "S" in axes and axes.index("S") == 0:
                arr = np.moveaxis(arr, 0, -1)
            if arr.ndim == 2:
                arr = np.repeat(arr[:, :, None], 3, axis=2)
            if arr.dtype != np.uint8:
                arr = np.clip(arr / max(float(arr.max()), 1.0) * 255.0, 0, 255).astype(np.uint8)
            self._cache[level] = arr[:, :, :3]
        return self._cache[level]

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        ds = self.level_downsamples[level]
        return _paste(self._level_array(level), round(x / ds), round(y / ds), w, h)

    def close(self) -> None:
        self._tif.close()


def _open_pil(path: Path) -> Any:
    """``PIL.Image.open`` with one-line errors: unreadable, or over the pixel limit.

    Pillow refuses (``DecompressionBombError``) an image over twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` (179 M pixels by default, a 13,000 px square) before
    decoding it; that is the limit for plain images here (warnings below it are silenced).
    """
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as exc:
            raise SourceFormatError(path, f"image too large to decode safely ({exc}); store "
                                          "it as a tiled pyramidal TIFF") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise SourceFormatError(path, f"not a readable image ({exc})") from exc


class PillowImage(_Base):
    """Pillow backend for PNG, JPEG, BMP."""

    def __init__(self, path: Path) -> None:
        try:
            with _open_pil(path) as im:
                self._info = dict(im.info)
                self.array = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise SourceFormatError(path, f"not a readable image ({exc})") from exc
        self.height, self.width = self.array.shape[:2]
        mpp = _dpi_mpp(self._info.get("dpi"))
        self.mpp_x = self.mpp_y = mpp
        self.vendor = path.suffix.lower().lstrip(".")
        self.level_dimensions = ((self.width, self.height),)
        self.level_downsamples = (1.0,)

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> RGBArray:
        return _paste(self.array, x, y, w, h)


def _dpi_mpp(dpi: Any) -> float | None:
    """µm/px of a Pillow ``dpi`` entry (None when absent, tiny or not a number)."""
    try:
        d = float(dpi[0])
    except (TypeError, ValueError, IndexError):
        return None
    return 25400.0 / d if math.isfinite(d) and d > 1.5 else None


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _tiff_mpp(tif: Any) -> tuple[float | None, float | None]:
    """µm/px from OME PhysicalSize, an Aperio description, or the TIFF resolution tags."""
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            for el in root.iter():
                if el.tag.endswith("Pixels"):
                    px = _float_or_none(el.get("PhysicalSizeX"))
                    py = _float_or_none(el.get("PhysicalSizeY"))
                    unit = el.get("PhysicalSizeXUnit", "µm")
                    if px and unit in ("µm", "um", "micron"):
                        return px, py or px
        except ET.ParseError:
            pass
    page = tif.pages[0]
    desc = str(page.description or "")
    if "MPP" in desc:
        for part in desc.split("|"):
            if part.strip().startswith("MPP"):
                v = _float_or_none(part.split("=")[-1])
                if v:
                    return v, v
    tags = page.tags
    if "XResolution" in tags and "ResolutionUnit" in tags:
        res_unit = int(tags["ResolutionUnit"].value)
        num, den = tags["XResolution"].value
        res = num / den if den else 0
        if res > 0 and res_unit in (2, 3):
            um_per_unit = 25400.0 if res_unit == 2 else 10000.0
            mpp = um_per_unit / res
            if 0.01 < mpp < 100:
                return mpp, mpp
    return None, None


def open_image(path: Path | str) -> _Base:
    """Open an image or slide with the right backend.

    Raises:
        FileNotFoundError: the file does not exist.
        SourceFormatError: no backend can read it.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix in _OPENSLIDE_SUFFIXES:
        return OpenSlideImage(p)
    if suffix in _TIFF_SUFFIXES:
        import openslide

        vendor = None
        try:
            vendor = openslide.OpenSlide.detect_format(str(p))
        except openslide.OpenSlideError:
            vendor = None
        if vendor and vendor != "generic-tiff" and not p.name.lower().endswith(".ome.tif"):
            return OpenSlideImage(p)
        if vendor == "generic-tiff":
            img = OpenSlideImage(p)
            if img.mpp_x is None:
                mx, my = _tiff_mpp_from_path(p)
                img.mpp_x, img.mpp_y = mx, my
            return img
        return TiffImage(p)
    if suffix in _PIL_SUFFIXES:
        return PillowImage(p)
    return OpenSlideImage(p)


def _tiff_mpp_from_path(p: Path) -> tuple[float | None, float | None]:
    import tifffile

    with tifffile.TiffFile(str(p)) as tif:
        return _tiff_mpp(tif)


@dataclass(frozen=True)
class ImageInfo:
    """Metadata read from an image file header."""

    width: int
    height: int
    mpp_x: float | None
    mpp_y: float | None
    vendor: str
    is_wsi: bool


def probe_image(path: Path | str) -> ImageInfo:
    """Read size, µm/px and vendor of an image without decoding its pixels (where possible)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _PIL_SUFFIXES:
        with _open_pil(p) as im:
            dpi = im.info.get("dpi")
            mpp = _dpi_mpp(dpi)
            return ImageInfo(im.width, im.height, mpp, mpp, suffix.lstrip("."), False)
    img = open_image(p)
    try:
        is_wsi = len(img.level_dimensions) > 1 or img.width * img.height > 20000 * 20000 \
            or suffix in _OPENSLIDE_SUFFIXES
        return ImageInfo(img.width, img.height, img.mpp_x, img.mpp_y, img.vendor, is_wsi)
    finally:
        img.close()


def check_readable(path: Path | str) -> str | None:
    """Why an image whose header was read cannot be used, or None when it can.

    Cheap checks, no full decode of a slide:

    * TIFF-based files (``.tif``, ``.tiff``, ``.svs``): every strip/tile of the first page
      must lie inside the file (a truncated copy fails this);
    * plain images (PNG/JPEG/BMP, bounded by the decompression-bomb limit): a full decode;
    * tiled/whole-slide images: a decode of the first ``CHECK_TILE_PX`` square at level 0;
    * TIFFs read whole (not tiled, so not OpenSlide's): at most :data:`MAX_DECODE_PIXELS`.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in _PIL_SUFFIXES:
            with _open_pil(p) as im:
                im.load()
            return None
        if suffix in _TIFF_SUFFIXES | {".svs"}:
            why = _tiff_extent_problem(p)
            if why:
                return why
        img = open_image(p)
        try:
            if isinstance(img, OpenSlideImage):
                img.read_region(0, 0, min(CHECK_TILE_PX, img.width),
                                min(CHECK_TILE_PX, img.height))
            elif isinstance(img, TiffImage) and img.width * img.height > MAX_DECODE_PIXELS:
                return (f"{img.width} x {img.height} px in one untiled level, too large to "
                        f"decode whole (limit {MAX_DECODE_PIXELS:,} px); store it as a tiled "
                        "pyramidal TIFF")
        finally:
            img.close()
    except SourceFormatError as exc:
        return exc.detail
    except Exception as exc:  # any decoder failure means "unreadable"
        return f"cannot decode ({type(exc).__name__}: {exc})"
    return None


def _tiff_extent_problem(p: Path) -> str | None:
    """Why the first page's strips/tiles do not fit in the file (None when they do)."""
    import tifffile

    size = p.stat().st_size
    with tifffile.TiffFile(str(p)) as tif:
        page = tif.pages[0]
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        end = max((int(o) + int(c) for o, c in zip(offsets, counts, strict=False)), default=0)
    if end > size:
        return f"truncated: its pixel data runs to byte {end:,} but the file has {size:,}"
    return None
