"""One typed segmenter spec and one worker model cache (refine, harvest, detect, register).

:class:`SegmenterSpec` names a segmenter the same way everywhere (``kind``,
``sam_checkpoint``, ``sam_model``, ``device``, ``options``), validates itself, is hashable
(it keys per-task results and the cache) and crosses process boundaries as a plain dict.
:func:`box_segmenter` and :func:`auto_segmenter` build from a spec once per worker process:
a SAM is loaded once per process and configuration, and one model at a time is kept, so a
worker never holds two ViT-H.  For the ``sam`` kind the cached model's image encoder runs
:mod:`mfcurate.segment.fast_attention` (the same embeddings to float rounding, ~4x faster on
a CPU for ViT-B); ``fast_encoder=False`` keeps segment_anything's own forward, and the
``sam_stock`` reference never uses it.  ``encoder_bf16=True`` (opt-in) runs that encoder in
bf16 autocast: faster where the hardware has bf16, but not the float32 embedding.

Defaults follow the OMG-Net paper: SAM ViT-H (``sam_model = "vit_h"``) when a checkpoint is
given; ``device = "auto"`` picks CUDA when torch sees a GPU, else the CPU.  Without a
checkpoint the documented classical segmenter (haematoxylin optical density) does the job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mfcurate.errors import UsageError
from mfcurate.segment import AutoSegmenter, BoxSegmenter

#: The paper's SAM: ViT-H.
DEFAULT_SAM_MODEL = "vit_h"
SAM_MODELS = ("vit_h", "vit_l", "vit_b", "tiny")
#: Segmenter kinds: classical (no weights), SAM, and segment_anything's own generator.
KINDS = ("classical", "sam", "sam_stock")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values as given."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class SegmenterSpec:
    """Which segmenter to build.

    Attributes:
        kind: ``classical``, ``sam`` or ``sam_stock`` (``auto``: ``sam`` when a checkpoint is
            given, else ``classical``).
        sam_checkpoint: SAM weights file (a user path; nothing is downloaded).
        sam_model: SAM architecture of the checkpoint (default ViT-H, the paper's).
        device: torch device, or ``auto`` (CUDA when available).
        options: segmenter options (e.g. ``points_per_side``, ``batch_size``), as sorted
            ``(name, value)`` pairs so the spec stays hashable.
        fast_encoder: run the image encoder's attention through the fused kernel
            (:func:`mfcurate.segment.fast_attention.patch_image_encoder`; ``sam`` kind only).
        encoder_bf16: run the image encoder in bf16 autocast
            (:func:`mfcurate.segment.fast_attention.set_encoder_bf16`; opt-in, ``sam`` only).
    """

    kind: str = "auto"
    sam_checkpoint: str | None = None
    sam_model: str = DEFAULT_SAM_MODEL
    device: str = "auto"
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    fast_encoder: bool = True
    encoder_bf16: bool = False

    def __post_init__(self) -> None:
        kind = self.kind
        if kind == "auto":
            kind = "sam" if self.sam_checkpoint else "classical"
            object.__setattr__(self, "kind", kind)
        if kind not in KINDS:
            raise UsageError(f"SegmenterSpec.kind = {kind!r}: choose auto, {', '.join(KINDS)}")
        if kind != "classical" and not self.sam_checkpoint:
            raise UsageError(f"SegmenterSpec.kind = {kind!r} needs sam_checkpoint (a SAM "
                             "weights file); without one use the classical segmenter")
        if self.sam_model not in SAM_MODELS:
            raise UsageError(f"SegmenterSpec.sam_model = {self.sam_model!r}: choose "
                             f"{', '.join(SAM_MODELS)}")
        if self.sam_checkpoint is not None:
            object.__setattr__(self, "sam_checkpoint", str(self.sam_checkpoint))
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))
        object.__setattr__(self, "fast_encoder", bool(self.fast_encoder))
        object.__setattr__(self, "encoder_bf16", bool(self.encoder_bf16))

    @classmethod
    def make(cls, kind: str = "auto", sam_checkpoint: Any = None,
             sam_model: str = DEFAULT_SAM_MODEL, device: str = "auto",
             fast_encoder: bool = True, encoder_bf16: bool = False,
             **options: Any) -> SegmenterSpec:
        """Build with options as keywords (None values dropped)."""
        return cls(kind, None if sam_checkpoint is None else str(sam_checkpoint), sam_model,
                   device, tuple((k, v) for k, v in options.items() if v is not None),
                   fast_encoder, encoder_bf16)

    @property
    def uses_sam(self) -> bool:
        """Whether a SAM model is loaded."""
        return self.kind != "classical"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able; what task payloads carry)."""
        d = asdict(self)
        d["options"] = dict(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmenterSpec:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        return cls(str(d.get("kind", "auto")), d.get("sam_checkpoint"),
                   str(d.get("sam_model", DEFAULT_SAM_MODEL)), str(d.get("device", "auto")),
                   tuple(dict(d.get("options") or {}).items()),
                   bool(d.get("fast_encoder", True)), bool(d.get("encoder_bf16", False)))

    def key(self) -> str:
        """Stable text key (hashing, caching)."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


_CACHE: dict[str, Any] = {}


def _cached(role: str, spec: SegmenterSpec, build: Any) -> Any:
    key = f"{role}:{spec.key()}"
    if key not in _CACHE:
        if spec.uses_sam:
            for k in [k for k in _CACHE if k.split(":", 1)[1] != spec.key()]:
                del _CACHE[k]  # one SAM configuration per worker at a time
        _CACHE[key] = build()
    return _CACHE[key]


def box_segmenter(spec: SegmenterSpec | dict[str, Any]) -> BoxSegmenter:
    """The box segmenter of ``spec``, built once per worker process."""
    s = spec if isinstance(spec, SegmenterSpec) else SegmenterSpec.from_dict(spec)
    if s.kind == "sam_stock":
        raise UsageError("SegmenterSpec.kind = 'sam_stock' has no box segmenter; use sam")

    def build() -> BoxSegmenter:
        from mfcurate.segment.box import make_box_segmenter

        return make_box_segmenter(s.kind, s.sam_checkpoint, s.sam_model,
                                  resolve_device(s.device), fast_encoder=s.fast_encoder,
                                  encoder_bf16=s.encoder_bf16, **dict(s.options))

    seg: BoxSegmenter = _cached("box", s, build)
    return seg


def auto_segmenter(spec: SegmenterSpec | dict[str, Any]) -> AutoSegmenter:
    """The automatic segmenter of ``spec``, built once per worker process."""
    s = spec if isinstance(spec, SegmenterSpec) else SegmenterSpec.from_dict(spec)

    def build() -> AutoSegmenter:
        from mfcurate.segment.auto import make_auto_segmenter

        return make_auto_segmenter(s.kind, s.sam_checkpoint, s.sam_model,
                                   resolve_device(s.device), fast_encoder=s.fast_encoder,
                                   encoder_bf16=s.encoder_bf16, **dict(s.options))

    seg: AutoSegmenter = _cached("auto", s, build)
    return seg


def clear_cache() -> None:
    """Drop every cached segmenter (tests; freeing a GPU)."""
    _CACHE.clear()
