"""Measuring landmarks: metrics (NME with an explicit norm, FR, CED, AUC), the evaluation protocols, plots."""
