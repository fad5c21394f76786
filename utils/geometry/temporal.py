"""Temporal consistency of video depth, Paddle-free: TAE, the temporal alignment error of Video Depth
Anything (Chen et al., CVPR 2025), and the per-sequence median-scaled depth errors beside it.

TAE of predicted depths D_0 .. D_{N-1} of one sequence, with camera-to-world poses P_i and pinhole K:

 1. One alignment for the whole sequence, in disparity (1 / depth), as Video Depth Anything fits it:
    (a, b) = argmin sum over every valid ground-truth pixel of every frame of (a / D + b - 1 / G)^2
    (linear least squares), aligned depth D' = 1 / max(a / D + b, 1e-3). `align="none"` keeps D
    (depth already in metres, e.g. metric weights judged without any fit).
 2. For each pair of neighbouring frames (t, t+1), both ways: the relative pose T_{t+1<-t} =
    P_{t+1}^-1 P_t; every pixel p = (u, v) of frame t with valid depth is lifted to X = D'_t(p) K^-1 [u, v, 1],
    moved to X' = T X, projected to the nearest pixel q = round(K X' / z') of frame t+1 (dropped outside
    the image or behind the camera); where several land on one pixel the nearest (smallest z') is kept
    (Video Depth Anything keeps an arbitrary one). e(t -> t+1) = mean over pixels q with a projected
    depth and a valid D'_{t+1}(q) of |D'_{t+1}(q) - z'(q)| / D'_{t+1}(q)  (abs_rel, the target frame's
    depth as the reference). Likewise e(t+1 -> t) with T^-1.
 3. TAE = mean of the 2 (N - 1) pair errors. A direction without one overlapping pixel is left out of the
    mean (Video Depth Anything counts it as 0). Video Depth Anything's tables print 100 x TAE.

Exact depth and poses give TAE = 0 up to the half-pixel rounding of step 2 (slanted surfaces, occlusion edges). A
per-frame scale error that the single sequence alignment cannot absorb shows up in full: a plane facing
the camera at distance Z_t that comes dz closer, predicted at k_t times its depth in frame t, gives
e(t -> t+1) = |k_{t+1} (Z_t - dz) - (k_t Z_t - dz)| / (k_{t+1} (Z_t - dz)).
"""
from dataclasses import dataclass

import numpy as np

from utils.geometry.metrics import MAX_EVAL_DEPTH, MIN_EVAL_DEPTH, compute_depth_errors

MIN_ALIGNED_DISPARITY = 1e-3   # Video Depth Anything's floor of the aligned disparity (depth <= 1000)
ALIGNMENTS = ("scale_shift", "none")


def relative_pose(pose_from, pose_to):
    """T = P_to^-1 P_from (4 x 4): coordinates in camera `from` -> coordinates in camera `to`, for
    camera-to-world poses P."""
    return np.linalg.solve(np.asarray(pose_to, np.float64), np.asarray(pose_from, np.float64))


def reproject_depth(depth, transform, k, valid=None):
    """Depth of frame `depth` seen from another camera: the H x W map of z' at the nearest pixel each
    point lands on (step 2 of the module docstring; the nearest point wins), 0 where none lands.
    `transform`: 4 x 4 source -> target camera coordinates; `k`: 3 x 3 (or 4 x 4) intrinsics of both."""
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    k = np.asarray(k, np.float64)[:3, :3]
    keep = depth > 0 if valid is None else (depth > 0) & valid
    v, u = np.nonzero(keep)
    z = depth[v, u]
    rays = np.linalg.solve(k, np.stack([u, v, np.ones_like(u)]).astype(np.float64))
    points = transform[:3, :3] @ (rays * z) + transform[:3, 3:4]
    front = points[2] > 1e-9
    points = points[:, front]
    with np.errstate(invalid="ignore", over="ignore"):
        pixels = k @ (points / points[2])
    col, row = np.round(pixels[0]), np.round(pixels[1])
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    index = row[inside].astype(np.int64) * w + col[inside].astype(np.int64)
    zs = points[2, inside]
    order = np.lexsort((zs, index))        # by pixel, nearest first: the first of each pixel wins
    index, zs = index[order], zs[order]
    first = np.ones(index.size, bool)
    first[1:] = index[1:] != index[:-1]
    out = np.zeros(h * w)
    out[index[first]] = zs[first]
    return out.reshape(h, w)


def pair_error(depth_from, depth_to, transform, k, valid_from=None, valid_to=None):
    """abs_rel of `depth_from` reprojected into the other frame against `depth_to` (step 2), or None when
    no pixel overlaps. valid_*: optional boolean masks of the pixels that count in each frame."""
    projected = reproject_depth(depth_from, transform, k, valid_from)
    target = np.asarray(depth_to, np.float64)
    mask = (projected > 0) & (target > 0)
    if valid_to is not None:
        mask &= valid_to
    if not mask.any():
        return None
    return float(np.mean(np.abs(target[mask] - projected[mask]) / target[mask]))


def fit_disparity(depths, gts, masks=None):
    """(a, b) of step 1: least squares of a / D + b against 1 / G over the valid pixels (G > 0 and the
    mask) of every frame, from running sums (one pass, nothing stacked)."""
    sums = np.zeros(5)   # n, sum x, sum x^2, sum y, sum xy with x = 1 / D, y = 1 / G
    for i, (depth, gt) in enumerate(zip(depths, gts)):
        valid = (np.asarray(gt) > 0) & (np.asarray(depth) > 0)
        if masks is not None:
            valid &= masks[i]
        x, y = 1.0 / np.asarray(depth, np.float64)[valid], 1.0 / np.asarray(gt, np.float64)[valid]
        sums += (x.size, x.sum(), (x * x).sum(), y.sum(), (x * y).sum())
    n, sx, sxx, sy, sxy = sums
    det = n * sxx - sx * sx
    if n < 2 or det <= 1e-12 * n * sxx:
        raise ValueError("cannot fit a disparity scale and shift: fewer than two distinct predicted depths "
                         "on valid ground-truth pixels")
    return float((n * sxy - sx * sy) / det), float((sxx * sy - sx * sxy) / det)


def apply_disparity_fit(depth, scale, shift):
    """D' = 1 / max(a / D + b, 1e-3) where D > 0, else 0."""
    depth = np.asarray(depth, np.float64)
    out = np.zeros_like(depth)
    pos = depth > 0
    out[pos] = 1.0 / np.maximum(scale / depth[pos] + shift, MIN_ALIGNED_DISPARITY)
    return out


def consecutive_runs(frames):
    """Positions of `frames` ((sequence, frame index) pairs, e.g. a test split's lines) grouped into runs of
    neighbouring frames of one sequence (index + 1 each step, in the given order), runs of 2 or more only:
    the sequences TAE can be measured on."""
    runs, run = [], []
    for pos, (sequence, index) in enumerate(frames):
        if run and (sequence, int(index)) != (frames[run[-1]][0], int(frames[run[-1]][1]) + 1):
            runs.append(run)
            run = []
        run.append(pos)
    runs.append(run)
    return [r for r in runs if len(r) >= 2]


@dataclass
class TaeResult:
    """tae: mean pair error (a fraction; x 100 for Video Depth Anything's tables); pairs: the 2 (N - 1)
    errors in the order (0->1, 1->0, 1->2, ...), None where nothing overlapped; scale, shift: the
    disparity alignment (1, 0 for align="none")."""
    tae: float
    pairs: list
    scale: float = 1.0
    shift: float = 0.0


def temporal_alignment_error(depths, poses, k, gts=None, masks=None, align="scale_shift"):
    """TAE of the module docstring for one sequence: `depths` N x H x W predicted depths (a list or array),
    `poses` N x 4 x 4 camera-to-world, `k` the intrinsics at H x W, `gts` the ground-truth depths for the
    alignment (needed unless align="none"; its pixels: G > 0), `masks` optional per-frame booleans of the
    pixels that count (in the alignment and in both frames of every pair: with sparse ground truth pass
    the evaluation region, e.g. the Garg crop, not G > 0, or the pairs barely overlap). Returns a TaeResult."""
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS}, not {align!r}")
    if len(depths) != len(poses) or len(depths) < 2:
        raise ValueError(f"TAE needs two frames or more and one pose per frame ({len(depths)} depths, "
                         f"{len(poses)} poses)")
    scale, shift = 1.0, 0.0
    if align == "scale_shift":
        if gts is None:
            raise ValueError("align='scale_shift' needs the ground-truth depths")
        scale, shift = fit_disparity(depths, gts, masks)
    aligned = [apply_disparity_fit(d, scale, shift) for d in depths]
    pairs = []
    for t in range(len(aligned) - 1):
        forward = relative_pose(poses[t], poses[t + 1])
        m0, m1 = (None, None) if masks is None else (masks[t], masks[t + 1])
        pairs.append(pair_error(aligned[t], aligned[t + 1], forward, k, m0, m1))
        pairs.append(pair_error(aligned[t + 1], aligned[t], np.linalg.inv(forward), k, m1, m0))
    measured = [e for e in pairs if e is not None]
    if not measured:
        raise ValueError("no pair of neighbouring frames overlaps: check the poses and the camera")
    return TaeResult(float(np.mean(measured)), pairs, scale, shift)


def sequence_median_errors(gts, depths, masks=None, min_depth=MIN_EVAL_DEPTH, max_depth=MAX_EVAL_DEPTH):
    """(seven errors averaged over frames, ratio): the depth errors of utils.geometry.metrics with ONE median
    ratio for the whole sequence, ratio = median of all valid G / median of all valid D (valid: G > 0
    and the mask), each frame's D x ratio clipped to [min_depth, max_depth]. Unlike per-image median
    scaling, this keeps a per-frame scale error in the score."""
    pairs = []
    for i, (gt, depth) in enumerate(zip(gts, depths)):
        valid = np.asarray(gt) > 0
        if masks is not None:
            valid &= masks[i]
        pairs.append((np.asarray(gt, np.float64)[valid], np.asarray(depth, np.float64)[valid]))
    ratio = float(np.median(np.concatenate([g for g, _ in pairs])) / np.median(np.concatenate([d for _, d in pairs])))
    errors = [compute_depth_errors(g, np.clip(d * ratio, min_depth, max_depth)) for g, d in pairs if g.size]
    return tuple(float(v) for v in np.mean(errors, axis=0)), ratio
