"""Test support shipped with the package: stand-ins and evaluation harnesses.

Nothing in the library imports this package; tests, benchmarks and the demo do.
"""
