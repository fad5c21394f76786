"""Cameras: intrinsics, dataset layouts, calibration files and camera poses."""
