"""The one segmenter spec: validation naming fields, round trip, one cached model."""

from __future__ import annotations

import pytest

from mfcurate.errors import UsageError
from mfcurate.segment.spec import (
    DEFAULT_SAM_MODEL,
    SegmenterSpec,
    auto_segmenter,
    box_segmenter,
    clear_cache,
    resolve_device,
)


def test_defaults_are_the_papers() -> None:
    assert DEFAULT_SAM_MODEL == "vit_h"
    s = SegmenterSpec()
    assert s.kind == "classical" and s.sam_model == "vit_h" and not s.uses_sam
    assert SegmenterSpec(sam_checkpoint="w.pth").kind == "sam"
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")


@pytest.mark.parametrize("kw,field", [({"kind": "magic"}, "kind"),
                                      ({"kind": "sam"}, "sam_checkpoint"),
                                      ({"sam_model": "vit_x"}, "sam_model")])
def test_errors_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(UsageError, match=f"SegmenterSpec.{field}|needs {field}"):
        SegmenterSpec(**kw)


def test_round_trip_and_key() -> None:
    s = SegmenterSpec.make("classical", threshold=0.2, min_area_um2=None)
    assert s.options == (("threshold", 0.2),)
    assert SegmenterSpec.from_dict(s.to_dict()) == s
    assert s.key() == SegmenterSpec.from_dict(s.to_dict()).key()
    assert hash(s) == hash(SegmenterSpec.from_dict(s.to_dict()))


def test_one_instance_per_spec() -> None:
    clear_cache()
    a = auto_segmenter(SegmenterSpec())
    assert auto_segmenter(SegmenterSpec().to_dict()) is a
    b = box_segmenter(SegmenterSpec())
    assert box_segmenter(SegmenterSpec()) is b and b is not a
    with pytest.raises(UsageError):
        box_segmenter(SegmenterSpec.make("sam_stock", sam_checkpoint="w.pth"))
