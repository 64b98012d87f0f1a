"""Physical units, one home: µm/px resolution and areas.

Every step that turns pixels into micrometres (areas, radii, patch scales) resolves an image's
µm/px with :func:`resolve_mpp` and converts with the helpers here; nothing assumes a value.

Resolution order (the first that is known wins):

1. ``override``: a value the user forced for this run (``--mpp``);
2. the ``images`` table (``mpp_x``/``mpp_y``, set at ingest from the file or the source's
   documented scanner value);
3. the image file's own metadata (``file_mpp``), when the table has none;
4. ``default``: the user's ``--default-mpp`` for images nobody knows;
5. otherwise :class:`MppUnknownError` naming the image.

A missing ``mpp_y`` takes ``mpp_x`` (square pixels) and vice versa.  Areas use both axes:
``area_um2 = area_px * mpp_x * mpp_y``; isotropic lengths use the geometric mean
``sqrt(mpp_x * mpp_y)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mfcurate.errors import MfcurateError

#: Plausible µm/px of a brightfield scan (0.05: beyond 100x oil; 20: a 0.5x overview).
MPP_RANGE = (0.05, 20.0)


class MppUnknownError(MfcurateError):
    """An image has no µm/px and no default was given."""


@dataclass(frozen=True)
class Mpp:
    """µm per level-0 pixel of one image.

    Attributes:
        x: µm/px along x (columns).
        y: µm/px along y (rows).
        origin: where it came from: ``override``, ``table``, ``file`` or ``default``.
    """

    x: float
    y: float
    origin: str = "table"

    @property
    def iso(self) -> float:
        """Isotropic µm/px (geometric mean), for lengths that are not along one axis."""
        return math.sqrt(self.x * self.y)

    @property
    def pixel_area_um2(self) -> float:
        """Area of one pixel in µm²."""
        return self.x * self.y

    def um_to_px(self, um: float) -> float:
        """An isotropic length in µm as level-0 px."""
        return um / self.iso

    def px_to_um(self, px: float) -> float:
        """An isotropic length in level-0 px as µm."""
        return px * self.iso

    def area_um2(self, area_px: float) -> float:
        """A pixel count as µm² (through both axes)."""
        return float(area_px) * self.x * self.y


def _positive(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _pair(x: Any, y: Any) -> tuple[float, float] | None:
    fx, fy = _positive(x), _positive(y)
    if fx is None and fy is None:
        return None
    return (fx or fy or 0.0, fy or fx or 0.0)


def resolve_mpp(mpp_x: Any = None, mpp_y: Any = None, *, file_mpp: tuple[Any, Any] | None = None,
                default: float | None = None, override: float | None = None,
                what: str = "image") -> Mpp:
    """Resolve one image's µm/px (see the module docstring for the order).

    Args:
        mpp_x: the ``images`` table's ``mpp_x`` (None when unknown).
        mpp_y: the ``images`` table's ``mpp_y``.
        file_mpp: ``(mpp_x, mpp_y)`` read from the image file, if it was opened.
        default: the user's default for images without any value.
        override: a value forced for this run.
        what: how to name the image in the error (e.g. its key and path).

    Raises:
        MppUnknownError: nothing is known and no default was given.
    """
    if (o := _positive(override)) is not None:
        return Mpp(o, o, "override")
    if (p := _pair(mpp_x, mpp_y)) is not None:
        return Mpp(p[0], p[1], "table")
    if file_mpp is not None and (p := _pair(*file_mpp)) is not None:
        return Mpp(p[0], p[1], "file")
    if (d := _positive(default)) is not None:
        return Mpp(d, d, "default")
    raise MppUnknownError(f"{what}: no µm/px in the dataset or the file; give --default-mpp")


def mpp_of_row(row: Any, *, default: float | None = None, override: float | None = None,
               file_mpp: tuple[Any, Any] | None = None, what: str | None = None) -> Mpp:
    """:func:`resolve_mpp` for an ``images`` row (a mapping with ``mpp_x``/``mpp_y``)."""
    return resolve_mpp(row.get("mpp_x"), row.get("mpp_y"), file_mpp=file_mpp, default=default,
                       override=override, what=what or str(row.get("image_key", "image")))


def area_um2(area_px: float | None, mpp_x: float | None, mpp_y: float | None) -> float | None:
    """Area in µm² of ``area_px`` level-0 pixels: ``area_px * mpp_x * mpp_y``.

    Returns None when the area or either µm/px is unknown (a missing axis takes the other's
    value, as :func:`resolve_mpp` does).
    """
    p = _pair(mpp_x, mpp_y)
    if area_px is None or p is None:
        return None
    return float(area_px) * p[0] * p[1]


def is_plausible_mpp(v: Any) -> bool:
    """Whether ``v`` is a finite µm/px inside :data:`MPP_RANGE`."""
    f = _positive(v)
    return f is not None and MPP_RANGE[0] <= f <= MPP_RANGE[1]
