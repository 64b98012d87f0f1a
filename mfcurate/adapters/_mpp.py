"""Sanity filter for the µm/px an image file header reports."""

from __future__ import annotations

from mfcurate.units import is_plausible_mpp

#: Widest pixel a microscopy image of these sources can have (µm/px; 5x is about 2 µm/px).
MAX_MICROSCOPY_MPP = 2.0


def plausible_mpp(mpp: float | None) -> float | None:
    """The header's µm/px, or None when it cannot be a microscope's.

    BMP/PNG/TIFF writers fill the resolution field with screen defaults (72 or 96 dpi, i.e.
    353 or 265 µm/px); such a value must not override a source's documented pixel size.
    The value must pass :func:`mfcurate.units.is_plausible_mpp` (finite, inside
    ``units.MPP_RANGE``) and, being a header's guess, be at most :data:`MAX_MICROSCOPY_MPP`.

    Examples:
        >>> plausible_mpp(0.2456), plausible_mpp(25400 / 72), plausible_mpp(None)
        (0.2456, None, None)
    """
    if mpp is None or not is_plausible_mpp(mpp) or mpp > MAX_MICROSCOPY_MPP:
        return None
    return float(mpp)
