"""utils/geometry/temporal.py: the reprojection against a per-point loop, TAE = 0 for exact depth and poses
(and not for the inverse pose convention), TAE of a known per-frame scale error derived by hand with the
sequence alignment solved in closed form, the disparity fit against numpy's least squares, and the
per-sequence median scaling that keeps a per-frame scale error in the score."""
import numpy as np
import pytest

from utils.geometry.temporal import (apply_disparity_fit, consecutive_runs, fit_disparity, pair_error,
                                     relative_pose, reproject_depth, sequence_median_errors,
                                     temporal_alignment_error)
from utils.geometry.metrics import compute_depth_errors

K = np.array([[40.0, 0, 16], [0, 40.0, 12], [0, 0, 1]])
H, W = 24, 32


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _plane_drive(n, distance=20.0, dz=1.0):
    """Camera-to-world poses of a camera driving dz a frame towards a wall at world z = distance, drifting
    sideways and rolling about its optical axis (so the wall stays at one depth in every pixel), and the
    exact depth maps: frame t sees the wall at distance - dz t everywhere."""
    poses, depths = [], []
    for t in range(n):
        pose = np.eye(4)
        pose[:3, :3] = _rot_z(0.02 * t)
        pose[:3, 3] = (0.15 * t, -0.05 * t, dz * t)
        poses.append(pose)
        depths.append(np.full((H, W), distance - dz * t))
    return np.array(poses), depths


def test_reprojection_matches_a_per_point_loop():
    rng = np.random.default_rng(0)
    depth = rng.uniform(2, 9, (9, 12))
    depth[2, 3] = 0                                          # no depth: not projected
    k = np.array([[10.0, 0, 6], [0, 11.0, 4.5], [0, 0, 1]])
    t = np.eye(4)
    t[:3, :3] = _rot_z(0.05) @ np.array([[1, 0, 0], [0, np.cos(0.03), -np.sin(0.03)], [0, np.sin(0.03), np.cos(0.03)]])
    t[:3, 3] = (0.3, -0.1, 0.8)
    expected = np.zeros((9, 12))
    for v in range(9):
        for u in range(12):
            if depth[v, u] <= 0:
                continue
            x = depth[v, u] * np.linalg.inv(k) @ np.array([u, v, 1.0])
            x = t[:3, :3] @ x + t[:3, 3]
            if x[2] <= 0:
                continue
            p = k @ x / x[2]
            col, row = int(np.round(p[0])), int(np.round(p[1]))
            if 0 <= col < 12 and 0 <= row < 9 and (expected[row, col] == 0 or x[2] < expected[row, col]):
                expected[row, col] = x[2]
    got = reproject_depth(depth, t, k)
    assert np.allclose(got, expected, atol=1e-12) and (got > 0).sum() > 40


def test_relative_pose_maps_camera_a_into_camera_b():
    poses, _ = _plane_drive(3)
    point_in_0 = np.array([0.4, -0.2, 7.0, 1.0])
    world = poses[0] @ point_in_0
    assert np.allclose(relative_pose(poses[0], poses[2]) @ point_in_0, np.linalg.inv(poses[2]) @ world)


def test_tae_is_zero_for_exact_depth_and_poses():
    poses, depths = _plane_drive(5)
    result = temporal_alignment_error(depths, poses, K, align="none")
    assert result.tae == 0.0 and len(result.pairs) == 8 and None not in result.pairs
    # the alignment of exact depth is the identity
    fitted = temporal_alignment_error(depths, poses, K, gts=depths)
    assert fitted.scale == pytest.approx(1.0) and fitted.shift == pytest.approx(0.0, abs=1e-12)
    assert fitted.tae == pytest.approx(0.0, abs=1e-12)
    # world-to-camera matrices passed as camera-to-world: the wall moves the wrong way, 2 dz / Z wrong
    assert temporal_alignment_error(depths, np.linalg.inv(poses), K, align="none").tae > 0.09


def _expected_tae(aligned, dz):
    """Mean over pairs of the plane's errors (temporal.py docstring): aligned depth D_t of the wall,
    e(t -> t+1) = |D_{t+1} - (D_t - dz)| / D_{t+1}, e(t+1 -> t) = |D_t - (D_{t+1} + dz)| / D_t."""
    errors = []
    for a, b in zip(aligned, aligned[1:]):
        errors += [abs(b - (a - dz)) / b, abs(a - (b + dz)) / a]
    return np.mean(errors)


def test_tae_of_a_per_frame_scale_error_by_hand():
    dz, factors = 1.0, np.array([1.0, 1.1, 0.95, 1.05, 1.0])
    poses, truth = _plane_drive(5, dz=dz)
    z = np.array([d[0, 0] for d in truth])
    predicted = [f * d for f, d in zip(factors, truth)]
    # without alignment: D_t = k_t Z_t
    assert temporal_alignment_error(predicted, poses, K, align="none").tae == pytest.approx(
        _expected_tae(factors * z, dz), rel=1e-12)
    # one scale and shift for the sequence, in disparity: a line through the points (1 / (k_t Z_t), 1 / Z_t),
    # every frame weighted by its H W pixels alike: slope = cov / var, intercept = mean y - slope mean x
    x, y = 1 / (factors * z), 1 / z
    a = np.mean((x - x.mean()) * (y - y.mean())) / np.var(x)
    b = y.mean() - a * x.mean()
    result = temporal_alignment_error(predicted, poses, K, gts=truth)
    assert (result.scale, result.shift) == pytest.approx((a, b), rel=1e-9)
    expected = _expected_tae(1 / (a * x + b), dz)
    assert result.tae == pytest.approx(expected, rel=1e-9) and expected > 0.03   # the fit cannot absorb it


def test_pair_error_counts_only_masked_overlapping_pixels():
    poses, depths = _plane_drive(2)
    target = depths[1].copy()
    target[:, : W // 2] *= 2.0                      # the left half is wrong by a factor 2 ...
    mask = np.zeros((H, W), bool)
    mask[:, W // 2:] = True                          # ... but only the right half counts
    t = relative_pose(poses[0], poses[1])
    assert pair_error(depths[0], target, t, K, valid_to=mask) == pytest.approx(0.0, abs=1e-12)
    assert pair_error(depths[0], target, t, K) > 0.1
    assert pair_error(depths[0], target, t, K, valid_from=np.zeros((H, W), bool)) is None   # nothing to project


def test_disparity_fit_is_numpys_least_squares():
    rng = np.random.default_rng(1)
    preds = [rng.uniform(1, 30, (6, 7)) for _ in range(4)]
    gts = [1 / (0.7 / p + 0.01 + rng.normal(0, 0.002, p.shape)) for p in preds]
    gts[1][0, :3] = 0                              # no ground truth: left out
    masks = [rng.uniform(size=(6, 7)) < 0.8 for _ in range(4)]
    valid = [(g > 0) & m for g, m in zip(gts, masks)]
    x = np.concatenate([1 / p[v] for p, v in zip(preds, valid)])
    y = np.concatenate([1 / g[v] for g, v in zip(gts, valid)])
    expected = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)[0]
    assert fit_disparity(preds, gts, masks) == pytest.approx(tuple(expected), rel=1e-9)
    aligned = apply_disparity_fit(preds[0], *expected)
    assert np.allclose(aligned, 1 / np.maximum(expected[0] / preds[0] + expected[1], 1e-3))
    with pytest.raises(ValueError, match="distinct"):
        fit_disparity([np.ones((3, 3))] * 2, [np.ones((3, 3))] * 2)


def test_sequence_median_scaling_keeps_a_per_frame_scale_error():
    rng = np.random.default_rng(2)
    gts = [rng.uniform(3, 50, (10, 12)) for _ in range(3)]
    gts[0][0, 0] = 0
    preds = [0.5 * g * k for g, k in zip(gts, (1.0, 1.2, 0.9))]
    errors, ratio = sequence_median_errors(gts, preds)
    pooled_g = np.concatenate([g[g > 0] for g in gts])
    pooled_p = np.concatenate([p[g > 0] for g, p in zip(gts, preds)])
    assert ratio == pytest.approx(np.median(pooled_g) / np.median(pooled_p))
    per_frame = [compute_depth_errors(g[g > 0], np.clip(p[g > 0] * ratio, 1e-3, 80)) for g, p in zip(gts, preds)]
    assert errors == pytest.approx(tuple(np.mean(per_frame, axis=0)))
    assert errors[0] > 0.05                       # per-image median scaling would give 0 here


def test_consecutive_runs_of_split_lines():
    frames = [("a", 0), ("a", 1), ("a", 2), ("a", 4), ("a", 5), ("b", 6), ("a", 6), ("b", 7), ("b", 8), ("c", 1)]
    assert consecutive_runs(frames) == [[0, 1, 2], [3, 4], [7, 8]]
    assert consecutive_runs([("a", "0000000003"), ("a", "0000000004")]) == [[0, 1]]
    assert consecutive_runs([]) == [] and consecutive_runs([("a", 1)]) == []
