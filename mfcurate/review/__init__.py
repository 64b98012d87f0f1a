"""The review round trip: export masks for people (QuPath GeoJSON, PNG overlays), read back."""
