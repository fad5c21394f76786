"""utils/geometry/ground_plane.py: the metric scale of relative depth from the road plane and the camera height,
checked on analytic depth maps (a plane at a known height and pitch, seen through a known K) and on the
synthetic KITTI's exact depth (camera 1.65 m above a flat road)."""
import glob
import os

import numpy as np
import pytest

from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras import kitti_layout
from utils.geometry import ground_plane

H, W = 96, 320
HEIGHT_M = 1.65


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rays(k, h, w):
    """Rays K^-1 [u, v, 1] (z = 1), h x w x 3."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)


def render_plane(k, h, w, camera_height, pitch, roll=0.0):
    """Camera-z depth of a road `camera_height` below a camera pitched by `pitch` and rolled by `roll`
    (radians); 0 where a ray does not meet the road. The road's down normal in camera coordinates is
    n = R^T (0, 1, 0); a ray r = (x, y, 1) meets n . X = camera_height at Z = camera_height / (n . r)."""
    n = (rot_x(pitch) @ rot_z(roll)).T @ np.array([0.0, 1.0, 0.0])
    down = rays(k, h, w) @ n
    return np.where(down > 1e-6, camera_height / np.maximum(down, 1e-6), 0.0), n


def frame_with_wall(k, seed=0, pitch=np.radians(2.0), roll=np.radians(1.0), noise=0.01):
    """The road of render_plane, a frontal wall 9 m ahead over columns 40-60 % of the width (it covers part
    of the lower band), a box 5 m ahead on columns 62-72 %, and 1 % multiplicative depth noise.
    Returns (depth, the road's down normal, the road's pixels)."""
    depth, n = render_plane(k, H, W, HEIGHT_M, pitch, roll)
    road = depth > 0
    cols = np.arange(W)
    for z, c0, c1 in ((9.0, 0.40, 0.60), (5.0, 0.62, 0.72)):
        in_cols = (cols >= c0 * W) & (cols < c1 * W)
        hit = in_cols[None, :] & ((depth > z) | (depth == 0))
        depth = np.where(hit, z, depth)
        road &= ~hit
    rng = np.random.default_rng(seed)
    return depth * (1 + noise * rng.standard_normal(depth.shape)), n, road


def test_scale_of_a_known_road_is_right_to_one_percent():
    k = kitti_layout.intrinsics(W, H)
    depth, n, road = frame_with_wall(k)
    true_scale = 23.7   # the network's depth is the true depth / 23.7
    fit = ground_plane.ground_scale(depth / true_scale, k, HEIGHT_M)
    assert fit.scale is not None, fit.reason
    assert abs(fit.scale / true_scale - 1) < 0.01
    assert np.degrees(np.arccos(fit.normal @ n)) < 1.0            # the road's normal, not the wall's
    # the wall and the box hide part of the band: their pixels are not on the plane
    r, c = ground_plane.band_slices(H, W)
    road_share = road[r, c].mean()
    # the walls' feet within the tolerance of the road count too
    assert 0.3 < road_share < 0.9 and road_share - 0.03 < fit.inlier_share < road_share + 0.03


def test_scale_is_equivariant_and_the_result_repeatable():
    """Back-projection is linear in depth: depth / s gives exactly s times the scale of depth."""
    k = np.asarray(kitti_layout.intrinsics(W, H))[:3, :3]          # a 3 x 3 K works as the 4 x 4 one
    depth, _, _ = frame_with_wall(np.asarray(kitti_layout.intrinsics(W, H)), seed=1)
    a = ground_plane.ground_scale(depth, k, HEIGHT_M, seed=3)
    b = ground_plane.ground_scale(depth / 8.0, k, HEIGHT_M, seed=3)
    assert b.scale == pytest.approx(8.0 * a.scale, rel=1e-9)
    assert ground_plane.ground_scale(depth / 8.0, k, HEIGHT_M, seed=3).scale == b.scale
    assert a.height == pytest.approx(HEIGHT_M, rel=0.01)


def test_steeper_pitch_and_another_camera():
    """A camera pitched down 8 degrees with fx = fy: the plane's distance, not its y offset, is the height."""
    k = np.array([[200.0, 0, 150], [0, 200.0, 60], [0, 0, 1]])
    depth, n = render_plane(k, 120, 300, 1.2, np.radians(-8.0))
    fit = ground_plane.ground_scale(depth / 3.0, k, 1.2)
    assert fit.scale == pytest.approx(3.0, rel=1e-6)
    assert fit.tilt_deg == pytest.approx(8.0, abs=1e-4) and fit.inlier_share == 1.0


def test_no_road_gives_the_documented_failure():
    k = kitti_layout.intrinsics(W, H)
    # a wall 4 m ahead filling the whole view: its plane is 90 degrees from level
    wall = np.full((H, W), 4.0)
    fit = ground_plane.ground_scale(wall, k, HEIGHT_M)
    assert fit.scale is None and "within 10 deg of level" in fit.reason
    assert fit.describe().startswith("no ground plane:") and "\n" not in fit.describe()
    # no depth at all (sky)
    fit = ground_plane.ground_scale(np.zeros((H, W)), k, HEIGHT_M)
    assert fit.scale is None and "pixels with depth" in fit.reason
    # a road seen from a camera rolled 15 degrees: too far from level to be taken for the road
    fit = ground_plane.ground_scale(render_plane(k, H, W, HEIGHT_M, 0.0, np.radians(15))[0], k, HEIGHT_M)
    assert fit.scale is None and "within 10 deg of level" in fit.reason
    # random depths: no plane holds 30 % of the band
    fit = ground_plane.ground_scale(np.random.default_rng(0).uniform(2, 40, (H, W)), k, HEIGHT_M)
    assert fit.scale is None and "no road in view" in fit.reason


def test_band_points_back_project_the_band_with_the_image_s_intrinsics():
    k = kitti_layout.intrinsics(W, H)
    depth = np.random.default_rng(1).uniform(1, 20, (H, W))
    depth[H - 1, W // 2] = 0                                       # no depth: left out
    points = ground_plane.band_points(depth, k)
    r, c = ground_plane.band_slices(H, W)
    v, u = np.mgrid[0:H, 0:W]
    z = depth[r, c]
    expected = np.stack([(u[r, c] - k[0, 2]) * z / k[0, 0], (v[r, c] - k[1, 2]) * z / k[1, 1], z], -1)
    assert np.allclose(points, expected[z > 0])
    assert len(points) == z.size - 1


def test_synthetic_kitti_exact_depth_gives_its_camera_height(synthetic_kitti):  # noqa: F811
    """The generator's road is 1.65 m (synthetic.scene.CAMERA_HEIGHT) below camera 2 (pitch < 0.3 deg)."""
    from synthetic.scene import CAMERA_HEIGHT

    root, drive = synthetic_kitti["data_path"], synthetic_kitti["drives"][-1]
    files = sorted(glob.glob(os.path.join(root, drive, "depth", "image_02", "*.npy")))
    assert files
    errors, failed = [], 0
    for path in files:
        depth = np.load(path)
        k = kitti_layout.intrinsics(depth.shape[1], depth.shape[0])
        fit = ground_plane.ground_scale(depth / 5.0, k, CAMERA_HEIGHT)
        if fit.scale is None:
            failed += 1
        else:
            errors.append(fit.scale / 5.0 - 1)
    assert failed == 0
    assert np.max(np.abs(errors)) < 0.01
