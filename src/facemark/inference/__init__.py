"""From images to faces: detectors (each owning its box map), the ONNX runtime, the crop predictor protocol
and the Landmarker pipeline."""
