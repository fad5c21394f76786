"""The synthetic package: KITTI layout, calibration, stereo/pose geometry, determinism, splits, command line."""
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

import synthetic
from datasets import read_split
from synthetic.__main__ import main as synthetic_main
from tests.synthetic_fixture import SETTINGS, synthetic_kitti  # noqa: F401
from utils.cameras.kitti_calibration import read_calib_file

W, H = SETTINGS["width"], SETTINGS["height"]


def _drive_dir(info, i):
    return os.path.join(info["data_path"], info["drives"][i])


def test_kitti_raw_layout(synthetic_kitti):
    root = synthetic_kitti["data_path"]
    for date in ("2000_01_01", "2000_01_02"):
        for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
            assert os.path.isfile(os.path.join(root, date, name))
    for i, drive in enumerate(synthetic_kitti["drives"]):
        date, folder = drive.split("/")
        assert folder == f"{date}_drive_{i + 1:04d}_sync"
        for frame in range(SETTINGS["frames_per_drive"]):
            f = f"{frame:010d}"
            for cam in (2, 3):
                with Image.open(os.path.join(root, drive, f"image_0{cam}", "data", f + ".jpg")) as img:
                    assert img.size == (W, H) and img.mode == "RGB"
                depth = np.load(os.path.join(root, drive, "depth", f"image_0{cam}", f + ".npy"))
                assert depth.shape == (H, W) and depth.dtype == np.float32
            scan = np.fromfile(os.path.join(root, drive, "velodyne_points", "data", f + ".bin"), np.float32)
            assert scan.size % 4 == 0 and scan.size > 4 * 10000


def test_calibration_agrees_with_the_loader_intrinsics(synthetic_kitti):
    calib = read_calib_file(os.path.join(synthetic_kitti["data_path"], "2000_01_01", "calib_cam_to_cam.txt"))
    p2, p3 = calib["P_rect_02"].reshape(3, 4), calib["P_rect_03"].reshape(3, 4)
    assert p2[0, 0] == pytest.approx(0.58 * W) and p2[1, 1] == pytest.approx(1.92 * H)
    # 1-based principal point of KITTI's P = the loader's 0-based (W/2, H/2) + 1
    assert (p2[0, 2], p2[1, 2]) == pytest.approx((W / 2 + 1, H / 2 + 1))
    assert (p2[0, 3] - p3[0, 3]) / p2[0, 0] == pytest.approx(0.54)
    np.testing.assert_array_equal(calib["S_rect_02"], [W, H])


def test_stereo_pair_is_consistent(synthetic_kitti):
    """Left pixel (r, c) at depth z appears in the right view at column c - fx * 0.54 / z with the
    same depth and colour."""
    d = _drive_dir(synthetic_kitti, 0)
    f = f"{3:010d}"
    left_d = np.load(os.path.join(d, "depth", "image_02", f + ".npy"))
    right_d = np.load(os.path.join(d, "depth", "image_03", f + ".npy"))
    left = np.asarray(Image.open(os.path.join(d, "image_02", "data", f + ".jpg")), np.float32)
    right = np.asarray(Image.open(os.path.join(d, "image_03", "data", f + ".jpg")), np.float32)
    rows, cols = np.nonzero(left_d > 0)
    x = cols - 0.58 * W * 0.54 / left_d[rows, cols]
    inside = x >= 0
    rows, cols, xr = rows[inside], cols[inside], np.round(x[inside]).astype(int)
    rel = np.abs(right_d[rows, xr] - left_d[rows, cols]) / left_d[rows, cols]
    assert np.median(rel) < 0.01 and (rel < 0.02).mean() > 0.85      # occlusions make up the rest
    matched = np.abs(right[rows, xr] - left[rows, cols]).mean()
    unmatched = np.abs(right[rows, cols] - left[rows, cols]).mean()
    assert matched < 0.5 * unmatched


def test_poses_match_the_rendered_motion(synthetic_kitti):
    """Points of frame t moved by the poses file into frame t+1 land where frame t+1 has that depth."""
    info = synthetic_kitti
    name = info["drives"][0].split("/")[1]
    poses = np.loadtxt(os.path.join(info["data_path"], "poses", name + ".txt")).reshape(-1, 3, 4)
    assert poses.shape[0] == SETTINGS["frames_per_drive"]
    np.testing.assert_allclose(poses[0], np.eye(4)[:3], atol=1e-9)
    k = synthetic.intrinsics(W, H)
    d = _drive_dir(info, 0)
    for t in (0, 3):
        d0 = np.load(os.path.join(d, "depth", "image_02", f"{t:010d}.npy"))
        d1 = np.load(os.path.join(d, "depth", "image_02", f"{t + 1:010d}.npy"))
        rows, cols = np.nonzero(d0 > 0)
        cam = np.linalg.inv(k) @ np.stack([cols, rows, np.ones_like(cols)]) * d0[rows, cols]
        to_world = np.vstack([poses[t], [0, 0, 0, 1]])
        from_world = np.linalg.inv(np.vstack([poses[t + 1], [0, 0, 0, 1]]))
        moved = (from_world @ to_world @ np.vstack([cam, np.ones_like(cols)]))[:3]
        uv = k @ moved
        u, v = np.round(uv[0] / uv[2]).astype(int), np.round(uv[1] / uv[2]).astype(int)
        ok = (moved[2] > 0.5) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        rel = np.abs(d1[v[ok], u[ok]] - moved[2, ok]) / moved[2, ok]
        assert ok.sum() > 0.5 * rows.size
        assert np.median(rel) < 0.01
    forward = poses[1:, 2, 3] - poses[:-1, 2, 3]
    assert (forward > 0.5).all()                                   # driving forwards
    assert np.ptp(np.arctan2(poses[:, 0, 2], poses[:, 2, 2])) > 0  # and turning


def test_splits(synthetic_kitti):
    folder = synthetic.split_dir(synthetic_kitti["data_path"])
    train = read_split(os.path.join(folder, "train_files.txt"))
    val = read_split(os.path.join(folder, "val_files.txt"))
    test = read_split(os.path.join(folder, "test_files.txt"))
    n = SETTINGS["frames_per_drive"]
    # every frame with both neighbours, both sides; every 5th such frame is val instead of train
    drive = synthetic_kitti["drives"][0]
    assert sorted(train) == sorted(f"{drive} {i} {s}" for i in range(1, n - 1) if i % 5 for s in "lr")
    assert sorted(val) == sorted(f"{drive} {i} {s}" for i in range(1, n - 1) if i % 5 == 0 for s in "lr")
    assert len(val) >= 2, "the fixture needs val lines (Trainer.validate and the best folder)"
    assert test == [f"{synthetic_kitti['drives'][1]} {i:010d} l" for i in range(n)]


def _digest(root):
    h = hashlib.sha1()
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if name != "synthetic_info.json":
                h.update(name.encode())
                with open(os.path.join(dirpath, name), "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def test_deterministic_for_a_seed_and_atomic(tmp_path):
    kw = dict(num_drives=2, frames_per_drive=3, width=96, height=32, progress=False)
    a = synthetic.generate(str(tmp_path / "a"), seed=5, **kw)
    b = synthetic.generate(str(tmp_path / "b"), seed=5, **kw)
    c = synthetic.generate(str(tmp_path / "c"), seed=6, **kw)
    assert _digest(a["data_path"]) == _digest(b["data_path"]) != _digest(c["data_path"])
    # the same settings reuse the folder; different ones are refused unless overwrite
    assert synthetic.generate(str(tmp_path / "a"), seed=5, **kw)["drives"] == a["drives"]
    with pytest.raises(FileExistsError, match="overwrite"):
        synthetic.generate(str(tmp_path / "a"), seed=7, **kw)
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]          # no temporary folders left


def test_cli_bad_arguments_exit_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        synthetic_main(["--out", str(tmp_path / "x"), "--drives", "1"])
    assert "at least 2 drives" in str(e.value.code)
    assert not os.path.exists(tmp_path / "x")
