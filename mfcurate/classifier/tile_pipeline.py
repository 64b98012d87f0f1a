"""Detection over a whole slide, tile by tile, reading, segmenting and classifying at once.

Three stages run at once on one image:

1. a **reader thread** reads the next tiles (each with the margin a classifier patch needs
   around an object at the tile edge) while the current one is segmented; at most
   ``prefetch`` tiles wait in its queue;
2. the **calling thread** segments each tile, applies the one seam rule of
   :class:`mfcurate.tiling.TileGrid` (an object cut by an inner tile edge is dropped when
   another selected tile holds it whole) and cuts every candidate's classifier patch
   exactly as the patch store does (:func:`mfcurate.classifier.patches.resample_patch`);
3. a **classifier thread** scores the patches in batches of ``batch_size`` gathered across
   tiles (one batch in flight while the next fills).

Memory is bounded by a few tiles: ``prefetch`` tiles in the reader queue, the one being
segmented, and at most two batches of patches; only the candidates' points and scores are
kept for the whole slide.  A tile that cannot be read is counted in ``tiles_failed`` and
skipped, never failing the slide.

Coordinates are level-0 px (x = column); tiles are ``(x, y, w, h)``; patches are
``(N, S, S, 3)`` uint8 and masks ``(N, S, S)`` uint8.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.classifier.patches import PatchConfig, resample_patch
from mfcurate.geometry import encode_mask
from mfcurate.segment import AutoSegmenter
from mfcurate.tiling import Tile, TileGrid

_END = object()


@dataclass
class Candidate:
    """One segmented object in level-0 coordinates, with its ensemble score once classified.

    ``mask_rle`` is the tight mask (compressed COCO RLE) on the level-0 grid ``mask_grid``
    ``(x0, y0, w, h)``, kept compact so that the parts of one figure can be joined after
    classification (:func:`mfcurate.classifier.detect.join_figure_parts`); ``n_parts`` is
    the number of candidates joined into this one.
    """

    x: float
    y: float
    area_px: int
    seg_score: float
    origin: str
    score: float = float("nan")
    member_scores: tuple[float, ...] = ()
    mask_rle: str = ""
    mask_grid: tuple[int, int, int, int] = (0, 0, 0, 0)
    n_parts: int = 1


def assign_scores(cands: Sequence[Candidate], scores: npt.NDArray[np.float64]) -> None:
    """Set candidates' scores from ``(N,)`` scores or ``(K, N)`` per-member scores.

    With member scores, ``score`` is their mean and ``member_scores`` keeps each.
    """
    if scores.ndim == 2:
        for c, col in zip(cands, scores.T, strict=True):
            c.score = float(col.mean())
            c.member_scores = tuple(float(v) for v in col)
        return
    for c, v in zip(cands, scores, strict=True):
        c.score = float(v)


@dataclass
class TileTimes:
    """Where one image's detection time went (seconds, summed over tiles).

    ``read`` runs in the reader thread and ``classify`` in the classifier thread, both
    overlapped with ``segment`` (segmentation, seam rule) and ``cut`` (patch resampling) in
    the calling thread, so ``wall`` is less than their sum.  ``figures_joined`` counts the
    figures made of two or more joined candidates (multi-part figures).
    """

    tiles: int = 0
    tiles_failed: int = 0
    candidates: int = 0
    figures_joined: int = 0
    read: float = 0.0
    segment: float = 0.0
    cut: float = 0.0
    classify: float = 0.0
    wall: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (summary.json)."""
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def array_reader(arr: npt.NDArray[np.uint8], ox: int, oy: int
                 ) -> Callable[[int, int, int, int], npt.NDArray[np.uint8]]:
    """``read(x, y, w, h)`` on an array whose pixel [0, 0] is level-0 ``(ox, oy)``.

    Pixels outside the array are white (glass), as the slide readers return them.
    """
    def read(x: int, y: int, w: int, h: int) -> npt.NDArray[np.uint8]:
        out = np.full((h, w, 3), 255, np.uint8)
        x0, y0 = x - ox, y - oy
        r0, c0 = max(0, -y0), max(0, -x0)
        r1, c1 = min(h, arr.shape[0] - y0), min(w, arr.shape[1] - x0)
        if r1 > r0 and c1 > c0:
            out[r0:r1, c0:c1] = arr[y0 + r0:y0 + r1, x0 + c0:x0 + c1]
        return out
    return read


def patch_margin(patch: PatchConfig, mpp: tuple[float, float]) -> int:
    """Level-0 px read around a tile so every patch of an object inside it is in memory."""
    f = max(patch.mpp / mpp[0], patch.mpp / mpp[1])
    return math.ceil(patch.size_px / 2 * f) + 8


def tile_candidates(arr: npt.NDArray[np.uint8], margin: int, tile: Tile,
                    segmenter: AutoSegmenter, patch: PatchConfig, mpp: tuple[float, float],
                    grid: TileGrid, selected: set[Tile] | None
                    ) -> tuple[list[Candidate], list[npt.NDArray[np.uint8]],
                               list[npt.NDArray[np.uint8]], float]:
    """Segment one tile (read with ``margin`` px around it); keep objects by the seam rule.

    Returns:
        ``(candidates, patches, masks, segment_seconds)``; the rest of the time went into
        cutting patches.
    """
    tx, ty, tw, th = tile
    t0 = time.perf_counter()
    tile_rgb = np.ascontiguousarray(arr[margin:margin + th, margin:margin + tw])
    insts = segmenter.segment_tile(tile_rgb, math.sqrt(mpp[0] * mpp[1]))
    kept = []
    for inst in insts:
        rows = np.flatnonzero(inst.mask.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(inst.mask.any(axis=0))
        ox, oy = tx + inst.offset_xy[0], ty + inst.offset_xy[1]
        box = (ox + cols[0], oy + rows[0], ox + cols[-1] + 1, oy + rows[-1] + 1)
        if grid.keep(box, tile, selected):
            kept.append((inst, ox, oy, rows, cols))
    t_seg = time.perf_counter() - t0
    read = array_reader(arr, tx - margin, ty - margin)
    cands: list[Candidate] = []
    rgbs: list[npt.NDArray[np.uint8]] = []
    masks: list[npt.NDArray[np.uint8]] = []
    for inst, ox, oy, rows, cols in kept:
        ys, xs = np.nonzero(inst.mask)
        cx, cy = ox + xs.mean() + 0.5, oy + ys.mean() + 0.5
        rgb, m = resample_patch(read, (cx, cy), mpp, patch, inst.mask.astype(bool), (ox, oy))
        tight = inst.mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        cands.append(Candidate(float(cx), float(cy), int(xs.size), float(inst.score),
                               inst.origin, mask_rle=encode_mask(tight),
                               mask_grid=(int(ox + cols[0]), int(oy + rows[0]),
                                          int(tight.shape[1]), int(tight.shape[0]))))
        rgbs.append(rgb)
        masks.append(m)
    return cands, rgbs, masks, t_seg


class _Worker(threading.Thread):
    """A daemon thread running ``fn(item)`` for queued items; remembers the first error."""

    def __init__(self, fn: Callable[[Any], None], maxsize: int) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.q.get()) is not _END:
            if self.error is None:
                try:
                    self.fn(item)
                except BaseException as exc:  # re-raised in the calling thread
                    self.error = exc


def _reader(src: Any, tiles: Sequence[Tile], margin: int, out: queue.Queue[Any],
            stop: threading.Event, times: TileTimes) -> None:
    for t in tiles:
        if stop.is_set():
            break
        tx, ty, tw, th = t
        t0 = time.perf_counter()
        try:
            arr = src.read_region(tx - margin, ty - margin, tw + 2 * margin, th + 2 * margin)
        except Exception:  # one unreadable tile (corrupt JPEG...) never fails the slide
            arr = None
        times.read += time.perf_counter() - t0
        out.put((t, arr))
    out.put(_END)


def detect_tiles(src: Any, segmenter: AutoSegmenter, predict: Callable[..., Any],
                 patch: PatchConfig, mpp: tuple[float, float], grid: TileGrid,
                 tiles: Sequence[Tile], *, batch_size: int = 256, prefetch: int = 2
                 ) -> tuple[list[Candidate], TileTimes]:
    """Every candidate of the ``tiles`` of one image, scored by ``predict``.

    Args:
        src: an opened image (``read_region(x, y, w, h)``, level-0 px, white outside).
        segmenter: the automatic segmenter.
        predict: ``predict(rgb (N,S,S,3) uint8, mask (N,S,S) uint8) -> (N,) scores``.
        patch: classifier patch geometry.
        mpp: ``(mpp_x, mpp_y)`` of level 0.
        grid: the image's tile grid (for the seam rule).
        tiles: the tiles to run, all of ``grid`` (e.g. those over tissue).
        batch_size: patches per classifier call.
        prefetch: tiles read ahead; 0 runs the stages one after another in the calling
            thread, each tile classified on its own (the sequential baseline).

    Returns:
        ``(candidates, times)``; candidates in tile order, not yet de-duplicated.
    """
    times = TileTimes(tiles=len(tiles))
    t_wall = time.perf_counter()
    margin = patch_margin(patch, mpp)
    selected = set(tiles)
    if prefetch <= 0:
        seq = _sequential(src, segmenter, predict, patch, mpp, grid, tiles, margin, times)
        times.candidates = len(seq)
        times.wall = time.perf_counter() - t_wall
        return seq, times

    def classify(item: tuple[list[Candidate], list[Any], list[Any]]) -> None:
        cands, rgbs, masks = item
        t0 = time.perf_counter()
        assign_scores(cands, predict(np.stack(rgbs), np.stack(masks)))
        times.classify += time.perf_counter() - t0

    clf = _Worker(classify, maxsize=1)
    clf.start()
    tiles_q: queue.Queue[Any] = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(src, tiles, margin, tiles_q, stop, times),
                              daemon=True)
    reader.start()
    out: list[Candidate] = []
    pend: tuple[list[Candidate], list[Any], list[Any]] = ([], [], [])
    try:
        while (item := tiles_q.get()) is not _END:
            tile, arr = item
            if arr is None:
                times.tiles_failed += 1
                continue
            t0 = time.perf_counter()
            cands, rgbs, masks, t_seg = tile_candidates(arr, margin, tile, segmenter, patch,
                                                        mpp, grid, selected)
            times.segment += t_seg
            times.cut += time.perf_counter() - t0 - t_seg
            out.extend(cands)
            pend[0].extend(cands)
            pend[1].extend(rgbs)
            pend[2].extend(masks)
            if len(pend[0]) >= batch_size:
                clf.q.put(pend)
                pend = ([], [], [])
            if clf.error is not None:
                break
        if pend[0] and clf.error is None:
            clf.q.put(pend)
    finally:
        _shutdown(stop, reader, tiles_q, clf)
    if clf.error is not None:
        raise clf.error
    times.candidates = len(out)
    times.wall = time.perf_counter() - t_wall
    return out, times


def _shutdown(stop: threading.Event, reader: threading.Thread, tiles_q: queue.Queue[Any],
              clf: _Worker) -> None:
    """Stop the reader thread, then end the classifier worker and wait for it.

    ``tiles_q`` is drained so a reader blocked on a full queue can see ``stop``; the worker
    finishes the batches already queued before it sees its end marker.
    """
    stop.set()
    while reader.is_alive():  # unblock a reader waiting on a full queue
        try:
            tiles_q.get(timeout=0.05)
        except queue.Empty:
            pass
    clf.q.put(_END)
    clf.join()


def _sequential(src: Any, segmenter: AutoSegmenter, predict: Callable[..., Any],
                patch: PatchConfig, mpp: tuple[float, float], grid: TileGrid,
                tiles: Sequence[Tile], margin: int, times: TileTimes) -> list[Candidate]:
    """Read, segment and classify each tile in turn (no threads)."""
    q: queue.Queue[Any] = queue.Queue()
    out: list[Candidate] = []
    selected = set(tiles)
    for tile in tiles:
        _reader(src, [tile], margin, q, threading.Event(), times)
        _tile, arr = q.get()
        q.get()  # the end marker
        if arr is None:
            times.tiles_failed += 1
            continue
        t0 = time.perf_counter()
        cands, rgbs, masks, t_seg = tile_candidates(arr, margin, tile, segmenter, patch, mpp,
                                                    grid, selected)
        times.segment += t_seg
        times.cut += time.perf_counter() - t0 - t_seg
        if cands:
            t1 = time.perf_counter()
            assign_scores(cands, predict(np.stack(rgbs), np.stack(masks)))
            times.classify += time.perf_counter() - t1
        out.extend(cands)
    return out
