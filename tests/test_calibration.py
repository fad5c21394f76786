"""utils/cameras/calibration.py and rectify.py on chessboard views rendered with a known rig
(tests/support/chessboard.py: ray-cast through OpenCV's lens model, pixel noise): the calibration recovers the
cameras, and rectified views put every corner on one row in both images and at the depth the baseline gives."""
import os

import cv2
import numpy as np
import pytest

from support import chessboard as cb
from utils.cameras import calibration, rectify
from utils.cameras.record import CalibrationError
from utils.io import image_io


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    return cb.stereo_rig(str(tmp_path_factory.getbasetemp() / "rig"))


@pytest.fixture(scope="module")
def detections(rig):
    left, right, _ = rig
    return (calibration.detect(image_io.list_images(left), cb.BOARD, None),
            calibration.detect(image_io.list_images(right), cb.BOARD, None))


def projected(k, dist, pose):
    return cv2.projectPoints(cb.board_points(cb.BOARD, cb.SQUARE), pose[0], pose[1], k, dist)[0].reshape(-1, 2)


def matched(found, truth):
    """Detected corners in the true corners' order (the detector may run the board from either end)."""
    found = found.reshape(-1, 2)
    return found if np.abs(found - truth).max() < np.abs(found[::-1] - truth).max() else found[::-1]


def test_corners_land_where_the_camera_projects_them(rig):
    left, _, poses = rig
    grey = cv2.imread(os.path.join(left, "view00.png"), cv2.IMREAD_GRAYSCALE)
    truth = projected(cb.LEFT_K, cb.LEFT_DIST, poses[0])
    assert np.abs(matched(calibration.find_corners(grey, cb.BOARD), truth) - truth).max() < 0.15
    # a photo above DETECT_SIDE is searched at a smaller size, its corners refined at full size
    big = cv2.resize(grey, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape) > calibration.DETECT_SIDE
    truth_big = (truth + 0.5) * 2.5 - 0.5   # pixel centres at integers in both images
    assert np.abs(matched(calibration.find_corners(big, cb.BOARD), truth_big) - truth_big).max() < 0.4
    assert calibration.find_corners(np.full((480, 640), 128, np.uint8), cb.BOARD) is None


def test_mono_calibration_recovers_the_camera(detections):
    left, _ = detections
    assert len(left.corners) == cb.VIEWS and left.size == cb.SIZE
    record = calibration.mono_record(left, cb.BOARD, cb.SQUARE)
    k_true = cb.LEFT_K
    assert record["fx"] == pytest.approx(k_true[0, 0], rel=0.005)
    assert record["fy"] == pytest.approx(k_true[1, 1], rel=0.005)
    assert abs(record["cx"] - k_true[0, 2]) < 1 and abs(record["cy"] - k_true[1, 2]) < 1
    block = record["calibration"]
    assert block["rms_px"] < 0.5 and (record["width"], record["height"]) == cb.SIZE
    # the distortion model, judged by what it does: undistorting pixels as the true lens does, over the part of
    # the image the board covered (beyond it the polynomial is extrapolated, in any calibration)
    seen = np.concatenate([c.reshape(-1, 2) for c in left.corners.values()])
    (x0, y0), (x1, y1) = seen.min(0), seen.max(0)
    grid = np.stack(np.meshgrid(np.linspace(x0, x1, 15), np.linspace(y0, y1, 11)), -1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    true = cv2.undistortPoints(grid, k_true, cb.LEFT_DIST, P=k_true, criteria=crit)
    est_k = np.asarray(block["left"]["K"])
    est = cv2.undistortPoints(grid, est_k, np.asarray(block["left"]["distortion"]), P=k_true, criteria=crit)
    assert np.abs(est - true).max() < 0.5


def test_stereo_rectification_rows_and_baseline(rig, detections):
    left_dir, right_dir, poses = rig
    left, right = detections
    pairs = calibration.pair_names(os.listdir(left_dir), os.listdir(right_dir))
    record = calibration.stereo_record(left, right, pairs, cb.BOARD, cb.SQUARE)
    assert record["baseline"] == pytest.approx(cb.BASELINE, rel=0.01)
    assert record["fx"] == record["fy"] and record["calibration"]["rms_px"] < 0.5
    maps = rectify.build_maps(record)
    block = record["calibration"]
    r1 = np.asarray(block["left"]["R"])
    obj = cb.board_points(cb.BOARD, cb.SQUARE).astype(np.float64)
    rows, depth_errors = [], []
    for i, pose in enumerate(poses[:6]):
        found = []
        for folder, side in ((left_dir, "left"), (right_dir, "right")):
            grey = cv2.imread(os.path.join(folder, f"view{i:02d}.png"), cv2.IMREAD_GRAYSCALE)
            rectified = cv2.remap(grey, *maps[side], cv2.INTER_LINEAR)
            found.append(calibration.find_corners(rectified, cb.BOARD).reshape(-1, 2))
        # the same corner in both rectified images: each in the order of the true corners
        truth_l = calibration.rectified_points(projected(cb.LEFT_K, cb.LEFT_DIST, pose), cb.LEFT_K, cb.LEFT_DIST, r1,
                                               np.asarray(block["left"]["P"]))
        pose_r = cb.stereo_pose(pose[0], pose[1], cb.R_LR, cb.T_LR)
        truth_r = calibration.rectified_points(projected(cb.RIGHT_K, cb.RIGHT_DIST, pose_r), cb.RIGHT_K, cb.RIGHT_DIST,
                                               np.asarray(block["right"]["R"]), np.asarray(block["right"]["P"]))
        lft, rgt = matched(found[0], truth_l), matched(found[1], truth_r)
        rows.append(np.abs(lft[:, 1] - rgt[:, 1]))
        # depth from disparity in the rectified pair, Z = fx B / d, against the corners' true depth there
        z_true = (r1 @ (cv2.Rodrigues(pose[0])[0] @ obj.T + pose[1].reshape(3, 1)))[2]
        depth_errors.append(record["fx"] * record["baseline"] / (lft[:, 0] - rgt[:, 0]) / z_true - 1)
    assert np.concatenate(rows).max() < 0.5
    assert np.abs(np.concatenate(depth_errors)).mean() < 0.01


def test_pairs_match_by_name_or_number_and_refuse_orphans():
    assert calibration.pair_names(["a.png", "b.png"], ["b.jpg", "a.jpg"]) == [("a.png", "a.jpg"), ("b.png", "b.jpg")]
    assert calibration.pair_names(["left01.jpg", "left02.jpg"], ["right02.jpg", "right01.jpg"]) == \
        [("left01.jpg", "right01.jpg"), ("left02.jpg", "right02.jpg")]
    with pytest.raises(CalibrationError, match="without a partner.*c.png"):
        calibration.pair_names(["a.png", "b.png", "c.png"], ["a.png", "b.png"])
    with pytest.raises(CalibrationError, match="share no file names"):
        calibration.pair_names(["x.png"], ["y.png"])


def test_too_few_views_refused_in_one_line(detections):
    left, _ = detections
    few = calibration.Detections(folder="photos", corners=dict(list(left.corners.items())[:3]), size=left.size,
                                 skipped=[("a.png", "no board found")])
    with pytest.raises(CalibrationError) as e:
        calibration.mono_record(few, cb.BOARD, cb.SQUARE)
    assert str(e.value).startswith(f"3 usable views in photos, at least {calibration.MIN_VIEWS}")
    assert "\n" not in str(e.value)
