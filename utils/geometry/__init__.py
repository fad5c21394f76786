"""Geometry of depth maps: disparity/depth conventions, point clouds, the ground plane, evaluation metrics, temporal
consistency of depth over video (TAE) and its stabilisation."""
