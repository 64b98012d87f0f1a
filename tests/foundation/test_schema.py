"""Schema: generated files current, records match, the validator catches what pyarrow does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mfcurate.errors import SchemaValidationError
from mfcurate.geometry import encode_mask
from mfcurate.schemas import (
    IMAGES_SCHEMA,
    OBJECTS_SCHEMA,
    ImageRecord,
    ObjectRecord,
    images_table,
    objects_table,
    validate_images,
    validate_objects,
)
from mfcurate.schemas.export import generated_files
from mfcurate.schemas.tables import record_fields

REPO = Path(__file__).resolve().parents[2]


def test_generated_schema_files_are_current() -> None:
    for path, text in generated_files(REPO).items():
        assert path.exists(), f"{path} missing: run python -m mfcurate.schemas.export"
        assert path.read_text(encoding="utf-8") == text, \
            f"{path} is stale: run python -m mfcurate.schemas.export"


def test_records_have_the_schema_fields() -> None:
    assert record_fields(ImageRecord) == IMAGES_SCHEMA.names
    assert sorted(record_fields(ObjectRecord)) == sorted(OBJECTS_SCHEMA.names)


def _image(**kw) -> ImageRecord:
    base = dict(image_key="s/1", source="s", source_image_id="1", path="1.png", width=100,
                height=80, mpp_x=0.25, mpp_y=0.25)
    base.update(kw)
    return ImageRecord(**base)


def _obj(**kw) -> ObjectRecord:
    base = dict(object_key="s/1/1", image_key="s/1", source="s", source_annotation_id="1",
                label="mitotic_figure", label_origin="box", centroid_xy=(10.0, 10.0),
                bbox_xyxy=(5.0, 5.0, 15.0, 15.0))
    base.update(kw)
    return ObjectRecord(**base)


def test_validator_accepts_a_good_table() -> None:
    images = images_table([_image()])
    m = np.ones((10, 10), bool)
    validate_objects(objects_table([_obj(mask_rle=encode_mask(m), mask_origin="sam_box")]),
                     images)


@pytest.mark.parametrize("bad, match", [
    (dict(label="mitosis"), "vocabulary"),
    (dict(bbox_xyxy=(5.0, 5.0, 4.0, 15.0)), "positive box"),
    (dict(bbox_xyxy=(50.0, 5.0, 101.0, 15.0)), "outside its image"),
    (dict(image_key="s/2"), "not in the images table"),
    (dict(mask_rle=encode_mask(np.ones((9, 10), bool)), mask_origin="sam_box"), "grid"),
    (dict(mask_rle=encode_mask(np.ones((10, 10), bool))), "mask_origin"),
    (dict(qa_state="maybe"), "vocabulary"),
])
def test_validator_rejects(bad: dict, match: str) -> None:
    with pytest.raises(SchemaValidationError, match=match):
        validate_objects(objects_table([_obj(**bad)]), images_table([_image()]))


def test_validator_catches_nulls_pyarrow_lets_through() -> None:
    t = objects_table([_obj()])
    t = t.set_column(t.schema.get_field_index("label"), OBJECTS_SCHEMA.field("label"),
                     pa.array([None], pa.string()))
    with pytest.raises(SchemaValidationError, match="nulls"):
        validate_objects(t)


def test_validator_catches_duplicate_keys() -> None:
    with pytest.raises(SchemaValidationError, match="not unique"):
        validate_objects(objects_table([_obj(), _obj()]))
    with pytest.raises(SchemaValidationError, match="not unique"):
        validate_images(images_table([_image(), _image()]))
