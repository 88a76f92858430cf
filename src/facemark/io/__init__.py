"""Reading and writing: images (decoded to RGB), video frames, annotated datasets (a registry of formats)."""
