"""Procedural H&E-frame tissue that can be rendered for any window, identically.

Every value is a function of level-0 pixel position and the seed only, so two windows that
overlap agree exactly on the overlap, and a whole slide can be rendered block by block.
Written independently of :mod:`mfcurate.synth` (different tissue model): hashed lattice value
noise (separable smooth-step bilinear) for the outline, lumens and density; two periodic
noise tiles of coprime periods for fine texture and stroma fibres; nuclei on a jittered
14 µm cell grid, stamped one by one (about one cell in 250 holds a mitotic figure, with a
clumped, darker chromatin and DAB in the pHH3).

Concentrations are optical densities of the (haematoxylin, eosin, DAB) stains of
:data:`mfcurate.stain.HED_STAINS`; pixel ``(c, r)`` has its centre at ``(c + 0.5, r + 0.5)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), \
    np.uint64(0x94D049BB133111EB)


def hash01(i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], key: int) -> F64:
    """Uniform [0, 1) from integer lattice coordinates and a key (splitmix64)."""
    with np.errstate(over="ignore"):
        z = (np.asarray(i, np.int64).astype(np.uint64) * _M1) ^ \
            (np.asarray(j, np.int64).astype(np.uint64) * _M3) ^ \
            np.uint64((key * 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * _M2
        z = (z ^ (z >> np.uint64(27))) * _M3
        z = z ^ (z >> np.uint64(31))
    return np.asarray((z >> np.uint64(11)).astype(np.float64) / float(2**53))


def _weights(pos: F64, cell: float) -> tuple[npt.NDArray[np.int64], F64]:
    g = pos / cell
    i = np.floor(g).astype(np.int64)
    f = g - i
    return i, f * f * (3.0 - 2.0 * f)


def value_noise_points(x: F64, y: F64, cell: float, key: int) -> F64:
    """Value noise in [0, 1] at arbitrary points (same field as :func:`value_noise_grid`)."""
    ix, sx = _weights(np.asarray(x, np.float64), cell)
    iy, sy = _weights(np.asarray(y, np.float64), cell)
    v00, v10 = hash01(ix, iy, key), hash01(ix + 1, iy, key)
    v01, v11 = hash01(ix, iy + 1, key), hash01(ix + 1, iy + 1, key)
    return np.asarray((v00 * (1 - sx) + v10 * sx) * (1 - sy) + (v01 * (1 - sx) + v11 * sx) * sy)


def value_noise_grid(x0: int, y0: int, w: int, h: int, cell: float, key: int) -> F32:
    """Value noise on the pixel centres of a window (the field of :func:`value_noise_points`).

    The lattice of the window is interpolated by ``cv2.remap`` at smooth-stepped lattice
    coordinates computed from absolute positions, so overlapping windows agree (to the
    1/32 px sub-pixel steps of OpenCV's bilinear tables).
    """
    import cv2

    ix, sx = _weights(np.arange(x0, x0 + w, dtype=np.float64) + 0.5, cell)
    iy, sy = _weights(np.arange(y0, y0 + h, dtype=np.float64) + 0.5, cell)
    lx, ly = int(ix.min()), int(iy.min())
    nx, ny = int(ix.max()) - lx + 2, int(iy.max()) - ly + 2
    jj, ii = np.meshgrid(np.arange(ly, ly + ny), np.arange(lx, lx + nx), indexing="ij")
    lat = hash01(ii, jj, key).astype(np.float32)
    mx = np.broadcast_to((ix - lx + sx).astype(np.float32)[None, :], (h, w))
    my = np.broadcast_to((iy - ly + sy).astype(np.float32)[:, None], (h, w))
    return np.asarray(cv2.remap(lat, np.ascontiguousarray(mx), np.ascontiguousarray(my),
                                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                      dtype=np.float32)


def _periodic_noise(rng: np.random.Generator, period: int, sigma: tuple[float, float],
                    angle_deg: float = 0.0) -> F32:
    """A ``period x period`` tile of Gaussian-filtered noise (wrap-around), unit std."""
    import cv2

    a = rng.standard_normal((period, period)).astype(np.float32)
    big = np.tile(a, (3, 3))  # blurred with a 3x3 tiling: the centre tile wraps exactly
    sx, sy = sigma
    k = int(3 * max(sx, sy)) | 1
    if angle_deg:
        kern = np.zeros((2 * k + 1, 2 * k + 1), np.float32)
        yy, xx = np.mgrid[-k:k + 1, -k:k + 1].astype(np.float32)
        t = math.radians(angle_deg)
        u = xx * math.cos(t) + yy * math.sin(t)
        v = -xx * math.sin(t) + yy * math.cos(t)
        kern = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)).astype(np.float32)
        out = cv2.filter2D(big, -1, kern / kern.sum(), borderType=cv2.BORDER_REFLECT)
    else:
        out = cv2.GaussianBlur(big, (0, 0), sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
    tile = np.asarray(out, np.float32)[period:2 * period, period:2 * period]
    return np.asarray((tile - tile.mean()) / max(float(tile.std()), 1e-6), dtype=np.float32)


class Tissue:
    """One procedural tissue section of ``width x height`` level-0 px at ``mpp`` µm/px.

    Args:
        seed: the only randomness.
        width: canvas columns.
        height: canvas rows.
        mpp: µm/px.
        nuclei_per_cell: chance a 14 µm cell holds a nucleus (about 3800 nuclei/mm² at 0.75).
        mitosis_rate: chance a nucleus is a mitotic figure.
    """

    CELL_UM = 14.0

    def __init__(self, seed: int, width: int, height: int, mpp: float = 0.5,
                 nuclei_per_cell: float = 0.75, mitosis_rate: float = 0.004) -> None:
        rng = np.random.default_rng([seed, 911])
        self.seed, self.width, self.height, self.mpp = seed, width, height, mpp
        self.key = int(rng.integers(1, 2**31))
        self.p_nucleus, self.p_mitosis = nuclei_per_cell, mitosis_rate
        self.fine = _periodic_noise(rng, 997, (1.0, 1.0))
        self.fibre = _periodic_noise(rng, 1289, (6.0 / mpp, 0.7 / mpp),
                                     float(rng.uniform(0, 180)))
        self.clump = _periodic_noise(rng, 613, (0.6, 0.6))
        self.noise = (_periodic_noise(rng, 1021, (0.4, 0.4)),
                      _periodic_noise(rng, 1031, (0.4, 0.4)))
        self.outline_cell = 0.3 * max(width, height)
        self.cell = self.CELL_UM / mpp

    # ---------------------------------------------------------------- fields
    def tissue_weight(self, x0: int, y0: int, w: int, h: int) -> F32:
        """Tissue (1) vs glass (0) on a window, soft over ~2 px at the edges."""
        W, H, k = self.width, self.height, self.key
        xs = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5 - W / 2) / (0.42 * W)
        ys = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5 - H / 2) / (0.42 * H)
        f = 1.0 - ys[:, None] ** 2 - xs[None, :] ** 2
        f = f + 0.45 * (value_noise_grid(x0, y0, w, h, self.outline_cell, k + 1) - 0.5)
        edge = np.clip(f * (0.42 * min(W, H)) / 2.0 + 0.5, 0, 1)
        lum = value_noise_grid(x0, y0, w, h, 110.0 / self.mpp, k + 2)
        fat = value_noise_grid(x0, y0, w, h, 420.0 / self.mpp, k + 3)
        glass = np.clip((lum - 0.80) * 40, 0, 1) + np.clip((fat - 0.86) * 40, 0, 1)
        return np.asarray(edge * np.clip(1 - glass, 0, 1), dtype=np.float32)

    def tissue_at(self, x: F64, y: F64) -> F64:
        """:meth:`tissue_weight` at arbitrary points (landmark selection)."""
        W, H, k = self.width, self.height, self.key
        f = 1.0 - ((y - H / 2) / (0.42 * H)) ** 2 - ((x - W / 2) / (0.42 * W)) ** 2
        f = f + 0.45 * (value_noise_points(x, y, self.outline_cell, k + 1) - 0.5)
        edge = np.clip(f * (0.42 * min(W, H)) / 2.0 + 0.5, 0, 1)
        lum = value_noise_points(x, y, 110.0 / self.mpp, k + 2)
        fat = value_noise_points(x, y, 420.0 / self.mpp, k + 3)
        glass = np.clip((lum - 0.80) * 40, 0, 1) + np.clip((fat - 0.86) * 40, 0, 1)
        return np.asarray(edge * np.clip(1 - glass, 0, 1))

    def _periodic(self, tile: F32, x0: int, y0: int, w: int, h: int) -> F32:
        p = tile.shape[0]
        return tile[np.ix_(np.arange(y0, y0 + h) % p, np.arange(x0, x0 + w) % p)]

    # ---------------------------------------------------------------- nuclei
    def _stamp_nuclei(self, x0: int, y0: int, w: int, h: int, hema: F32, dab: F32) -> None:
        c, k = self.cell, self.key
        i0, i1 = math.floor(x0 / c) - 1, math.floor((x0 + w) / c) + 1
        j0, j1 = math.floor(y0 / c) - 1, math.floor((y0 + h) / c) + 1
        jg, ig = np.meshgrid(np.arange(j0, j1 + 1), np.arange(i0, i1 + 1), indexing="ij")
        ii, jj = ig.ravel().astype(np.int64), jg.ravel().astype(np.int64)
        dens = value_noise_points((ii + 0.5) * c, (jj + 0.5) * c,  # type: ignore[arg-type]
                                  220.0 / self.mpp, k + 4)
        keep = hash01(ii, jj, k + 10) < self.p_nucleus * (0.45 + 0.75 * dens)
        ii, jj = ii[keep], jj[keep]
        mit = hash01(ii, jj, k + 11) < self.p_mitosis
        r = (2.3 + 1.9 * hash01(ii, jj, k + 12)) / self.mpp
        r = np.where(mit, 4.4 / self.mpp, r)
        asp = 0.55 + 0.45 * hash01(ii, jj, k + 13)
        ang = np.pi * hash01(ii, jj, k + 14)
        room = np.maximum(c / 2 - r - 1.5, 0.0)
        cx = (ii + 0.5) * c + (2 * hash01(ii, jj, k + 15) - 1) * room
        cy = (jj + 0.5) * c + (2 * hash01(ii, jj, k + 16) - 1) * room
        dark = 0.45 + 0.35 * hash01(ii, jj, k + 17)
        for n in range(len(ii)):
            rr = r[n]
            ax0 = max(x0, math.floor(cx[n] - rr - 1.5))
            ax1 = min(x0 + w, math.ceil(cx[n] + rr + 1.5))
            ay0 = max(y0, math.floor(cy[n] - rr - 1.5))
            ay1 = min(y0 + h, math.ceil(cy[n] + rr + 1.5))
            if ax1 <= ax0 or ay1 <= ay0:
                continue
            dx = np.arange(ax0, ax1, dtype=np.float32)[None, :] + 0.5 - cx[n]
            dy = np.arange(ay0, ay1, dtype=np.float32)[:, None] + 0.5 - cy[n]
            ca, sa = math.cos(ang[n]), math.sin(ang[n])
            u = (dx * ca + dy * sa) / rr
            v = (dy * ca - dx * sa) / (rr * asp[n])
            prof = np.clip((1.15 - (u * u + v * v)) * 4.0, 0, 1)
            sl = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
            if mit[n]:
                cl = self.clump[np.ix_(np.arange(ay0, ay1) % 613, np.arange(ax0, ax1) % 613)]
                m = prof * np.clip(0.55 + 0.6 * cl, 0, 1.4)
                hema[sl] = np.maximum(hema[sl], 1.05 * m)
                dab[sl] = np.maximum(dab[sl], 0.8 * (m > 0.35))
            else:
                hema[sl] = np.maximum(hema[sl], dark[n] * prof)

    # ---------------------------------------------------------------- window
    def concentrations(self, x0: int, y0: int, w: int, h: int, solid: bool = False) -> F32:
        """``(h, w, 3)`` float32 (haematoxylin, eosin, DAB-on-mitoses) OD of a window.

        ``solid`` fills the whole window with tissue (no outline, no lumens).
        """
        t = np.ones((h, w), np.float32) if solid else self.tissue_weight(x0, y0, w, h)
        if not t.any():
            return np.zeros((h, w, 3), np.float32)
        fine = self._periodic(self.fine, x0, y0, w, h)
        fib = self._periodic(self.fibre, x0, y0, w, h)
        tone = value_noise_grid(x0, y0, w, h, 60.0 / self.mpp, self.key + 5)
        eos = (0.22 + 0.22 * tone + 0.07 * fib + 0.04 * fine) * t
        hema = np.zeros((h, w), np.float32)
        dab = np.zeros((h, w), np.float32)
        self._stamp_nuclei(x0, y0, w, h, hema, dab)
        out = np.empty((h, w, 3), np.float32)
        out[:, :, 0] = (hema * (0.85 + 0.15 * fine) + 0.03) * t
        out[:, :, 1] = np.clip(eos, 0, None)
        out[:, :, 2] = dab * t
        return out

    def periodic_noise(self, x0: int, y0: int, w: int, h: int, which: int) -> F32:
        """Unit camera noise (``which`` 0: H&E, 1: pHH3; independent tiles)."""
        return self._periodic(self.noise[which], x0, y0, w, h)


def conc_to_rgb(conc: F32, gain: npt.NDArray[np.float64], noise: F32 | None = None,
                noise_level: float = 2.0) -> npt.NDArray[np.uint8]:
    """Beer-Lambert RGB of ``(h, w, 3)`` H/E/DAB OD with a per-channel gain and noise."""
    import cv2

    from mfcurate.stain import HED_STAINS

    m = (-math.log(10.0) * HED_STAINS.T).astype(np.float32)  # rgb_log = M @ conc
    lg = cv2.transform(np.ascontiguousarray(conc, dtype=np.float32), m)
    rgb = cv2.exp(lg) * (255.0 * gain.astype(np.float32))
    if noise is not None:
        rgb += noise_level * noise[:, :, None]
    return np.clip(rgb, 0, 255).astype(np.uint8)
