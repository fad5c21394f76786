"""utils/sensors/velodyne.py: velodyne loading and the devkit projection."""
import os

import numpy as np
import pytest
from scipy import ndimage  # noqa: F401  (scikit-image depends on scipy)

from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras.kitti_calibration import read_calib_dir
from utils.sensors.velodyne import generate_depth_map, load_velodyne_points, velo_to_depth_map


def _reference_depth_map(velo, calib, cam, vel_depth):
    """Point-by-point version of the devkit procedure (loop, nearest wins), for comparison."""
    p = calib[f"P_rect_0{cam}"] @ calib["R_rect_00"] @ calib["velo_to_cam"]
    h, w = calib["im_shape"]
    out = np.zeros((h, w))
    for x in velo:
        if x[0] < 0:
            continue
        u, v, z = p @ x
        col, row = int(np.round(u / z)) - 1, int(np.round(v / z)) - 1
        if 0 <= col < w and 0 <= row < h:
            value = x[0] if vel_depth else z
            out[row, col] = value if out[row, col] == 0 else min(out[row, col], value)
    out[out < 0] = 0
    return out


def _toy_calib():
    rot = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])
    v2c = np.eye(4)
    v2c[:3, :3], v2c[:3, 3] = rot, [0.01, -0.08, -0.27]
    p2 = np.array([[100.0, 0, 31, 4.5], [0, 100, 11, 0], [0, 0, 1, 0]])
    return {"velo_to_cam": v2c, "R_rect_00": np.eye(4), "P_rect_02": p2, "P_rect_03": p2 - [[0, 0, 0, 54], [0] * 4, [0] * 4],
            "im_shape": (20, 60)}


@pytest.mark.parametrize("vel_depth", [False, True])
@pytest.mark.parametrize("cam", [2, 3])
def test_vectorised_projection_matches_point_loop(cam, vel_depth):
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-5, 30, (400, 1)), rng.uniform(-8, 8, (400, 1)), rng.uniform(-2, 1, (400, 1)), np.ones(400)]
    pts = np.vstack([pts, pts[:50] * [1.5, 1.5, 1.5, 1]])   # same rays, farther: the nearer must win
    calib = _toy_calib()
    got = velo_to_depth_map(pts.astype(np.float32), calib, cam, vel_depth)
    want = _reference_depth_map(pts.astype(np.float32).astype(np.float64), calib, cam, vel_depth)
    assert got.shape == (20, 60) and got.dtype == np.float32
    assert (got > 0).sum() > 30
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_devkit_rounding_minus_one():
    calib = _toy_calib()
    calib["velo_to_cam"] = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    calib["P_rect_02"] = np.array([[100.0, 0, 31, 0], [0, 100, 11, 0], [0, 0, 1, 0]])
    # a point straight ahead projects to (u, v) = (31, 11): devkit pixel (row 10, column 30)
    depth = velo_to_depth_map(np.array([[10.0, 0, 0, 1], [-3, 0, 0, 1]], np.float32), calib)
    assert depth[10, 30] == pytest.approx(10.0)
    assert (depth > 0).sum() == 1      # the point behind the scanner (x < 0) is dropped


def test_truncated_velodyne_file_is_reported(tmp_path):
    path = tmp_path / "0000000000.bin"
    np.arange(10, dtype=np.float32).tofile(path)
    with pytest.raises(ValueError, match="0000000000.bin"):
        load_velodyne_points(str(path))
    np.arange(8, dtype=np.float32).tofile(path)
    np.testing.assert_array_equal(load_velodyne_points(str(path))[:, 3], 1)


def _smooth_pixels(depth):
    """Pixels whose 3 x 3 neighbourhood is valid and varies by < 5 % (no depth edge)."""
    hi, lo = ndimage.maximum_filter(depth, 3), ndimage.minimum_filter(depth, 3)
    return (lo > 0) & ((hi - lo) < 0.05 * lo)


@pytest.mark.parametrize("cam", [2, 3])
def test_synthetic_scan_reproduces_rendered_depth(synthetic_kitti, cam):
    """The scan, projected with the written calibration under the devkit convention, lands on pixels
    whose rendered depth it matches to 1 %; without the '- 1' it would not."""
    root = synthetic_kitti["data_path"]
    date, drive = synthetic_kitti["drives"][0].split("/")
    for frame in (1, 4):
        velo = os.path.join(root, date, drive, "velodyne_points", "data", f"{frame:010d}.bin")
        gt = generate_depth_map(os.path.join(root, date), velo, cam=cam)
        rendered = np.load(os.path.join(root, date, drive, "depth", f"image_0{cam}", f"{frame:010d}.npy"))
        assert gt.shape == rendered.shape == (128, 416)
        smooth = _smooth_pixels(rendered)
        hit = (gt > 0) & smooth
        assert hit.sum() > 1500
        rel = np.abs(gt[hit] - rendered[hit]) / rendered[hit]
        assert np.median(rel) < 0.005
        assert (rel < 0.01).mean() > 0.95
        shifted = np.zeros_like(gt)
        shifted[:-1, :-1] = gt[1:, 1:]          # what "round(u)" without "- 1" would give
        hit = (shifted > 0) & smooth
        assert (np.abs(shifted[hit] - rendered[hit]) / rendered[hit] < 0.01).mean() < 0.85


def test_vel_depth_is_the_velodyne_forward_distance(synthetic_kitti):
    """vel_depth=True stores x_velo: rebuild it from the rendered camera depth and the calibration."""
    root = synthetic_kitti["data_path"]
    date, drive = synthetic_kitti["drives"][0].split("/")
    velo = os.path.join(root, date, drive, "velodyne_points", "data", f"{2:010d}.bin")
    x_velo = generate_depth_map(os.path.join(root, date), velo, cam=2, vel_depth=True)
    rendered = np.load(os.path.join(root, date, drive, "depth", "image_02", f"{2:010d}.npy"))
    calib = read_calib_dir(os.path.join(root, date))
    rows, cols = np.nonzero((x_velo > 0) & _smooth_pixels(rendered))
    z = rendered[rows, cols]
    p = calib["P_rect_02"]
    # camera-2 pixel (devkit: +1) and depth -> rectified camera-0 point -> velodyne point
    x_rect = np.stack([((cols + 1 - p[0, 2]) * z - p[0, 3]) / p[0, 0], (rows + 1 - p[1, 2]) * z / p[1, 1], z, np.ones_like(z)])
    x_v = np.linalg.inv(calib["R_rect_00"] @ calib["velo_to_cam"]) @ x_rect
    rel = np.abs(x_velo[rows, cols] - x_v[0]) / x_v[0]
    assert np.median(rel) < 0.005 and (rel < 0.01).mean() > 0.95
