"""``python -m mfcurate`` entry point."""

from mfcurate.cli import main

main()
