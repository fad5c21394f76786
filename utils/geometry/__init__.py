"""Geometry of depth maps: disparity/depth conventions, point clouds, the ground plane, evaluation metrics."""
