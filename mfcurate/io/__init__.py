"""Image reading behind one abstraction (OpenSlide, tifffile, Pillow, in-memory arrays)."""

from mfcurate.io.reader import ArrayImage, ImageSource, open_image, probe_image

__all__ = ["ArrayImage", "ImageSource", "open_image", "probe_image"]
