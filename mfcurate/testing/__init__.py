"""Test-only helpers: stand-ins, evaluation harnesses and independent data generators.

Nothing in the library imports this package (tests and ``bench/`` do); it may import
:mod:`mfcurate.synth`.

Modules: :mod:`.zenodo_standin` (a local Zenodo API with fault injection),
:mod:`.evaluate` (score a registration against a synthetic pair's truth),
:mod:`.realpairs` (real H&E/IHC landmark pairs), :mod:`.warp_pairs` (a second, independent
H&E/pHH3 pair generator with thin-plate-spline warps and re-stain artefacts, rendered tile by
tile so whole-slide sizes fit in memory).
"""
