"""Geometry: depth conventions, point clouds, ground plane, evaluation metrics, poses and time."""
