"""Cameras and dataset layouts: intrinsics and their checks, KITTI's and one's own folders, KITTI's calibration,
chessboard calibration, rectification, calibration imports, EXIF focal lengths, camera poses."""
