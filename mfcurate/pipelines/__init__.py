"""Pipelines: steps that read and write datasets (ingest, refine-masks, harvest, ...)."""
