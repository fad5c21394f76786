"""KITTI raw's calibration files, Paddle-free: <data_path>/<date>/calib_cam_to_cam.txt and
calib_velo_to_cam.txt, lines "key: v1 v2 ...".

    read_calib_file(path) -> {key: float64 array (numbers) or str}
    read_calib_dir(date folder) -> {"velo_to_cam" 4x4, "R_rect_00" 4x4, "P_rect_02"/"P_rect_03" 3x4,
                                    "im_shape" (H, W) of S_rect_02}: what utils/sensors/velodyne.py projects with
"""
import os

import numpy as np

from utils.cameras.kitti_layout import CALIB_FILES

_FLOAT_CHARS = set("0123456789.e+- \t")


def read_calib_file(path):
    """Read a KITTI calibration text file ("key: v1 v2 ...") into a dict.

    Numeric values become float64 arrays; anything else (e.g. calib_time) stays a string.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing KITTI calibration file: {path}")
    data = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if ":" not in line:
                raise ValueError(f"{path}:{number}: not a 'key: values' calibration line: {line.strip()!r}")
            key, value = line.split(":", 1)
            value = value.strip()
            data[key.strip()] = value
            if value and _FLOAT_CHARS.issuperset(value):
                try:
                    data[key.strip()] = np.array([float(v) for v in value.split()])
                except ValueError:
                    pass
    return data


def _calib_entry(calib, key, size, path):
    if key not in calib or isinstance(calib[key], str) or calib[key].size != size:
        raise ValueError(f"{path}: missing or malformed entry '{key}' ({size} numbers expected)")
    return calib[key]


def read_calib_dir(calib_dir):
    """Parse the two files generate_depth_map needs once, so a dataset can cache the result.

    Returns dict with "velo_to_cam" (4x4), "R_rect_00" (4x4), "P_rect_02"/"P_rect_03" (3x4),
    "im_shape" (H, W) from S_rect_02.
    """
    c2c_path, v2c_path = (os.path.join(calib_dir, name) for name in CALIB_FILES)
    cam2cam = read_calib_file(c2c_path)
    velo2cam = read_calib_file(v2c_path)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = _calib_entry(velo2cam, "R", 9, v2c_path).reshape(3, 3)
    velo_to_cam[:3, 3] = _calib_entry(velo2cam, "T", 3, v2c_path)
    r_rect = np.eye(4)
    r_rect[:3, :3] = _calib_entry(cam2cam, "R_rect_00", 9, c2c_path).reshape(3, 3)
    out = {"velo_to_cam": velo_to_cam, "R_rect_00": r_rect,
           "im_shape": tuple(int(v) for v in _calib_entry(cam2cam, "S_rect_02", 2, c2c_path)[::-1])}
    for cam in (2, 3):
        key = f"P_rect_0{cam}"
        if key in cam2cam:
            out[key] = _calib_entry(cam2cam, key, 12, c2c_path).reshape(3, 4)
    return out
