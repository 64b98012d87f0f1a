"""mfcurate: curate public mitotic-figure datasets into one pan-cancer nuclei-mask dataset.

Conventions used everywhere in the package:

* Coordinates are level-0 pixels of the image or slide; x is the column, y the row.
  The origin is the top-left corner of the first pixel (pycocotools' 0-indexed rule),
  so pixel (col=i, row=j) covers ``[i, i+1) x [j, j+1)``.
* ``bbox_xyxy`` is ``[x_min, y_min, x_max, y_max]`` as floats (half-open), ``centroid_xy``
  is ``[x, y]``.  COCO's ``[x, y, w, h]`` appears only in the COCO export.
* Physical sizes go through each image's µm/px (``mpp_x``, ``mpp_y``); nothing assumes 0.25.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
