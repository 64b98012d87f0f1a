"""Patch-level refinement: dense DIS optical flow on the shared channel, per tissue window.

For every window of the H&E tissue (``tile`` px at ``ref_mpp`` µm/px, default 2, with an
overlap margin), the pHH3 is read around the globally mapped window, warped into the H&E
window by the global affine, and both are reduced to the shared channel.  DIS optical flow
(OpenCV) gives a dense displacement (``finest_scale`` 0: patches on the full refinement
resolution, which at 2 µm/px is about as accurate as the medium preset at 1 µm/px and reads
a quarter of the pixels); pixels off tissue, with ``|d|`` above ``max_disp_um`` or a
forward-backward inconsistency above ``fb_max_um`` get no weight, and the rest is smoothed by
normalised Gaussian convolution (sigma ``sigma_um``).  A window whose NCC does not improve,
or stays below ``min_window_ncc``, is a failed region (its grid cells are marked in
``PairTransform.failed`` and filled from its neighbours).  The result is sampled on a grid
every ``step_um`` µm and stored in a :class:`~mfcurate.registration.transform.PairTransform`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.registration.channels import shared_channel, tissue_mask
from mfcurate.registration.transform import PairTransform

F32 = npt.NDArray[np.float32]


@dataclass
class RefineOptions:
    """Options of the refinement (units in the names)."""

    ref_mpp: float = 2.0
    tile: int = 1024
    margin: int = 64
    sigma_um: float = 12.0
    step_um: float = 4.0
    max_disp_um: float = 30.0
    fb_max_um: float = 2.0
    preset: str = "medium"
    min_window_ncc: float = 0.25
    finest_scale: int | None = 0


def read_scaled(img: Any, x0: float, y0: float, w: int, h: int, scale: float) -> tuple[
        npt.NDArray[np.uint8], float, float, float]:
    """Read a ``(h, w)`` window of about ``scale`` level-0 px per pixel near ``(x0, y0)``.

    The origin is snapped to the chosen pyramid level's pixel grid, so level pixels map
    exactly onto level-0 pixels.

    Returns:
        ``(rgb, origin_x, origin_y, scale_exact)``: output pixel ``(c, r)`` covers level-0
        ``origin + [c, c+1) * scale_exact`` (continuous coordinates).
    """
    import cv2

    level = img.best_level(scale)
    ds = float(img.level_downsamples[level])
    ax = math.floor(x0 / ds) * ds
    ay = math.floor(y0 / ds) * ds
    lw = max(1, math.ceil(w * scale / ds))
    lh = max(1, math.ceil(h * scale / ds))
    region = img.read_region(round(ax), round(ay), lw, lh, level=level)
    if (lw, lh) != (w, h):
        region = np.asarray(cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA),
                            dtype=np.uint8)
    return region, float(ax), float(ay), lw * ds / w


def _ncc(a: F32, b: F32, m: npt.NDArray[np.bool_]) -> float:
    if m.sum() < 100:
        return float("nan")
    x = a[m].astype(np.float64)
    y = b[m].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    d = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / d) if d > 0 else float("nan")


@dataclass
class _Window:
    """One refinement window's smoothed flow and QA (refinement px unless stated)."""

    fs: F32
    valid: npt.NDArray[np.bool_]
    fb_s: F32
    nb: float
    na: float
    ox: float
    oy: float
    r: float


def _flow_window(he_img: Any, ph_img: Any, transform: PairTransform, X0: float, Y0: float,
                 channel: str, o: RefineOptions, dis: Any) -> _Window | None:
    """Read, warp and flow one window whose core starts at H&E level-0 ``(X0, Y0)``."""
    import cv2

    mpp = transform.he_mpp
    r0 = max(o.ref_mpp / mpp, 1.0)
    A = transform.affine
    size = o.tile + 2 * o.margin
    he_rgb, ox, oy, r = read_scaled(he_img, X0 - o.margin * r0, Y0 - o.margin * r0,
                                     size, size, r0)
    # tile continuous t -> H&E level-0: (ox, oy) + t * r -> pHH3 level-0 via A
    corners = np.array([[ox, oy], [ox + size * r, oy], [ox, oy + size * r],
                        [ox + size * r, oy + size * r]])
    pc = corners @ A[:, :2].T + A[:, 2]
    pad = o.max_disp_um / transform.phh3_mpp + 8
    px0 = math.floor(pc[:, 0].min() - pad)
    py0 = math.floor(pc[:, 1].min() - pad)
    rp = r0 * mpp / transform.phh3_mpp
    pw = math.ceil((pc[:, 0].max() + pad - px0) / rp)
    ph_ = math.ceil((pc[:, 1].max() + pad - py0) / rp)
    ph_rgb, px0, py0, rpe = read_scaled(ph_img, px0, py0, pw, ph_, rp)
    # t (continuous tile) -> q (continuous pHH3 region): q = (A((ox,oy)+t r) - p0)/rpe
    M = np.zeros((2, 3))
    M[:, :2] = A[:, :2] * r / rpe
    M[:, 2] = (A[:, :2] @ np.array([ox, oy]) + A[:, 2] - np.array([px0, py0])) / rpe
    Mi = M.copy()
    Mi[:, 2] = M[:, :2] @ np.array([0.5, 0.5]) + M[:, 2] - 0.5
    warped: npt.NDArray[np.uint8] = cv2.warpAffine(  # type: ignore[assignment]
        ph_rgb, Mi, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    m_he = tissue_mask(he_rgb)
    m_ph = tissue_mask(warped)
    both = m_he & m_ph
    if both.sum() < 0.02 * size * size:
        return None
    a = shared_channel(he_rgb, channel, m_he)
    b = shared_channel(warped, channel, m_ph)
    fwd = dis.calc(a, b, None)
    bwd = dis.calc(b, a, None)
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32)
    bw = cv2.remap(bwd, gx + fwd[:, :, 0], gy + fwd[:, :, 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    fb = np.hypot(fwd[:, :, 0] + bw[:, :, 0], fwd[:, :, 1] + bw[:, :, 1]) * r * mpp
    mag = np.hypot(fwd[:, :, 0], fwd[:, :, 1]) * r * mpp
    w = (both & (fb < o.fb_max_um) & (mag < o.max_disp_um)).astype(np.float32)
    sig = max(o.sigma_um / (r * mpp), 1.0)
    den = cv2.GaussianBlur(w, (0, 0), sig)
    fs = np.empty_like(fwd)
    for k in range(2):
        fs[:, :, k] = cv2.GaussianBlur(fwd[:, :, k] * w, (0, 0), sig) / np.maximum(den, 1e-6)
    fb_s = cv2.GaussianBlur(np.where(both, fb, 0).astype(np.float32), (0, 0), sig) / \
        np.maximum(cv2.GaussianBlur(both.astype(np.float32), (0, 0), sig), 1e-6)
    # QC: NCC before/after inside both masks, on the tile core
    after = cv2.remap(b, gx + fs[:, :, 0], gy + fs[:, :, 1], cv2.INTER_LINEAR)
    core = np.zeros_like(both)
    core[o.margin:-o.margin, o.margin:-o.margin] = True
    nb = _ncc(a.astype(np.float32), b.astype(np.float32), both & core)
    na = _ncc(a.astype(np.float32), after.astype(np.float32), both & core)
    return _Window(fs, den > 0.05, np.asarray(fb_s, np.float32), nb, na, ox, oy, r)


def _windows(he_mask_low: npt.NDArray[np.bool_], s: float, tile0: float
             ) -> list[tuple[float, float, int]]:
    """Window origins (H&E level 0) over the tissue, with their tissue pixel counts."""
    ys, xs = np.nonzero(he_mask_low)
    if len(xs) == 0:
        return []
    bx0, bx1 = xs.min() * s, (xs.max() + 1) * s
    by0, by1 = ys.min() * s, (ys.max() + 1) * s
    out = []
    for ty in range(max(1, math.ceil((by1 - by0) / tile0))):
        for tx in range(max(1, math.ceil((bx1 - bx0) / tile0))):
            X0, Y0 = bx0 + tx * tile0, by0 + ty * tile0
            n = int(he_mask_low[int(Y0 / s):math.ceil((Y0 + tile0) / s),
                                int(X0 / s):math.ceil((X0 + tile0) / s)].sum())
            if n:
                out.append((float(X0), float(Y0), n))
    return out


def _make_dis(o: RefineOptions) -> Any:
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    dis = cv2.DISOpticalFlow_create(presets[o.preset])  # type: ignore[attr-defined]
    if o.finest_scale is not None:
        dis.setFinestScale(int(o.finest_scale))
    return dis


def pick_channel(he_img: Any, ph_img: Any, transform: PairTransform,
                 he_mask_low: npt.NDArray[np.bool_], he_low_scale: float,
                 channels: Sequence[str], options: RefineOptions | None = None
                 ) -> tuple[str, dict[str, float], dict[tuple[float, float], _Window]]:
    """The channel whose flow aligns the window with the most tissue best (NCC after).

    The slide-level fit picks its channel by keypoint inliers, which favour the coarse
    texture; the refinement needs the channel that agrees at cell scale (a haematoxylin
    counterstain: nuclei), so each candidate is tried on one window.

    Returns:
        ``(channel, NCC after per channel, {window origin: the winner's flow})``; pass the
        last to :func:`refine` so the window is not computed twice.
    """
    o = options or RefineOptions()
    wins = _windows(he_mask_low, he_low_scale, o.tile * max(o.ref_mpp / transform.he_mpp, 1.0))
    if len(channels) < 2 or not wins:
        return channels[0], {}, {}
    X0, Y0, _n = max(wins, key=lambda w: w[2])
    dis = _make_dis(o)
    scores: dict[str, float] = {}
    flows: dict[str, _Window | None] = {}
    for ch in channels:
        flows[ch] = win = _flow_window(he_img, ph_img, transform, X0, Y0, ch, o, dis)
        scores[ch] = win.na if win is not None and math.isfinite(win.na) else -1.0
    best = max(channels, key=lambda c: scores[c])
    done = flows[best]
    return best, scores, ({(X0, Y0): done} if done is not None else {})


def refine(
    he_img: Any,
    ph_img: Any,
    transform: PairTransform,
    he_mask_low: npt.NDArray[np.bool_],
    he_low_scale: float,
    channel: str,
    options: RefineOptions | None = None,
    progress: Callable[[], None] | None = None,
    precomputed: dict[tuple[float, float], _Window] | None = None,
) -> PairTransform:
    """Add a smooth displacement field to ``transform`` (which holds the global affine).

    Args:
        he_img: H&E image source (``open_image``).
        ph_img: pHH3 image source.
        transform: the global fit (affine only); a new transform is returned.
        he_mask_low: H&E tissue mask at low resolution.
        he_low_scale: level-0 px per low-resolution px of that mask.
        channel: shared channel name.
        options: refinement options.
        progress: called once per window.
        precomputed: windows already flowed on ``channel`` (from :func:`pick_channel`).

    Returns:
        A transform with ``field``, ``residual``, ``fallback`` and ``failed`` grids and
        quality figures (``regions``: one entry per window with its NCC and QA).
    """
    o = options or RefineOptions()
    mpp = transform.he_mpp
    r0 = max(o.ref_mpp / mpp, 1.0)  # level-0 px per refinement px (never upsample)
    step0 = max(o.step_um / mpp, 1.0)
    gw = math.ceil(he_img.width / step0) + 1
    gh = math.ceil(he_img.height / step0) + 1
    acc = np.zeros((gh, gw, 2), np.float32)
    good = np.zeros((gh, gw), bool)
    res = np.full((gh, gw), np.nan, np.float32)
    failed = np.zeros((gh, gw), bool)
    regions: list[dict[str, Any]] = []
    tile0 = o.tile * r0
    wins = _windows(he_mask_low, he_low_scale, tile0)
    if not wins:
        return transform
    dis = _make_dis(o)
    n_ok = 0
    ncc_before: list[float] = []
    ncc_after: list[float] = []
    for X0, Y0, _n in wins:
        if progress is not None:
            progress()
        win = (precomputed or {}).get((X0, Y0))
        if win is None:
            win = _flow_window(he_img, ph_img, transform, X0, Y0, channel, o, dis)
        if win is None:
            continue
        ncc_before.append(win.nb)
        ncc_after.append(win.na)
        ok = bool(win.na >= win.nb - 0.01 and win.na >= o.min_window_ncc)
        regions.append({"xyxy": [round(X0), round(Y0), round(X0 + tile0), round(Y0 + tile0)],
                        "ncc_before": _round(win.nb), "ncc_after": _round(win.na), "ok": ok})
        cells = _core_cells(X0, Y0, tile0, step0, he_img.width, he_img.height)
        if cells is None:
            continue
        if not ok:  # the region says so instead of mapping wrong
            failed[cells] = True
            continue
        n_ok += 1
        _paste_window(win, cells, step0, acc, good, res)
    quality = dict(transform.quality)
    quality.update({
        "refine_windows": len(regions), "refine_windows_ok": n_ok,
        "ncc_before": _nanmedian(ncc_before), "ncc_after": _nanmedian(ncc_after),
        "refine_mpp": r0 * mpp, "field_step_um": o.step_um, "refine_channel": channel,
        "regions_failed": sum(1 for r in regions if not r["ok"]), "regions": regions,
    })
    return _with_field(transform, quality, acc, good, res, failed, step0, he_mask_low,
                       he_low_scale)


def _core_cells(X0: float, Y0: float, tile0: float, step0: float, width: int, height: int
                ) -> tuple[slice, slice] | None:
    """Field-grid cells (rows, columns) whose points lie inside a window's core.

    The window's top-left corner is ``(X0, Y0)`` and its side ``tile0``, in level-0 H&E
    pixels; grid point ``(i, j)`` sits at ``(j * step0, i * step0)``. None when empty.
    """
    j0 = math.ceil(X0 / step0)
    j1 = math.floor(min(X0 + tile0, width) / step0)
    i0 = math.ceil(Y0 / step0)
    i1 = math.floor(min(Y0 + tile0, height) / step0)
    if j1 < j0 or i1 < i0:
        return None
    return slice(i0, i1 + 1), slice(j0, j1 + 1)


def _paste_window(win: _Window, sl: tuple[slice, slice], step0: float, acc: F32,
                  good: npt.NDArray[np.bool_], res: F32) -> None:
    """Sample a window's flow (level-0 px) at grid cells ``sl`` into ``acc``/``good``/``res``.

    Only cells whose sample is fully inside the window's valid area are written.
    """
    import cv2

    i0, i1 = sl[0].start, sl[0].stop - 1
    j0, j1 = sl[1].start, sl[1].stop - 1
    jj, ii = np.meshgrid(np.arange(j0, j1 + 1), np.arange(i0, i1 + 1))
    tx_ = ((jj * step0 - win.ox) / win.r - 0.5).astype(np.float32)
    ty_ = ((ii * step0 - win.oy) / win.r - 0.5).astype(np.float32)
    sv = cv2.remap(win.valid.astype(np.float32), tx_, ty_, cv2.INTER_LINEAR) > 0.99
    for k in range(2):
        sk = cv2.remap(win.fs[:, :, k], tx_, ty_, cv2.INTER_LINEAR)
        acc[sl][..., k] = np.where(sv, sk * win.r, acc[sl][..., k])
    good[sl] |= sv
    res[sl] = np.where(sv, cv2.remap(win.fb_s, tx_, ty_, cv2.INTER_LINEAR), res[sl])


def _with_field(transform: PairTransform, quality: dict[str, Any], acc: F32,
                good: npt.NDArray[np.bool_], res: F32, failed: npt.NDArray[np.bool_],
                step0: float, he_mask_low: npt.NDArray[np.bool_], he_low_scale: float
                ) -> PairTransform:
    """The refined transform: ``transform``'s affine plus the filled field (grid step ``step0``).

    Without any fitted cell the transform keeps only its affine (``quality["refined"]``
    False).
    """
    if not good.any():
        quality["refined"] = False
        return PairTransform(transform.affine, None, (0.0, 0.0), step0, None, None,
                             transform.he_mpp, transform.phh3_mpp, quality,
                             failed if failed.any() else None)
    gh, gw = good.shape
    field = _fill(acc, good)
    quality["refined"] = True
    quality["field_fallback_fraction"] = float((~good)[_tissue_grid(
        he_mask_low, he_low_scale, step0, gh, gw)].mean())
    quality["residual_median_um"] = _nanmedian(list(res[good].ravel()))
    return PairTransform(transform.affine, field, (0.0, 0.0), step0, res, ~good,
                         transform.he_mpp, transform.phh3_mpp, quality,
                         failed if failed.any() else None)


def _fill(acc: F32, good: npt.NDArray[np.bool_]) -> F32:
    """Fill grid cells without a local fit from the nearest fitted cell, then blend seams."""
    import cv2
    from scipy.ndimage import distance_transform_edt

    _, (ri, ci) = distance_transform_edt(~good, return_indices=True)
    field = acc[ri.astype(np.int32), ci.astype(np.int32)]
    del ri, ci
    for k in range(2):  # light smoothing of the assembled grid to blend window seams
        field[:, :, k] = cv2.GaussianBlur(field[:, :, k], (0, 0), 1.0)
    return np.asarray(field, np.float32)


def _round(v: float) -> float | None:
    return round(float(v), 4) if math.isfinite(v) else None


def _nanmedian(v: list[float]) -> float | None:
    a = np.asarray(v, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None


def _tissue_grid(mask_low: npt.NDArray[np.bool_], s: float, step0: float, gh: int, gw: int
                 ) -> npt.NDArray[np.bool_]:
    ii, jj = np.mgrid[0:gh, 0:gw]
    r = np.clip((ii * step0 / s).astype(int), 0, mask_low.shape[0] - 1)
    c = np.clip((jj * step0 / s).astype(int), 0, mask_low.shape[1] - 1)
    return mask_low[r, c]
