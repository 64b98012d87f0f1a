"""Publishing a dataset: the upload package, its metadata files and the Zenodo deposit."""
