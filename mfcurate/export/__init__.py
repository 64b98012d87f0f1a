"""Exports of a dataset to other formats (COCO here; GeoJSON, Parquet and crops beside it)."""
