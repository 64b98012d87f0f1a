"""The HTML dataset report (``mfcurate report``) and the statistics it shares with publish."""
