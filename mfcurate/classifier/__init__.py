"""Mitotic-figure classifier: patch store, mask-fused ResNet18, training and detection."""
