"""utils/cameras/imports.py through calibrate.py --import: each file written in its own tool's conventions from a
known camera (KITTI's text, ROS's camera_info YAML, OpenCV's own FileStorage, COLMAP's cameras.txt), and the
camera.json checked against that camera, not just parsed."""
import json
import os

import cv2
import numpy as np
import pytest
import yaml

import calibrate
from support import chessboard as cb
from test_calibrate import refused
from utils.cameras import calibration

K = np.array([[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])


def imported(tmp_path, capsys, *argv):
    out = tmp_path / "root" / "camera.json"
    calibrate.main(["--import", *map(str, argv), "--out", str(out)])
    return json.loads(out.read_text()), capsys.readouterr().out


def kitti_line(key, values):
    return f"{key}: " + " ".join(f"{v:e}" for v in np.ravel(values))


def test_kitti_rectified_camera_and_baseline(tmp_path, capsys):
    # rectified cameras 2 and 3 at t2, t3 from camera 0 (P_rect_0i = K [I | t_i]), as KITTI's devkit defines them
    t2, t3 = np.array([0.0599, -0.0003, 0.0027]), np.array([-0.4731, 0.0030, 0.0027])
    lines = ["calib_time: 09-Jan-2012 13:57:47", kitti_line("corner_dist", [0.0995]),
             kitti_line("S_00", [1392, 512]), kitti_line("K_00", np.eye(3) * 900), kitti_line("D_00", np.zeros(5))]
    for i, t in ((0, np.zeros(3)), (1, [-0.5372, 0, 0]), (2, t2), (3, t3)):
        lines += [kitti_line(f"S_rect_0{i}", [1242, 375]), kitti_line(f"R_rect_0{i}", np.eye(3)),
                  kitti_line(f"P_rect_0{i}", np.hstack([K, (K @ np.asarray(t, float)).reshape(3, 1)]))]
    calib = tmp_path / "calib_cam_to_cam.txt"
    calib.write_text("\n".join(lines) + "\n")
    camera, out = imported(tmp_path, capsys, calib)   # --format from the content, camera 2 by default
    assert [camera[k] for k in ("fx", "fy", "cx", "cy", "width", "height")] == pytest.approx(
        [K[0, 0], K[1, 1], K[0, 2], K[1, 2], 1242, 375], rel=1e-6)
    assert camera["baseline"] == pytest.approx(t2[0] - t3[0], rel=1e-5) and "need no remapping" in out
    assert not (tmp_path / "root" / "camera_maps.npz").exists()
    camera, out = imported(tmp_path, capsys, calib, "--camera_id", "3")
    assert "baseline" not in camera and "right camera of its pair" in out
    assert "KITTI's cameras are 0-3" in refused(["--import", str(calib), "--camera_id", "5", "--out",
                                                  str(tmp_path / "x.json")], capsys)


def ros_yaml(k, dist, r, p, size):
    """camera_info as ROS's camera_calibration_parsers writes it."""
    return yaml.safe_dump({
        "image_width": size[0], "image_height": size[1], "camera_name": "narrow_stereo",
        "camera_matrix": {"rows": 3, "cols": 3, "data": np.ravel(k).tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": np.ravel(dist).tolist()},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.ravel(r).tolist()},
        "projection_matrix": {"rows": 3, "cols": 4, "data": np.ravel(p).tolist()}}, sort_keys=False)


def test_ros_stereo_pair_rectifies_the_rig(tmp_path, tmp_path_factory, capsys):
    # the rig's true calibration, rectified as ROS's stereo calibrator does (P_right[0,3] = -fx' B)
    r1, r2, p1, p2, *_ = cv2.stereoRectify(cb.LEFT_K, cb.LEFT_DIST, cb.RIGHT_K, cb.RIGHT_DIST, cb.SIZE, cb.R_LR,
                                           cb.T_LR.reshape(3, 1), flags=cv2.CALIB_ZERO_DISPARITY, alpha=0)
    left, right = tmp_path / "left.yaml", tmp_path / "right.yaml"
    left.write_text(ros_yaml(cb.LEFT_K, cb.LEFT_DIST, r1, p1, cb.SIZE))
    right.write_text(ros_yaml(cb.RIGHT_K, cb.RIGHT_DIST, r2, p2, cb.SIZE))
    camera, out = imported(tmp_path, capsys, left, "--right", right)
    assert [camera[k] for k in ("fx", "fy", "cx", "cy")] == pytest.approx([p1[0, 0], p1[1, 1], p1[0, 2], p1[1, 2]])
    assert camera["baseline"] == pytest.approx(cb.BASELINE, rel=1e-6)
    assert "distorted or unrectified" in out and (tmp_path / "root" / "camera_maps.npz").is_file()
    # its frames: rectified rows agree on the rendered rig
    rig_left, rig_right, _ = cb.stereo_rig(str(tmp_path_factory.getbasetemp() / "rig"))
    calibrate.main(["--rectify", "--calibration", str(tmp_path / "root" / "camera.json"), "--left", rig_left,
                    "--right", rig_right, "--out", str(tmp_path / "root" / "seq")])
    found = [calibration.find_corners(cv2.imread(str(tmp_path / "root" / "seq" / s / "view01.png"), 0), cb.BOARD)
             .reshape(-1, 2) for s in ("left", "right")]
    found = [f if f[-1, 0] > f[0, 0] else f[::-1] for f in found]
    assert np.abs(found[0][:, 1] - found[1][:, 1]).max() < 0.5
    # a message dump (ROS 2's lower-case k, d, r, p) gives the same mono camera
    dump = tmp_path / "info.yaml"
    dump.write_text(yaml.safe_dump({"height": 480, "width": 640, "distortion_model": "plumb_bob", "d": [0.0] * 5,
                                    "k": cb.LEFT_K.ravel().tolist(), "r": np.eye(3).ravel().tolist(),
                                    "p": np.hstack([cb.LEFT_K, np.zeros((3, 1))]).ravel().tolist()}))
    camera, out = imported(tmp_path, capsys, dump, "--format", "ros")
    assert camera["fx"] == cb.LEFT_K[0, 0] and camera["cy"] == cb.LEFT_K[1, 2] and "need no remapping" in out
    no_k = tmp_path / "no_k.yaml"
    no_k.write_text("image_width: 640\nimage_height: 480\ndistortion_model: plumb_bob\n")
    assert "no camera matrix" in refused(["--import", str(no_k), "--out", str(tmp_path / "nok" / "camera.json")],
                                         capsys)
    assert not (tmp_path / "nok").exists()


def test_opencv_filestorage_mono_and_stereo(tmp_path, capsys):
    dist = np.array([[-0.21, 0.05, 0.001, -0.002, 0.0]])
    for name in ("calib.yml", "calib.xml"):   # written by OpenCV itself, keys of its calibration sample
        fs = cv2.FileStorage(str(tmp_path / name), cv2.FILE_STORAGE_WRITE)
        fs.write("image_width", 640)
        fs.write("image_height", 480)
        fs.write("camera_matrix", cb.LEFT_K)
        fs.write("distortion_coefficients", dist)
        fs.release()
        camera, out = imported(tmp_path, capsys, tmp_path / name)
        assert [camera[k] for k in ("fx", "fy", "cx", "cy", "width", "height")] == pytest.approx(
            [520, 515, 322, 236, 640, 480])
        assert camera["calibration"]["left"]["distortion"] == pytest.approx(dist.ravel()) and "--rectify" in out
    # OpenCV's stereo sample: intrinsics.yml (M1 D1 M2 D2) and extrinsics.yml (R T); no image size in either
    fs = cv2.FileStorage(str(tmp_path / "intrinsics.yml"), cv2.FILE_STORAGE_WRITE)
    for key, value in (("M1", cb.LEFT_K), ("D1", cb.LEFT_DIST[None]), ("M2", cb.RIGHT_K), ("D2", cb.RIGHT_DIST[None])):
        fs.write(key, value)
    fs.release()
    fs = cv2.FileStorage(str(tmp_path / "extrinsics.yml"), cv2.FILE_STORAGE_WRITE)
    fs.write("R", cb.R_LR)
    fs.write("T", cb.T_LR.reshape(3, 1))
    fs.release()
    assert "no image size" in refused(["--import", str(tmp_path / "intrinsics.yml"), "--right",
                                       str(tmp_path / "extrinsics.yml"), "--out", str(tmp_path / "s.json")], capsys)
    camera, _ = imported(tmp_path, capsys, tmp_path / "intrinsics.yml", "--right", tmp_path / "extrinsics.yml",
                         "--image_size", "640x480")
    assert camera["baseline"] == pytest.approx(cb.BASELINE, rel=1e-6) and camera["width"] == 640
    empty = tmp_path / "empty.yml"
    fs = cv2.FileStorage(str(empty), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 640)
    fs.release()
    assert "no image size" in refused(["--import", str(empty), "--out", str(tmp_path / "e.json")], capsys)
    assert "no 3 x 3 camera matrix" in refused(["--import", str(empty), "--image_size", "640x480", "--out",
                                                str(tmp_path / "e.json")], capsys)


def test_colmap_cameras_txt(tmp_path, capsys):
    # COLMAP's pixel convention: the top-left pixel's centre is (0.5, 0.5); OpenCV's (and ours) is (0, 0)
    fx, fy, cx, cy = 1510.0, 1505.0, 959.5, 539.5
    cameras = tmp_path / "cameras.txt"
    cameras.write_text("# Camera list with one line of data per camera:\n"
                       "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n# Number of cameras: 3\n"
                       f"1 PINHOLE 1920 1080 {fx} {fy} {cx + 0.5} {cy + 0.5}\n"
                       f"2 SIMPLE_PINHOLE 1920 1080 {fx} {cx + 0.5} {cy + 0.5}\n"
                       f"3 OPENCV 1920 1080 {fx} {fy} {cx + 0.5} {cy + 0.5} -0.1 0.02 0.001 0.0005\n"
                       "4 SIMPLE_RADIAL_FISHEYE 1920 1080 900 960 540 0.1\n")
    assert "holds 4 cameras (1, 2, 3, 4): pick one with --camera_id" in refused(
        ["--import", str(cameras), "--out", str(tmp_path / "c.json")], capsys)
    camera, out = imported(tmp_path, capsys, cameras, "--camera_id", "1")
    assert [camera[k] for k in ("fx", "fy", "cx", "cy", "width", "height")] == [fx, fy, cx, cy, 1920, 1080]
    assert "need no remapping" in out
    camera, _ = imported(tmp_path, capsys, cameras, "--camera_id", "2")
    assert (camera["fx"], camera["fy"], camera["cx"]) == (fx, fx, cx)
    camera, out = imported(tmp_path, capsys, cameras, "--camera_id", "3")   # distortion kept, frames to undistort
    assert camera["calibration"]["left"]["distortion"] == [-0.1, 0.02, 0.001, 0.0005] and "--rectify" in out
    assert (camera["fx"], camera["cx"]) == (fx, cx)
    assert "SIMPLE_RADIAL_FISHEYE; supported" in refused(["--import", str(cameras), "--camera_id", "4", "--out",
                                                          str(tmp_path / "c.json")], capsys)
    assert not os.path.exists(tmp_path / "c.json")
