"""Exports of a dataset for other tools: COCO, GeoJSON, Parquet and image crops."""
