"""A second H&E / pHH3 pair generator, independent of :mod:`mfcurate.synth.phh3_pair`.

Different tissue model (:mod:`.procedural`), different deformation family and the
artefacts re-stained sections really have, rendered block by block so whole-slide sizes
(40,000 x 30,000 px) are written with bounded memory as tiled pyramidal TIFF.

**Geometry** (pHH3 pixel ``y`` -> H&E pixel ``x``; level-0 px, x = column):

1. ``u = A y + b``: a similarity (rotation up to ±40°, scale 0.97-1.03: re-stain shrinkage,
   shift up to 3 % of the canvas);
2. ``t = tear(u)``: local tears, each a lens-shaped crack along a segment; tissue on either
   side was pushed apart by up to half the gap and relaxes with distance
   (``exp(-d / falloff)``); pixels inside the crack are glass on the pHH3;
3. ``x = t + q(t)``: a thin-plate spline through a 5 x 5 control grid with random
   displacements, sampled on a 32 px grid and bilinear in between (that bilinear field *is*
   the truth, so it is exact at any point).

**Artefacts** on the pHH3: folds (a band where a flap lies over its neighbour, glass where it
came from), air bubbles (lighter disc with a dark rim), missing tissue (H&E-frame discs gone),
extra tissue (a disc of foreign tissue), focus blur (a disc blurred with sigma 1-2.5 µm),
stain-intensity drift (smooth gain 1 ± ``drift``), and the counterstain ``eosin``,
``hematoxylin`` or ``hematoxylin_light``.  The H&E is the undistorted tissue.

Landmarks (:meth:`WarpTruth.landmarks`) lie on H&E tissue that exists on the pHH3 (not in
missing tissue, a fold band, a bubble or foreign tissue) and are tagged ``near`` when within
100 µm of any artefact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.testing.procedural import Tissue, conc_to_rgb, value_noise_grid

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
COUNTERSTAINS = ("eosin", "hematoxylin", "hematoxylin_light")


def _dot(p: F64, v: F64) -> F64:
    """Row-wise dot product of ``(N, 2)`` points with a 2-vector (no BLAS call)."""
    return np.asarray(p[:, 0] * v[0] + p[:, 1] * v[1])


def _affine(p: F64, a: F64) -> F64:
    """``(N, 2)`` points through a ``(2, 3)`` affine."""
    out = np.empty_like(p)
    out[:, 0] = p[:, 0] * a[0, 0] + p[:, 1] * a[0, 1] + a[0, 2]
    out[:, 1] = p[:, 0] * a[1, 0] + p[:, 1] * a[1, 1] + a[1, 2]
    return out


@dataclass
class Tear:
    """A crack along ``p0 -> p1`` (u frame) opening to ``gap`` px, relaxing over ``falloff``."""

    p0: tuple[float, float]
    p1: tuple[float, float]
    gap: float
    falloff: float

    def _frame(self, u: F64) -> tuple[F64, F64, F64, F64]:
        p0, p1 = np.array(self.p0), np.array(self.p1)
        L = float(np.hypot(*(p1 - p0)))
        e = (p1 - p0) / L
        n = np.array([-e[1], e[0]])
        d = u - p0
        a = _dot(d, e)
        s = _dot(d, n)
        half = 0.5 * self.gap * np.where((a > 0) & (a < L), np.sin(np.pi * np.clip(a / L, 0, 1)),
                                         0.0)
        return s, half, n, a

    def close(self, u: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
        """U -> t (crack closed) and the gap mask (pixels inside the crack)."""
        s, half, n, _a = self._frame(u)
        gap = np.abs(s) < half
        z = np.maximum(np.abs(s) - half, 0.0)
        shift = np.sign(s) * half * np.exp(-z / self.falloff)
        return u - shift[:, None] * n, gap

    def open(self, t: F64) -> F64:
        """T -> u, the inverse of :meth:`close` (Newton on ``|s_t| = z + h (1 - e^(-z/F))``)."""
        s_t, half, n, _a = self._frame(t)
        st = np.abs(s_t)
        z = np.maximum(st - half, 0.0)
        for _ in range(30):
            e = np.exp(-z / self.falloff)
            f = z + half * (1 - e) - st
            z = np.maximum(z - f / (1 + half / self.falloff * e), 0.0)
        su = np.sign(s_t) * (z + half)
        return t + (su - s_t)[:, None] * n

    def distance(self, u: F64) -> F64:
        """Distance (px) of u-frame points to the crack segment."""
        p0, p1 = np.array(self.p0), np.array(self.p1)
        d = p1 - p0
        a = np.clip(_dot(u - p0, d) / float(d @ d), 0, 1)
        return np.asarray(np.hypot(*(u - (p0 + a[:, None] * d)).T))


@dataclass
class WarpTruth:
    """Known geometry and artefacts of one pair (pHH3 frame unless stated).

    Attributes:
        width: canvas columns (both slides).
        height: canvas rows.
        mpp: µm/px.
        counterstain: pHH3 counterstain.
        affine: ``(2, 3)`` pHH3 px -> u.
        tears: cracks (u frame).
        q_step: spacing of the thin-plate field grid (px, t frame).
        q_origin: t position of grid node ``[0, 0]``.
        q: ``(gh, gw, 2)`` field ``x - t`` at the nodes.
        folds: ``(x0, y0, x1, y1, band_px)``: the fold line (pHH3) and the flap width; the flap
            from the left of the line (negative side) lies on the right side.
        bubbles: ``(cx, cy, r)``.
        missing: ``(cx, cy, r)`` discs of H&E tissue absent on the pHH3 (H&E frame).
        extra: ``(cx, cy, r, ox, oy)``: foreign tissue inside the disc (drawn from the
            tissue at ``+ (ox, oy)``).
        blur: ``(cx, cy, r, sigma_px)``.
        drift: amplitude of the smooth stain gain.
        seed: the generator seed.
    """

    width: int
    height: int
    mpp: float
    counterstain: str
    affine: F64
    tears: list[Tear]
    q_step: float
    q_origin: tuple[float, float]
    q: F64
    folds: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    bubbles: list[tuple[float, float, float]] = field(default_factory=list)
    missing: list[tuple[float, float, float]] = field(default_factory=list)
    extra: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    blur: list[tuple[float, float, float, float]] = field(default_factory=list)
    drift: float = 0.25
    seed: int = 0

    # ---------------------------------------------------------------- maps
    def _q_at(self, t: F64) -> F64:
        gx = (t[:, 0] - self.q_origin[0]) / self.q_step
        gy = (t[:, 1] - self.q_origin[1]) / self.q_step
        gh, gw = self.q.shape[:2]
        ix = np.clip(np.floor(gx).astype(np.int64), 0, gw - 2)
        iy = np.clip(np.floor(gy).astype(np.int64), 0, gh - 2)
        fx = np.clip(gx - ix, 0, 1)[:, None]
        fy = np.clip(gy - iy, 0, 1)[:, None]
        q = self.q
        return np.asarray((q[iy, ix] * (1 - fx) + q[iy, ix + 1] * fx) * (1 - fy)
                          + (q[iy + 1, ix] * (1 - fx) + q[iy + 1, ix + 1] * fx) * fy)

    def phh3_to_he_gap(self, pts: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
        """H&E position of ``(N, 2)`` pHH3 points and whether each lies in a crack."""
        y = np.asarray(pts, np.float64).reshape(-1, 2)
        u = _affine(y, self.affine)
        gap = np.zeros(len(u), bool)
        for tr in self.tears:
            u, g = tr.close(u)
            gap |= g
        return u + self._q_at(u), gap

    def phh3_to_he(self, pts: F64) -> F64:
        """Exact H&E position of ``(N, 2)`` pHH3 points (level-0 px)."""
        return self.phh3_to_he_gap(pts)[0]

    def he_to_phh3(self, pts: F64, iters: int = 40) -> F64:
        """Exact pHH3 position of ``(N, 2)`` H&E points (fixed-point inverse of ``q``)."""
        x = np.asarray(pts, np.float64).reshape(-1, 2)
        t = x.copy()
        for _ in range(iters):
            t = x - self._q_at(t)
        for tr in reversed(self.tears):
            t = tr.open(t)
        a = self.affine
        return np.asarray((t - a[:, 2]) @ np.linalg.inv(a[:, :2]).T)

    # ---------------------------------------------------------------- artefact masks
    def artefact_distance_um(self, he: F64, ph: F64) -> F64:
        """Distance (µm) of landmark pairs to the nearest artefact (inf when none)."""
        d = np.full(len(he), np.inf)
        u = _affine(ph, self.affine)
        for tr in self.tears:
            d = np.minimum(d, tr.distance(u))
        for x0, y0, x1, y1, b in self.folds:
            d = np.minimum(d, np.maximum(_segment_distance(ph, (x0, y0), (x1, y1)) - b, 0))
        for cx, cy, r in self.bubbles:
            d = np.minimum(d, np.maximum(np.hypot(ph[:, 0] - cx, ph[:, 1] - cy) - r, 0))
        for cx, cy, r, _ox, _oy in self.extra:
            d = np.minimum(d, np.maximum(np.hypot(ph[:, 0] - cx, ph[:, 1] - cy) - r, 0))
        for cx, cy, r in self.missing:
            d = np.minimum(d, np.maximum(np.hypot(he[:, 0] - cx, he[:, 1] - cy) - r, 0))
        return d * self.mpp

    def landmarks(self, n: int = 400, seed: int = 0, margin_um: float = 20.0
                  ) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
        """``(phh3_xy, he_xy, near)``: landmarks on tissue both slides show.

        ``near`` marks those within 100 µm of an artefact (tear, fold, bubble, missing or
        foreign tissue).
        """
        tissue = Tissue(self.seed, self.width, self.height, self.mpp)
        rng = np.random.default_rng([seed, 7])
        m = margin_um / self.mpp
        he = np.stack([rng.uniform(m, self.width - m, n * 12),
                       rng.uniform(m, self.height - m, n * 12)], 1)
        ok = tissue.tissue_at(he[:, 0], he[:, 1]) > 0.99
        for dx, dy in ((m, 0), (-m, 0), (0, m), (0, -m)):
            ok &= tissue.tissue_at(he[:, 0] + dx, he[:, 1] + dy) > 0.99
        he = he[ok]
        ph = self.he_to_phh3(he)
        d = self.artefact_distance_um(he, ph)
        inside = (ph[:, 0] > m) & (ph[:, 0] < self.width - m) & (ph[:, 1] > m) & \
            (ph[:, 1] < self.height - m)
        keep = inside & (d > margin_um)
        ph, he, d = ph[keep][:n], he[keep][:n], d[keep][:n]
        return ph, he, d < 100.0


def _segment_distance(p: F64, a: tuple[float, float], b: tuple[float, float]) -> F64:
    pa, pb = np.array(a), np.array(b)
    d = pb - pa
    t = np.clip(_dot(p - pa, d) / float(d @ d), 0, 1)
    return np.asarray(np.hypot(*(p - (pa + t[:, None] * d)).T))


def _tps_field(rng: np.random.Generator, width: int, height: int, amp_px: float, step: float,
               n_ctrl: int = 5) -> tuple[F64, tuple[float, float]]:
    """Thin-plate spline through an ``n x n`` control grid, sampled every ``step`` px.

    Control displacements are normal (σ ``amp_px``, mean removed); the samples cover the
    canvas plus a 15 % margin.
    """
    cx = np.linspace(0, width, n_ctrl)
    cy = np.linspace(0, height, n_ctrl)
    P = np.array([(x, y) for y in cy for x in cx])
    D = rng.normal(0, amp_px, (len(P), 2))
    D -= D.mean(axis=0)

    def U(r2: F64) -> F64:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r2 > 0, 0.5 * r2 * np.log(r2), 0.0)

    s = max(width, height)
    Pn = P / s
    K = U(((Pn[:, None] - Pn[None]) ** 2).sum(-1))
    Q = np.hstack([np.ones((len(P), 1)), Pn])
    A = np.zeros((len(P) + 3, len(P) + 3))
    A[: len(P), : len(P)] = K
    A[: len(P), len(P):] = Q
    A[len(P):, : len(P)] = Q.T
    rhs = np.vstack([D, np.zeros((3, 2))])
    coef = np.linalg.solve(A, rhs)
    pad = 0.15 * s
    ox, oy = -pad, -pad
    gw = math.ceil((width + 2 * pad) / step) + 2
    gh = math.ceil((height + 2 * pad) / step) + 2
    gx = (ox + np.arange(gw) * step) / s
    gy = (oy + np.arange(gh) * step) / s
    out = np.empty((gh, gw, 2))
    for r in range(gh):
        pts = np.stack([gx, np.full(gw, gy[r])], 1)
        k = U(((pts[:, None] - Pn[None]) ** 2).sum(-1))
        out[r] = k @ coef[: len(P)] + np.hstack([np.ones((gw, 1)), pts]) @ coef[len(P):]
    return out, (ox, oy)


def make_truth(seed: int, width: int, height: int | None = None, *, mpp: float = 0.5,
               counterstain: str | None = None, artefacts: bool = True,
               tps_um: float = 5.0, max_rotation_deg: float = 40.0) -> WarpTruth:
    """Draw one pair's geometry and artefacts from ``seed``.

    Args:
        seed: the only randomness.
        width: canvas columns.
        height: canvas rows (default ``width``).
        mpp: µm/px.
        counterstain: one of :data:`COUNTERSTAINS` (default: drawn).
        artefacts: add tears, folds, bubbles, missing/extra tissue, blur and drift.
        tps_um: σ of the control-point displacements.
        max_rotation_deg: rotation drawn uniformly in ``±`` this.
    """
    h = int(height or width)
    w = int(width)
    rng = np.random.default_rng([seed, 4242])
    cs = counterstain or str(rng.choice(COUNTERSTAINS))
    if cs not in COUNTERSTAINS:
        raise ValueError(f"counterstain must be one of {COUNTERSTAINS}, not {cs!r}")
    rot = math.radians(rng.uniform(-max_rotation_deg, max_rotation_deg))
    sc = rng.uniform(0.97, 1.03)
    R = sc * np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    c = np.array([w / 2, h / 2])
    shift = rng.uniform(-0.03, 0.03, 2) * np.array([w, h])
    affine = np.hstack([R, (c - R @ c + shift)[:, None]])
    q, origin = _tps_field(rng, w, h, tps_um / mpp, 32.0)
    truth = WarpTruth(w, h, mpp, cs, affine, [], 32.0, origin, q, seed=seed,
                      drift=0.25 if artefacts else 0.0)
    if not artefacts:
        return truth
    s = min(w, h)

    def point(lo: float = 0.25, hi: float = 0.75) -> tuple[float, float]:
        return (float(rng.uniform(lo, hi) * w), float(rng.uniform(lo, hi) * h))

    for _ in range(int(rng.integers(1, 3))):
        p0 = np.array(point())
        ang = rng.uniform(0, np.pi)
        L = rng.uniform(0.12, 0.3) * s
        p1 = p0 + L * np.array([math.cos(ang), math.sin(ang)])
        truth.tears.append(Tear((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])),
                                float(rng.uniform(8, 30) / mpp), float(rng.uniform(40, 120)
                                                                       / mpp)))
    if rng.random() < 0.7:
        p0 = np.array(point(0.2, 0.8))
        ang = rng.uniform(0, np.pi)
        L = rng.uniform(0.08, 0.2) * s
        p1 = p0 + L * np.array([math.cos(ang), math.sin(ang)])
        truth.folds.append((float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1]),
                            float(rng.uniform(40, 120) / mpp)))
    for _ in range(int(rng.integers(1, 4))):
        truth.bubbles.append((*point(0.15, 0.85), float(rng.uniform(0.015, 0.05) * s)))
    truth.missing.append((*point(0.2, 0.8), float(rng.uniform(0.03, 0.06) * s)))
    ex = point(0.1, 0.9)
    truth.extra.append((*ex, float(rng.uniform(0.03, 0.05) * s), float(rng.integers(0, w)),
                        float(rng.integers(0, h))))
    truth.blur.append((*point(0.2, 0.8), float(rng.uniform(0.1, 0.2) * s),
                       float(rng.uniform(1.0, 2.5) / mpp)))
    return truth


class PairRenderer:
    """Renders blocks of the H&E and the pHH3 of one :class:`WarpTruth`."""

    def __init__(self, truth: WarpTruth) -> None:
        self.t = truth
        self.tissue = Tissue(truth.seed, truth.width, truth.height, truth.mpp)
        self.foreign = Tissue(truth.seed + 7777, truth.width, truth.height, truth.mpp)
        rng = np.random.default_rng([truth.seed, 99])
        self.he_gain = rng.uniform(0.97, 1.03, 3)
        self.ph_gain = rng.uniform(0.93, 1.05, 3)
        self.ph_scale = float(rng.uniform(0.85, 1.15))
        #: optional ``(height, width, 3)`` uint8 store of the H&E concentrations (OD x 100),
        #: filled by :meth:`he_block` and read by the pHH3 instead of re-rendering
        self.store: npt.NDArray[np.uint8] | None = None

    def he_block(self, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.uint8]:
        """``(h, w, 3)`` uint8 H&E pixels of a window."""
        conc = self.tissue.concentrations(x0, y0, w, h)
        if self.store is not None:
            self.store[y0:y0 + h, x0:x0 + w] = np.clip(conc * 100 + 0.5, 0, 255)
        conc[:, :, 2] = 0.0
        return conc_to_rgb(conc, self.he_gain, self.tissue.periodic_noise(x0, y0, w, h, 0))

    def _source(self, xs: F64, ys: F64, extra_margin: float = 0.0
                ) -> tuple[F32, float, float] | None:
        ok = np.isfinite(xs)
        if not ok.any():
            return None
        sx0 = math.floor(float(xs[ok].min()) - 3 - extra_margin)
        sy0 = math.floor(float(ys[ok].min()) - 3 - extra_margin)
        sx1 = math.ceil(float(xs[ok].max()) + 3 + extra_margin)
        sy1 = math.ceil(float(ys[ok].max()) + 3 + extra_margin)
        if self.store is not None:
            conc = _read_store(self.store, sx0, sy0, sx1 - sx0, sy1 - sy0)
        else:
            conc = self.tissue.concentrations(sx0, sy0, sx1 - sx0, sy1 - sy0)
        for cx, cy, r in self.t.missing:
            gx = np.arange(sx0, sx1) + 0.5 - cx
            gy = np.arange(sy0, sy1)[:, None] + 0.5 - cy
            inside = np.clip((np.hypot(gx[None, :], gy) - r) / 2.0 + 0.5, 0, 1)
            conc *= inside[:, :, None].astype(np.float32)
        return conc, float(sx0), float(sy0)

    def _geometry(self, x0: int, y0: int, w: int, h: int
                  ) -> tuple[F64, npt.NDArray[np.bool_]]:
        """H&E positions ``(h*w, 2)`` of a block's pixel centres and the crack mask.

        Exact per pixel near a tear; elsewhere the affine part is exact and the smooth rest
        (thin-plate field, far tails of tears: < 0.03 px per 16 px) is interpolated from a
        16 px node grid (error below 0.001 px).
        """
        import cv2

        t = self.t
        gy, gx = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float64) + 0.5
        pts = np.stack([gx.ravel(), gy.ravel()], 1)
        centre = np.array([[x0 + w / 2, y0 + h / 2]]) @ t.affine[:, :2].T + t.affine[:, 2]
        half = 0.5 * math.hypot(w, h) * 1.05
        if any(float(tr.distance(centre)[0]) - half < 4 * tr.falloff + tr.gap
               for tr in t.tears):
            return self._geometry_near_tears(pts, (h, w))
        step = 16
        nx, ny = math.ceil((w - 1) / step) + 1, math.ceil((h - 1) / step) + 1
        ny_, nx_ = np.mgrid[0:ny, 0:nx].astype(np.float64)
        nodes = np.stack([(x0 + 0.5 + nx_ * step).ravel(), (y0 + 0.5 + ny_ * step).ravel()], 1)
        lin = _affine(nodes, t.affine)
        rest = (t.phh3_to_he(nodes) - lin).reshape(ny, nx, 2).astype(np.float32)
        mx = np.broadcast_to((np.arange(w, dtype=np.float32) / step)[None, :], (h, w))
        my = np.broadcast_to((np.arange(h, dtype=np.float32) / step)[:, None], (h, w))
        r = cv2.remap(rest, np.ascontiguousarray(mx), np.ascontiguousarray(my),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x = _affine(pts, t.affine) + r.reshape(-1, 2)
        return x, np.zeros(len(pts), bool)

    def _geometry_near_tears(self, pts: F64, shape: tuple[int, int]
                             ) -> tuple[F64, npt.NDArray[np.bool_]]:
        """Per-pixel tears (inside each tear's zone) and ``q`` through ``cv2.remap``.

        OpenCV's 1/32-cell bilinear weights change ``q`` by < 0.002 px.
        """
        import cv2

        t = self.t
        u = _affine(pts, t.affine)
        gap = np.zeros(len(u), bool)
        for tr in t.tears:
            zone = tr.distance(u) < 8 * tr.falloff + tr.gap
            if zone.any():
                uz, g = tr.close(u[zone])
                u[zone] = uz
                gap[zone] = g
        gx = ((u[:, 0] - t.q_origin[0]) / t.q_step).astype(np.float32).reshape(shape)
        gy = ((u[:, 1] - t.q_origin[1]) / t.q_step).astype(np.float32).reshape(shape)
        q = t.q.astype(np.float32)
        qq = cv2.remap(q, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return u + qq.reshape(-1, 2), gap

    def _sample(self, pts: F64 | None, shape: tuple[int, int],
                block: tuple[int, int] | None = None) -> F32:
        """H&E-frame concentrations at pHH3 pixel centres (crack pixels: glass).

        Either ``pts`` (any points, exact) or ``block`` (the top-left of a ``shape`` block,
        pixel centres, through :meth:`_geometry`).
        """
        import cv2

        if block is not None:
            x, gap = self._geometry(block[0], block[1], shape[1], shape[0])
        else:
            assert pts is not None  # noqa: S101 - internal
            x, gap = self.t.phh3_to_he_gap(pts)
        x[gap] = np.nan
        src = self._source(x[:, 0], x[:, 1])
        if src is None:
            return np.zeros((*shape, 3), np.float32)
        conc, sx0, sy0 = src
        n = len(x)
        k = math.ceil(n / 1024) * 1024  # remap wants < 32767 rows and columns
        mx = np.full(k, -1e4, np.float32)
        my = np.full(k, -1e4, np.float32)
        mx[:n] = np.where(gap, -1e4, x[:, 0] - sx0 - 0.5)
        my[:n] = np.where(gap, -1e4, x[:, 1] - sy0 - 0.5)
        out = cv2.remap(conc, mx.reshape(-1, 1024), my.reshape(-1, 1024), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return np.asarray(out.reshape(-1, 3)[:n].reshape(*shape, 3), dtype=np.float32)

    def ph_block(self, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.uint8]:
        """``(h, w, 3)`` uint8 pHH3 pixels of a window (all artefacts applied)."""
        t = self.t
        m = 0
        for cx, cy, r, sg in t.blur:
            if _disc_hits(cx, cy, r + 4 * sg, x0, y0, w, h):
                m = max(m, math.ceil(3 * sg))
        X0, Y0, W, H = x0 - m, y0 - m, w + 2 * m, h + 2 * m
        gy, gx = np.mgrid[Y0:Y0 + H, X0:X0 + W].astype(np.float32) + np.float32(0.5)
        conc = self._sample(None, (H, W), (X0, Y0))
        for fx0, fy0, fx1, fy1, band in t.folds:
            if _segment_hits((fx0, fy0, fx1, fy1), band, X0, Y0, W, H):
                pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
                conc = self._fold(conc, pts, (fx0, fy0, fx1, fy1, band), (H, W))
        for cx, cy, r, ox, oy in t.extra:
            if _disc_hits(cx, cy, r, X0, Y0, W, H):
                alpha = np.clip((r - np.hypot(gx - cx, gy - cy)) / 3.0, 0, 1)[:, :, None]
                foreign = self.foreign.concentrations(X0 + int(ox), Y0 + int(oy), W, H,
                                                      solid=True)
                conc = (conc * (1 - alpha) + foreign * alpha).astype(np.float32)
        conc = self._counterstain(conc, X0, Y0, W, H)
        rgb = conc_to_rgb(conc, self.ph_gain, self.tissue.periodic_noise(X0, Y0, W, H, 1),
                          2.5).astype(np.float32)
        for cx, cy, r in t.bubbles:
            if _disc_hits(cx, cy, r + 8, X0, Y0, W, H):
                d = np.hypot(gx - cx, gy - cy)
                inner = np.clip((r - d) / 2.0, 0, 1)[:, :, None]
                rim = np.exp(-0.5 * ((d - r) / (1.5 / t.mpp)) ** 2)[:, :, None]
                rgb = 255 - (255 - rgb) * (1 - 0.55 * inner)
                rgb = rgb * (1 - 0.45 * rim)
        for cx, cy, r, sg in t.blur:
            if _disc_hits(cx, cy, r + 4 * sg, X0, Y0, W, H):
                import cv2

                wgt = np.clip((r - np.hypot(gx - cx, gy - cy)) / (2 * sg) + 0.5, 0, 1)
                blurred = cv2.GaussianBlur(rgb, (0, 0), sg)
                rgb = rgb * (1 - wgt[:, :, None]) + blurred * wgt[:, :, None]
        out = np.clip(rgb, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out[m:m + h, m:m + w])

    def _counterstain(self, conc: F32, x0: int, y0: int, w: int, h: int) -> F32:
        hema, eos, dab = conc[:, :, 0], conc[:, :, 1], conc[:, :, 2]
        cs = self.t.counterstain
        if cs == "eosin":
            ph, pe = 0.08 * hema, 1.05 * eos + 0.02 * (hema > 0.3)
        elif cs == "hematoxylin":
            ph, pe = 0.8 * hema, 0.04 * eos
        else:
            ph, pe = 0.4 * hema + 0.02 * (eos > 0.05), 0.08 * eos
        gain = self.ph_scale * (1 + self.t.drift * (
            2 * value_noise_grid(x0, y0, w, h, 0.35 * max(self.t.width, self.t.height),
                                 self.tissue.key + 77) - 1))
        out = np.empty_like(conc)
        out[:, :, 0] = ph * gain
        out[:, :, 1] = pe * gain
        out[:, :, 2] = dab * (0.8 + 0.4 * gain / self.ph_scale) * 0.9
        return out

    def _fold(self, conc: F32, pts: F64, fold: tuple[float, float, float, float, float],
              shape: tuple[int, int]) -> F32:
        """A flap from the negative side of the fold line lies reflected on the positive."""
        x0, y0, x1, y1, band = fold
        p0, p1 = np.array([x0, y0]), np.array([x1, y1])
        L = float(np.hypot(*(p1 - p0)))
        e = (p1 - p0) / L
        n = np.array([-e[1], e[0]])
        a = _dot(pts - p0, e)
        s = _dot(pts - p0, n)
        along = (a > 0) & (a < L)
        over = along & (s > 0) & (s < band)
        gone = along & (s <= 0) & (s > -band)
        if not (over.any() or gone.any()):
            return conc
        flat = conc.reshape(-1, 3).copy()
        if over.any():
            refl = pts[over] - 2 * s[over][:, None] * n
            flap = self._sample(refl, (int(over.sum()), 1)).reshape(-1, 3)
            flat[over] += flap
        flat[gone] = 0.0
        return flat.reshape(*shape, 3)


def _segment_hits(seg: tuple[float, float, float, float], r: float, x0: float, y0: float,
                  w: float, h: float) -> bool:
    xa, ya, xb, yb = seg
    return max(xa, xb) + r > x0 and min(xa, xb) - r < x0 + w and max(ya, yb) + r > y0 and \
        min(ya, yb) - r < y0 + h


def _disc_hits(cx: float, cy: float, r: float, x0: float, y0: float, w: float, h: float
               ) -> bool:
    return cx + r > x0 and cx - r < x0 + w and cy + r > y0 and cy - r < y0 + h


def _read_store(store: npt.NDArray[np.uint8], x0: int, y0: int, w: int, h: int) -> F32:
    out = np.zeros((h, w, 3), np.float32)
    H, W = store.shape[:2]
    a0, b0 = max(x0, 0), max(y0, 0)
    a1, b1 = min(x0 + w, W), min(y0 + h, H)
    if a1 > a0 and b1 > b0:
        out[b0 - y0:b1 - y0, a0 - x0:a1 - x0] = store[b0:b1, a0:a1] / np.float32(100.0)
    return out


def write_pair(folder: Path | str, truth: WarpTruth, *, compression: str | None = "zlib",
               workers: int = 1, reuse_he: bool = False) -> tuple[Path, Path]:
    """Render and write ``he.svs`` and ``phh3.svs`` (tiled pyramidal TIFF) into ``folder``.

    ``workers=2`` renders the two slides in two processes.  ``reuse_he`` (whole-slide
    sizes) renders the H&E first and keeps its concentrations in a disk-backed store
    (3 bytes/px, quantised to 0.01 OD) that the pHH3 samples instead of rendering the tissue
    again: about half the work, in one process.
    """
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    if reuse_he:
        from mfcurate.testing.tiled_tiff import write_pyramid

        store_p = d / ".he_conc.npy"
        r = PairRenderer(truth)
        r.store = np.lib.format.open_memmap(store_p, mode="w+", dtype=np.uint8,
                                            shape=(truth.height, truth.width, 3))
        try:
            he = write_pyramid(d / "he.svs", truth.width, truth.height, r.he_block, truth.mpp,
                               compression=compression)
            ph = write_pyramid(d / "phh3.svs", truth.width, truth.height, r.ph_block,
                               truth.mpp, compression=compression)
        finally:
            r.store = None
            store_p.unlink(missing_ok=True)
        return he, ph
    jobs = [(d / "he.svs", truth, "he", compression), (d / "phh3.svs", truth, "phh3",
                                                       compression)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as ex:
            paths = list(ex.map(_write_one, jobs))
    else:
        paths = [_write_one(j) for j in jobs]
    return paths[0], paths[1]


def _write_one(job: tuple[Path, WarpTruth, str, str | None]) -> Path:
    from mfcurate.testing.tiled_tiff import write_pyramid

    path, truth, which, comp = job
    r = PairRenderer(truth)
    render: Any = r.he_block if which == "he" else r.ph_block
    return write_pyramid(path, truth.width, truth.height, render, truth.mpp,
                         compression=comp)
