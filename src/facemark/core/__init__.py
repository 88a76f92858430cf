"""The bottom layer: errors, registries, landmark schemes, point arrays, geometry (crop, align, pose), codecs.

Nothing here knows about files, detectors, ONNX Runtime or torch; everything above builds on it.
"""
