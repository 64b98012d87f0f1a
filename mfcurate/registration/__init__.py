"""H&E <-> pHH3 re-stain registration and transfer of DAB-positive nuclei (``register-phh3``).

Modules: :mod:`.channels` (deconvolution, shared channels, tissue masks), :mod:`.rigid`
(slide-level SIFT + RANSAC similarity), :mod:`.refine` (DIS optical-flow field),
:mod:`.transform` (the JSON transform object), :mod:`.dab` (DAB detection), :mod:`.transfer`
(masks onto the H&E), :mod:`.outputs` (pair folder), :mod:`.pair` (one pair end to end).
"""

from mfcurate.registration.pair import PairResult, RegisterOptions, register_pair
from mfcurate.registration.transform import PairTransform

__all__ = ["PairResult", "PairTransform", "RegisterOptions", "register_pair"]
