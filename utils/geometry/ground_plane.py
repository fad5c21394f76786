"""Metric scale of relative (monocular) depth from the ground plane and the camera's known height. Free of Paddle.

A monocular network gives depth up to an unknown factor per image: D = D_true / s. Back-projection
X = (u - cx) Z / fx, Y = (v - cy) Z / fy (utils.geometry.pointcloud.back_project) is linear in Z, so the road
seen through D is the true road shrunk by s: its distance from the camera centre is h = H / s, H the
camera's true height above the road (KITTI: 1.65 m). Hence s = H / h, and D x s is in metres.

This is an approximation; it holds as far as (1) the lower band of the image shows a flat road, (2) the
network's depth of the road is right up to one factor (not bent), (3) the camera is H above that road
(no slope change, no heavy pitching). docs/metric_depth.md gives its measured error.

Camera coordinates as utils.geometry.pointcloud: x right, y down, z forward, so "up" is -y. A plane is
(n, h): the points X with n . X = h, n the unit normal pointing down towards the road (n ~ +y for a
level camera) and h > 0 the distance of the camera centre (the origin) above it.

    band_points(depth, k, rows, cols)       N x 3 points of the lower band (finite depth > 0)
    fit_plane(points)                       least squares (total): the plane of smallest squared distances
    ransac_plane(points, rng, ...)          the level plane below the camera that most points lie on
    ground_scale(depth, k, camera_height)   GroundScale: scale = camera_height / h and diagnostics, or the reason
"""
from dataclasses import dataclass

import numpy as np

from utils.geometry.pointcloud import back_project

# The band searched for the road, as fractions of the image: rows from 60 % of the height to the bottom
# (below KITTI's horizon, which lies near the middle row, and skipping the far road whose depth is least
# sure), columns from 20 % to 80 % (the lane ahead; parked cars and facades crowd the sides).
BAND_ROWS = (0.6, 1.0)
BAND_COLS = (0.2, 0.8)
# A point lies on a plane when its distance from it is below this share of the plane's height h.
# Scale-free (h is in the depth's own units), and the right unit: a relative depth error e moves a road
# point off the road by e x h whatever its distance (the ray meets the road at the slope h / Z).
INLIER_TOLERANCE = 0.05
# The road's normal may differ from the camera's vertical axis by at most this angle: a car's camera
# pitch and roll (KITTI: 1-2 degrees) plus the road's slope (a 10 % grade is 6 degrees). Walls (90
# degrees) are never taken for the road, nor is the tilted "road" of a depth map that is bent (near road
# too far, far road too near, as a briefly trained network predicts): its plane, extrapolated to the
# camera, puts the camera 40-60 % too high (bench/RESULTS.md), so such frames are refused instead.
MAX_TILT_DEG = 10.0
# Fewer of the band's points on the best plane than this share: no road in view, say so instead of guessing.
MIN_INLIER_SHARE = 0.3
MIN_POINTS = 30
RANSAC_ITERATIONS = 300
RANSAC_SAMPLE = 4000   # points that score the hypotheses (the final inliers use every point)


@dataclass
class GroundScale:
    """Result of ground_scale. `scale` (camera_height / height; None when no road plane was found, then
    `reason` says why in one line), `height` (the camera's height in the depth's units), `normal` (unit,
    camera coordinates, pointing down at the road), `tilt_deg` (its angle from the camera's y axis),
    `inlier_share` (share of the band's points on the plane), `points` (valid points in the band)."""
    scale: float = None
    height: float = None
    normal: np.ndarray = None
    tilt_deg: float = None
    inlier_share: float = 0.0
    points: int = 0
    reason: str = None

    def describe(self):
        if self.scale is None:
            return f"no ground plane: {self.reason}"
        return (f"ground-plane scale {self.scale:.4g} (plane {self.height:.4g} below the camera in relative units, "
                f"{100 * self.inlier_share:.0f} % of the band on it, tilt {self.tilt_deg:.1f} deg)")


def pixel_intrinsics(k):
    """(fx, fy, cx, cy) of a 3 x 3 or 4 x 4 pixel K, or of the 4 numbers themselves
    (what utils.cameras.camera.CameraChoice.intrinsics returns)."""
    k = np.asarray(k, dtype=np.float64)
    if k.shape == (4,):
        return tuple(float(v) for v in k)
    if k.shape not in ((3, 3), (4, 4)):
        raise ValueError(f"intrinsics must be a 3 x 3 or 4 x 4 K or (fx, fy, cx, cy), got shape {k.shape}")
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


def band_slices(height, width, rows=BAND_ROWS, cols=BAND_COLS):
    """(row slice, column slice) of the band: rows int(rows[0] H) .. int(rows[1] H), same for columns."""
    return (slice(int(rows[0] * height), int(rows[1] * height)), slice(int(cols[0] * width), int(cols[1] * width)))


def band_points(depth, k, rows=BAND_ROWS, cols=BAND_COLS):
    """N x 3 camera coordinates (float64) of the band's pixels with a finite depth > 0, back-projected with
    the intrinsics `k` at the depth map's size (pixel_intrinsics); the band's pixel (i, j) is the image's
    (r0 + i, c0 + j), so the principal point moves by (c0, r0)."""
    depth = np.asarray(depth)
    fx, fy, cx, cy = pixel_intrinsics(k)
    r, c = band_slices(*depth.shape, rows, cols)
    band = depth[r, c].astype(np.float64)
    points = back_project(band, fx, fy, cx - c.start, cy - r.start)
    return points[np.isfinite(band) & (band > 0)]


def orient(normal, offset):
    """(n, h) of the plane n . X = h with n turned to point down (n_y >= 0), h changing sign with it."""
    return (-normal, -offset) if normal[1] < 0 else (normal, offset)


def tilt_deg(normal):
    """Angle in degrees between a down-pointing unit normal and the camera's y axis (down)."""
    return float(np.degrees(np.arccos(np.clip(normal[1], -1.0, 1.0))))


def fit_plane(points):
    """Total least squares: the plane (n, h) minimising sum (n . X_i - h)^2 over unit n. n is the right
    singular vector of the centred points with the smallest singular value, h = n . mean(X); oriented
    down (orient)."""
    centre = points.mean(axis=0)
    normal = np.linalg.svd(points - centre, full_matrices=False)[2][-1]
    return orient(normal, float(normal @ centre))


def ransac_plane(points, rng, iterations=RANSAC_ITERATIONS, tolerance=INLIER_TOLERANCE, max_tilt_deg=MAX_TILT_DEG,
                 sample=RANSAC_SAMPLE):
    """RANSAC (Fischler and Bolles 1981) for the road: `iterations` planes through 3 points drawn by `rng`
    (a numpy Generator); a plane counts only when it is below the camera (h > 0) and within max_tilt_deg
    of level; its score is the number of points (of `sample` drawn ones) with |n . X - h| < tolerance h.
    Returns the best (n, h), or None when no drawn plane was admissible."""
    scoring = points if len(points) <= sample else points[rng.choice(len(points), sample, replace=False)]
    triples = points[rng.integers(0, len(points), (iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12 * np.abs(triples).max(initial=1.0) ** 2   # not three points on a line
    normals = normals[ok] / norms[ok, None]
    normals *= np.where(normals[:, 1] < 0, -1.0, 1.0)[:, None]    # all pointing down
    offsets = np.einsum("ij,ij->i", normals, triples[ok, 0])
    ok = (offsets > 0) & (normals[:, 1] >= np.cos(np.radians(max_tilt_deg)))
    if not ok.any():
        return None
    normals, offsets = normals[ok], offsets[ok]
    scores = (np.abs(scoring @ normals.T - offsets) < tolerance * offsets).sum(axis=0)
    best = int(np.argmax(scores))
    return normals[best], float(offsets[best])


def ground_scale(depth, k, camera_height, seed=0, rows=BAND_ROWS, cols=BAND_COLS, tolerance=INLIER_TOLERANCE,
                 max_tilt_deg=MAX_TILT_DEG, min_inlier_share=MIN_INLIER_SHARE, refits=2):
    """The factor that brings relative depth to metres, from the road plane in the lower band of the image.

    `depth`: H x W depth up to an unknown scale (0 / non-finite = none); `k`: its intrinsics at that size
    (3 x 3 or 4 x 4 K, or fx, fy, cx, cy); `camera_height`: the camera's height above the road in metres.
    Steps: band_points; ransac_plane with numpy's Generator seeded by `seed` (the same depth gives the
    same result); then `refits` times: the inliers of the current plane (|n . X - h| < tolerance h) and
    fit_plane on them. The plane is refused when it is not below the camera, tilts more than max_tilt_deg,
    or holds less than min_inlier_share of the band's points. Returns GroundScale (scale = camera_height
    / h); its scale is None and reason one line when no road plane was found."""
    points = band_points(depth, k, rows, cols)
    result = GroundScale(points=len(points))
    band = f"the lower band (rows {100 * rows[0]:.0f}-{100 * rows[1]:.0f} %, columns {100 * cols[0]:.0f}-" \
           f"{100 * cols[1]:.0f} %)"
    if len(points) < MIN_POINTS:
        result.reason = f"{len(points)} pixels with depth in {band}, need {MIN_POINTS}"
        return result
    best = ransac_plane(points, np.random.default_rng(seed), tolerance=tolerance, max_tilt_deg=max_tilt_deg)
    if best is None:
        result.reason = f"no plane in {band} lies below the camera within {max_tilt_deg:g} deg of level"
        return result
    normal, height = best
    inliers = None
    for _ in range(refits):
        inliers = np.abs(points @ normal - height) < tolerance * height
        if inliers.sum() < 3:
            break
        normal, height = fit_plane(points[inliers])
    inliers = np.abs(points @ normal - height) < tolerance * abs(height)
    result.normal, result.tilt_deg, result.inlier_share = normal, tilt_deg(normal), float(inliers.mean())
    if not height > 0 or result.tilt_deg > max_tilt_deg:
        result.reason = f"the plane fitted in {band} is not a level plane below the camera " \
                        f"(tilt {result.tilt_deg:.0f} deg, height {height:.3g})"
    elif result.inlier_share < min_inlier_share:
        result.reason = (f"the best level plane holds {100 * result.inlier_share:.0f} % of the points in {band} "
                         f"(< {100 * min_inlier_share:.0f} %): no road in view")
    else:
        result.height, result.scale = float(height), float(camera_height) / float(height)
    return result
