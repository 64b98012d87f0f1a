"""The registration result: one object that maps points and masks both ways, saved as JSON.

Coordinates are continuous level-0 pixels of each slide (x = column; pixel ``(c, r)`` covers
``[c, c+1) x [r, r+1)``, as in :mod:`mfcurate.geometry`).

The H&E -> pHH3 map is ``y = G(x + f(x))`` where ``G`` is a ``(2, 3)`` affine (a similarity,
possibly mirrored) and ``f`` a smooth displacement field in H&E level-0 pixels sampled on a
regular grid (grid point ``(i, j)`` lies at ``origin + (j, i) * step``, bilinear in between,
edge values beyond).  The pHH3 -> H&E map inverts it: ``u = G^-1(y)``, then the fixed point
``x = u - f(x)``.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.errors import RegistrationError

Points = npt.NDArray[np.float64]
FORMAT = "mfcurate.phh3-transform/1"


def _enc(a: npt.NDArray[Any]) -> dict[str, Any]:
    arr = np.ascontiguousarray(a.astype(np.float32))
    return {"shape": list(arr.shape), "dtype": "float32",
            "data": base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode("ascii")}


def _dec(d: dict[str, Any]) -> npt.NDArray[np.float32]:
    raw = zlib.decompress(base64.b64decode(d["data"]))
    return np.frombuffer(raw, dtype=np.float32).reshape(d["shape"]).copy()


@dataclass
class PairTransform:
    """H&E <-> pHH3 mapping.

    Attributes:
        affine: ``(2, 3)`` H&E level-0 -> pHH3 level-0 affine ``G``.
        field: ``(gh, gw, 2)`` float32 displacement ``f`` (H&E px), or None (affine only).
        origin_xy: H&E position of grid point ``(0, 0)``.
        step: grid spacing in H&E level-0 px.
        residual: ``(gh, gw)`` float32 local registration residual in µm (forward-backward
            inconsistency of the flow; NaN where the grid saw no tissue), or None.
        fallback: ``(gh, gw)`` bool, True where the local fit failed its checks and the field
            was filled from neighbours, or None.
        he_mpp: µm/px of the H&E level 0.
        phh3_mpp: µm/px of the pHH3 level 0.
        quality: figures of merit (inliers, channel, rotation, NCC...).
        failed: ``(gh, gw)`` bool, True inside refinement regions that failed their QA
            (NCC after below the limit or not improved), or None when none failed.
    """

    affine: npt.NDArray[np.float64]
    field: npt.NDArray[np.float32] | None = None
    origin_xy: tuple[float, float] = (0.0, 0.0)
    step: float = 1.0
    residual: npt.NDArray[np.float32] | None = None
    fallback: npt.NDArray[np.bool_] | None = None
    he_mpp: float = 1.0
    phh3_mpp: float = 1.0
    quality: dict[str, Any] = dc_field(default_factory=dict)
    failed: npt.NDArray[np.bool_] | None = None

    # ---------------------------------------------------------------- affine
    @property
    def mirrored(self) -> bool:
        """Whether ``G`` includes a reflection (the pHH3 glass was scanned flipped)."""
        return bool(np.linalg.det(self.affine[:, :2]) < 0)

    def _affine_inv(self) -> npt.NDArray[np.float64]:
        a = np.asarray(self.affine[:, :2], dtype=np.float64)
        inv = np.linalg.inv(a)
        return np.hstack([inv, (-inv @ self.affine[:, 2])[:, None]])

    # ---------------------------------------------------------------- field
    def _grid_coords(self, pts: Points) -> tuple[Points, Points]:
        return ((pts[:, 1] - self.origin_xy[1]) / self.step,
                (pts[:, 0] - self.origin_xy[0]) / self.step)

    def _sample(self, grid: npt.NDArray[np.float32], pts: Points) -> npt.NDArray[np.float64]:
        from scipy.ndimage import map_coordinates

        r, c = self._grid_coords(pts)
        return map_coordinates(grid, [r, c], order=1, mode="nearest").astype(np.float64)

    def displacement(self, he_pts: Points) -> Points:
        """``f(x)`` at ``(N, 2)`` H&E points (zeros without a field)."""
        pts = np.asarray(he_pts, dtype=np.float64).reshape(-1, 2)
        if self.field is None:
            return np.zeros_like(pts)
        return np.stack([self._sample(self.field[:, :, 0], pts),
                         self._sample(self.field[:, :, 1], pts)], axis=1)

    def residual_at(self, he_pts: Points) -> npt.NDArray[np.float64]:
        """Local registration residual (µm) at ``(N, 2)`` H&E points (NaN if unknown)."""
        pts = np.asarray(he_pts, dtype=np.float64).reshape(-1, 2)
        if self.residual is None:
            return np.full(len(pts), np.nan)
        grid = np.nan_to_num(self.residual, nan=-1.0)
        v = self._sample(grid, pts)
        return np.where(v < 0, np.nan, v)

    def fallback_at(self, he_pts: Points) -> npt.NDArray[np.bool_]:
        """Whether the local fit at each H&E point fell back to neighbours."""
        pts = np.asarray(he_pts, dtype=np.float64).reshape(-1, 2)
        if self.fallback is None:
            return np.zeros(len(pts), bool)
        return self._sample(self.fallback.astype(np.float32), pts) > 0.5

    def failed_at(self, he_pts: Points) -> npt.NDArray[np.bool_]:
        """Whether each H&E point lies in a refinement region that failed its QA."""
        pts = np.asarray(he_pts, dtype=np.float64).reshape(-1, 2)
        if self.failed is None:
            return np.zeros(len(pts), bool)
        return self._sample(self.failed.astype(np.float32), pts) > 0.0

    # ---------------------------------------------------------------- maps
    def he_to_phh3(self, pts: Points) -> Points:
        """pHH3 level-0 position of ``(N, 2)`` H&E level-0 points."""
        x = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        v = x + self.displacement(x)
        return v @ self.affine[:, :2].T + self.affine[:, 2]

    def phh3_to_he(self, pts: Points, iters: int = 6) -> Points:
        """H&E level-0 position of ``(N, 2)`` pHH3 level-0 points (fixed-point inverse)."""
        y = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        ai = self._affine_inv()
        u = y @ ai[:, :2].T + ai[:, 2]
        if self.field is None:
            return u
        x = u.copy()
        for _ in range(iters):
            x = u - self.displacement(x)
        return x

    def map_mask_to_he(self, mask: npt.NDArray[np.bool_], offset_xy: tuple[int, int],
                       pad: int = 2) -> tuple[npt.NDArray[np.bool_], tuple[int, int]]:
        """Resample a pHH3 mask (pixel ``[0, 0]`` at ``offset_xy``) onto the H&E pixel grid.

        Returns:
            ``(mask, offset_xy)`` on the H&E level-0 grid (nearest neighbour; may be empty).
        """
        return _map_mask(mask, offset_xy, self.phh3_to_he, self.he_to_phh3, pad)

    def map_mask_to_phh3(self, mask: npt.NDArray[np.bool_], offset_xy: tuple[int, int],
                         pad: int = 2) -> tuple[npt.NDArray[np.bool_], tuple[int, int]]:
        """Resample an H&E mask onto the pHH3 level-0 pixel grid (the inverse of the above)."""
        return _map_mask(mask, offset_xy, self.he_to_phh3, self.phh3_to_he, pad)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (arrays zlib-compressed, base64)."""
        d: dict[str, Any] = {
            "format": FORMAT,
            "direction": "he_to_phh3: y = G(x + f(x)); level-0 px, x = column",
            "affine": np.asarray(self.affine, dtype=np.float64).tolist(),
            "mirrored": self.mirrored,
            "he_mpp": self.he_mpp,
            "phh3_mpp": self.phh3_mpp,
            "origin_xy": list(self.origin_xy),
            "step": self.step,
            "quality": self.quality,
        }
        if self.field is not None:
            d["field"] = _enc(self.field)
        if self.residual is not None:
            d["residual_um"] = _enc(np.nan_to_num(self.residual, nan=-1.0))
        if self.fallback is not None:
            d["fallback"] = _enc(self.fallback.astype(np.float32))
        if self.failed is not None:
            d["failed_region"] = _enc(self.failed.astype(np.float32))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairTransform:
        """Inverse of :meth:`to_dict`."""
        if d.get("format") != FORMAT:
            raise RegistrationError(f"not a pHH3 transform (format {d.get('format')!r})")
        residual = None
        if "residual_um" in d:
            r = _dec(d["residual_um"])
            residual = np.where(r < 0, np.nan, r).astype(np.float32)
        return cls(
            affine=np.asarray(d["affine"], dtype=np.float64),
            field=_dec(d["field"]) if "field" in d else None,
            origin_xy=(float(d["origin_xy"][0]), float(d["origin_xy"][1])),
            step=float(d["step"]),
            residual=residual,
            fallback=(_dec(d["fallback"]) > 0.5) if "fallback" in d else None,
            he_mpp=float(d["he_mpp"]),
            phh3_mpp=float(d["phh3_mpp"]),
            quality=dict(d.get("quality", {})),
            failed=(_dec(d["failed_region"]) > 0.5) if "failed_region" in d else None,
        )

    def save(self, path: Path | str) -> Path:
        """Write the transform as JSON atomically."""
        from mfcurate.dataset import atomic_write_bytes

        p = Path(path)
        atomic_write_bytes(p, (json.dumps(self.to_dict(), indent=1) + "\n").encode())
        return p

    @classmethod
    def load(cls, path: Path | str) -> PairTransform:
        """Read a transform written by :meth:`save`."""
        from mfcurate.errors import SourceFormatError

        p = Path(path)
        try:
            d = json.loads(p.read_text())
            return cls.from_dict(d)
        except (OSError, ValueError, KeyError, TypeError, zlib.error, RegistrationError) as exc:
            raise SourceFormatError(p, f"not a readable pHH3 transform ({exc})") from exc


def _map_mask(mask: npt.NDArray[np.bool_], offset_xy: tuple[int, int], fwd: Any, back: Any,
              pad: int) -> tuple[npt.NDArray[np.bool_], tuple[int, int]]:
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    ox, oy = offset_xy
    corners = np.array([[ox, oy], [ox + w, oy], [ox, oy + h], [ox + w, oy + h]], float)
    dst = fwd(corners)
    x0 = int(np.floor(dst[:, 0].min())) - pad
    y0 = int(np.floor(dst[:, 1].min())) - pad
    x1 = int(np.ceil(dst[:, 0].max())) + pad
    y1 = int(np.ceil(dst[:, 1].max())) + pad
    gy, gx = np.mgrid[y0:y1, x0:x1]
    pts = np.stack([gx.ravel() + 0.5, gy.ravel() + 0.5], axis=1).astype(np.float64)
    src = back(pts)
    c = np.floor(src[:, 0] - ox).astype(np.int64)
    r = np.floor(src[:, 1] - oy).astype(np.int64)
    ok = (c >= 0) & (c < w) & (r >= 0) & (r < h)
    out = np.zeros(len(pts), bool)
    out[ok] = m[r[ok], c[ok]]
    return out.reshape(gy.shape), (x0, y0)
