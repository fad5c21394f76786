"""Cameras: intrinsics, the KITTI and folder layouts, calibration files and imports, EXIF focal lengths."""
