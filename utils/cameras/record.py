"""camera.json with its calibration record: what calibrate.py writes and `calibrate.py --rectify` reads. Paddle-free.

A calibrated camera.json holds the folder layout's camera (utils/cameras/camera.py: fx, fy, cx, cy, width,
height in pixels of the stored images; baseline in metres for stereo) of the images as --rectify writes
them, and under "calibration" how to make those images from the camera's own:

    "calibration": {
      "source":     what it came from (chessboard photos, an imported file)
      "image_size": [width, height] of the camera's own images (the same as the stored ones)
      "left":       {"K": 3 x 3, "distortion": OpenCV's (k1, k2, p1, p2[, k3 ...]), "R": 3 x 3, "P": 3 x 4}
      "right":      the same for the right camera (stereo)
      "maps":       file name of the rectification maps saved beside camera.json (stereo)
      ... and what the source adds ("rms_px" the RMS reprojection error, "views", "skipped", "R", "T", ...)
    }

A side's image is remapped by cv2.initUndistortRectifyMap(K, distortion, R, P): undistorted, turned by R
(stereo rectification) and projected with P, so the stored camera is P's: fx = P[0,0], fy = P[1,1],
cx = P[0,2], cy = P[1,2] (pixel centres at integer coordinates, as OpenCV and the networks count them),
and the baseline of a rectified pair is B = -P_right[0,3] / P_right[0,0] (P_right = K' [I | (-B, 0, 0)]).
A mono calibration keeps its K (R = I, P = [K | 0]): the undistorted images have exactly the calibrated K.
"""
import json
import os
import re

import numpy as np

from utils.cameras.camera import CAMERA_KEYS, CameraError, check_camera
from utils.cameras.camera import describe as camera_description
from utils.io.fileio import atomic_write_text


class CalibrationError(ValueError):
    """Input that cannot be calibrated, imported or rectified; the message is one line saying what to do."""


def parse_pair(text):
    """'9x6' -> (9, 6) (also '9*6', '9X6'), or None when the text is not two positive integers."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(text))
    return (int(m.group(1)), int(m.group(2))) if m and min(int(m.group(1)), int(m.group(2))) > 0 else None


def parse_board(text):
    """'9x6' -> (9, 6): inner corners, columns x rows; CalibrationError unless both are integers >= 2."""
    board = parse_pair(text)
    if board is None or min(board) < 2:
        raise CalibrationError(f"--board {text}: give the inner corners as COLSxROWS, e.g. 9x6 for a board of "
                               "10 x 7 squares")
    return board


def side(k, distortion=(), r=None, p=None):
    """One camera's entry: K, distortion, rectifying rotation R (default I) and new projection P (default [K | 0])."""
    k = np.asarray(k, np.float64).reshape(3, 3)
    r = np.eye(3) if r is None else np.asarray(r, np.float64).reshape(3, 3)
    p = np.hstack([k, np.zeros((3, 1))]) if p is None else np.asarray(p, np.float64).reshape(3, 4)
    dist = [float(d) for d in np.asarray(distortion, np.float64).ravel()]
    return {"K": k.tolist(), "distortion": dist, "R": r.tolist(), "P": p.tolist()}


def baseline_of(right):
    """Metres between the rectified cameras from the right side's P (-P[0,3] / P[0,0])."""
    p = np.asarray(right["P"])
    return float(-p[0, 3] / p[0, 0])


def camera_record(left, image_size, source, right=None, **extra):
    """The camera.json dict: P of the left side as the stored camera, the baseline from the right side's P."""
    p = np.asarray(left["P"])
    camera = {"fx": float(p[0, 0]), "fy": float(p[1, 1]), "cx": float(p[0, 2]), "cy": float(p[1, 2]),
              "width": int(image_size[0]), "height": int(image_size[1])}
    calibration = {"source": source, "image_size": [int(image_size[0]), int(image_size[1])], "left": left}
    if right is not None:
        camera["baseline"] = baseline_of(right)
        calibration["right"] = right
    calibration.update(extra)
    camera["calibration"] = calibration
    return camera


def remaps(entry):
    """True when a side's images change under its record (distortion, a rotation or a new camera matrix; P's
    last column, the stereo offset, moves no pixel), False when the stored images are the camera's own."""
    k, p = np.asarray(entry["K"]), np.asarray(entry["P"])
    return bool(np.any(np.asarray(entry["distortion"]) != 0) or not np.allclose(entry["R"], np.eye(3))
                or not np.allclose(p[:, :3], k))


def write_camera(path, record):
    """camera.json at `path` (folders made), written atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def read_record(path):
    """The camera.json at `path` with a calibration record, checked; CalibrationError (one line) otherwise."""
    fix = "write it with calibrate.py --images (chessboard photos) or calibrate.py --import (docs/own_camera.md)"
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise CalibrationError(f"--calibration {path}: not a readable camera.json ({str(e).splitlines()[0]})") from None
    block = record.get("calibration") if isinstance(record, dict) else None
    if not isinstance(block, dict) or "left" not in block or "image_size" not in block:
        raise CalibrationError(f"--calibration {path}: holds no calibration record (\"calibration\" with "
                               f"\"image_size\" and \"left\"): {fix}")
    try:
        for name in ("left", "right"):
            if name in block:
                entry = block[name]
                np.asarray(entry["K"], np.float64).reshape(3, 3), np.asarray(entry["P"], np.float64).reshape(3, 4)
                np.asarray(entry["R"], np.float64).reshape(3, 3), np.asarray(entry["distortion"], np.float64)
        width, height = (int(v) for v in block["image_size"])
    except (KeyError, TypeError, ValueError):
        raise CalibrationError(f"--calibration {path}: its calibration record is incomplete (each side needs K, "
                               f"distortion, R, P): {fix}") from None
    if width <= 0 or height <= 0:
        raise CalibrationError(f"--calibration {path}: needs a positive image_size: {fix}")
    try:
        check_camera(layout_camera(record), f"--calibration {path}", fix)
    except CameraError as e:
        raise CalibrationError(str(e)) from None
    return record


def layout_camera(record, note=None):
    """The folder layout's part of a record (no calibration block), with a "source" note."""
    camera = {k: record[k] for k in CAMERA_KEYS + ("baseline",) if k in record}
    if note:
        camera["source"] = note
    return camera


def describe(record):
    """One line: the stored camera (utils/cameras/camera.py's describe) and baseline."""
    text = camera_description(record)
    if "baseline" in record:
        text += f", baseline {record['baseline']:.4f} m"
    return text


def describe_distortion(distortion):
    names = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")
    return ", ".join(f"{n} {d:.4g}" for n, d in zip(names, distortion)) or "none"
